// The streaming ImageFolder reader (src/io/datasets/stream.ts): mixed sizes and colour spaces through the decode
// workers, the same pixels streamed or kept in memory, the same digest as loadImageFolder, corrupt files named or
// skipped and counted, a per-class subset chosen before reading, and the decode pool's failure modes.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { InputError } from "../../src/errors.js";
import { DecodePool, loadImageFolder, openImageFolderSet } from "../../src/io/datasets/index.js";
import { convertChannels, decodeImage } from "../../src/io/image.js";
import { applyTransform, toChw } from "../../src/io/resample.js";
import * as torch from "../../src/torch/index.js";
import { copyFixtureJpeg, writeJpeg, writePng } from "../helpers/image-folders.js";

const dir = mkdtempSync(join(tmpdir(), "cao2-stream-"));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Two classes of mixed sizes and formats: RGB JPEGs and PNGs, a greyscale and a CMYK JPEG. */
function mixedFolder(name: string): string {
  const root = join(dir, name);
  writeJpeg(join(root, "a", "0.jpg"), 300, 200, 1);
  writePng(join(root, "a", "1.png"), 48, 77, 2);
  copyFixtureJpeg("gray", join(root, "a", "2.jpg"));
  copyFixtureJpeg("cmyk", join(root, "b", "0.jpg"));
  writeJpeg(join(root, "b", "1.jpeg"), 120, 260, 3);
  return root;
}

const T = { resizeShorter: 40, centerCrop: 32 } as const;

test("streamed and in-memory sets give the same batches: each image decoded, converted to RGB as PIL, resized and cropped", async () => {
  const root = mixedFolder("mixed");
  const streamed = await openImageFolderSet(root, { channels: 3, transform: T, memoryBudget: 0, workers: 2 });
  const held = await openImageFolderSet(root, { channels: 3, transform: T, workers: 2 });
  assert.deepEqual([...streamed.labels], [0, 0, 0, 1, 1]);
  assert.deepEqual(streamed.shape, [3, 32, 32]);
  assert.equal(streamed.transform, "Resize(40, bilinear as PIL) -> CenterCrop(32)");
  // the digest of loadImageFolder (which cannot read mixed sizes without resizing)
  assert.equal(streamed.source.sha256, loadImageFolder(root, { size: 8 }).source.sha256);
  assert.equal(held.source.sha256, streamed.source.sha256);
  const order = [4, 0, 3, 1, 2];
  const a = await streamed.images(order);
  const b = await held.images(order);
  assert.deepEqual(a.shape, [5, 3, 32, 32]);
  assert.ok(torch.equal(a, b));
  // the CMYK file (image 3, third in the batch) against a direct decode + transform
  const want = toChw(
    applyTransform(convertChannels(decodeImage(readFileSync(join(root, "b", "0.jpg")), "cmyk"), 3), T),
  );
  assert.deepEqual(a.narrow(0, 2, 1).toBytes(), want);
  torch.disposeAll([a, b]);
  await Promise.all([streamed.close(), held.close()]);
});

test("a corrupt JPEG stops the opening with its name; --skip-corrupt leaves it out and counts it", async () => {
  const root = mixedFolder("corrupt");
  writeFileSync(join(root, "b", "bad.jpg"), Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 16, 1, 2, 3, 4]));
  await assert.rejects(
    openImageFolderSet(root, { channels: 3, transform: T, workers: 2 }),
    (e: Error) =>
      e instanceof InputError && e.message.includes(join(root, "b", "bad.jpg")) && /--skip-corrupt/.test(e.message),
  );
  for (const memoryBudget of [0, undefined]) {
    const set = await openImageFolderSet(root, {
      channels: 3,
      transform: T,
      workers: 2,
      skipCorrupt: true,
      memoryBudget,
    });
    assert.equal(set.labels.length, 5);
    assert.equal(set.source.fileCount, 5);
    assert.equal(set.source.skipped?.count, 1);
    assert.equal(set.source.skipped?.files[0].file, join("b", "bad.jpg"));
    const all = await set.images([0, 1, 2, 3, 4]);
    assert.deepEqual(all.shape, [5, 3, 32, 32]);
    all.dispose();
    await set.close();
  }
});

test("a per-class subset is drawn from the file list before reading; one channel converts as PIL's convert('L')", async () => {
  const root = mixedFolder("subset");
  const set = await openImageFolderSet(root, {
    channels: 1,
    transform: { resize: [16, 16] },
    perClass: { count: 1, seed: 3 },
    workers: 1,
  });
  assert.deepEqual([...set.labels], [0, 1]);
  assert.equal(set.source.fileCount, 2);
  assert.deepEqual(set.shape, [1, 16, 16]);
  await set.close();
});

test("the decode pool reports bad bytes as the file's input error and keeps working; closed, it refuses work", async () => {
  const pool = new DecodePool(1);
  await assert.rejects(
    pool.decode(new Uint8Array([1, 2, 3]), "x.png", 3, null),
    (e: Error) => e instanceof InputError && /^x\.png: not a PNG or JPEG/.test(e.message),
  );
  const png = readFileSync(join(mixedFolder("pool"), "a", "1.png"));
  assert.equal((await pool.decode(png, "ok.png", 3, { resize: [4, 4] })).length, 48);
  await pool.close();
  await assert.rejects(pool.decode(png, "late.png", 3, null), /closed/);
});
