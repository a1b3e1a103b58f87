// Hostile files against the readers (issue #24, docs/security.md): each file is made by tools/hostile/make.mjs and
// aimed at one hang, memory blow-up or crash that the reader had; each must now fail at once with an InputError that
// names the file and what was expected. (The ones that used to hang outright are run through the CLI, under a time
// limit, in test/cli/hostile.test.ts, so that a regression fails instead of stalling the test run.)
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, symlinkSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { after, test } from "node:test";
import { InputError } from "../../src/errors.js";
import { openCheckpoint } from "../../src/io/checkpoint.js";
import { loadIdxPair, readIdx } from "../../src/io/datasets/idx.js";
import { loadImageFolder } from "../../src/io/datasets/imagefolder.js";
import { decodeImage } from "../../src/io/image.js";
import { readLimits, setReadLimits } from "../../src/io/limits.js";
import { decodePng, encodePng } from "../../src/io/png.js";
import { PickleError, unpickle } from "../../src/io/pickle.js";
import { SafetensorsFile } from "../../src/io/safetensors.js";
import { readModelMeta } from "../../src/models/saved.js";
import { ROOT } from "../helpers/fixtures.js";

type Bytes = Buffer;
interface Hostile {
  ptWithTensor(shape: number[], stride: number[], numel?: number): Bytes;
  ptDagBomb(depth?: number): Bytes;
  torchArchive(pickle: Bytes, storages?: Record<string, number[]>): Bytes;
  tensorOps(key: string, numel: number, shape: number[], stride: number[]): Bytes;
  dictOps(entries: [string, Bytes][]): Bytes;
  op: Record<string, Bytes> & {
    global(m: string, n: string): Bytes;
    str(s: string): Bytes;
    int(n: number | bigint): Bytes;
    put(i: number): Bytes;
    get(i: number): Bytes;
  };
  safetensorsHugeZeroShape(): Bytes;
  safetensorsDiTMeta(o: Record<string, unknown>): Bytes;
  safetensorsMetaNotJson(): Bytes;
  pngHugeDimensions(side?: number): Bytes;
  pngInflateBomb(bytes?: number): Bytes;
  jpegHugeDimensions(w?: number, h?: number): Bytes;
  idxGzipBomb(bytes?: number): Bytes;
  idxHeightZero(n?: number, w?: number): Bytes;
  idxHeader(dims: number[]): Bytes;
  imageFolderTrap(root: string, kind: string): string;
}
const hostile = (await import(pathToFileURL(join(ROOT, "tools", "hostile", "make.mjs")).href)) as Hostile;
const { op } = hostile;

const dir = mkdtempSync(join(tmpdir(), "cao2-hostile-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const write = (name: string, bytes: Uint8Array) => {
  const p = join(dir, name);
  writeFileSync(p, bytes);
  return p;
};

/** Asserts an InputError whose message names `file` (when given) and matches `re`. */
function refuses(f: () => unknown, re: RegExp, file?: string): void {
  assert.throws(f, (e: unknown) => {
    assert.ok(e instanceof InputError, `expected an InputError, got ${(e as Error)?.stack ?? String(e)}`);
    if (file) assert.ok(e.message.includes(file), `the message names the file: ${e.message}`);
    assert.match(e.message, re);
    assert.equal(e.message.split("\n").length, 1, "one line");
    return true;
  });
}

// ---------------------------------------------------------------------------------------------------------------
// checkpoints
// ---------------------------------------------------------------------------------------------------------------

test("a view whose element count overflows ([2^40, 2^40], stride 0) is refused when the file is opened", () => {
  const p = write("overflow.pt", hostile.ptWithTensor([2 ** 40, 2 ** 40], [0, 0]));
  refuses(
    () => openCheckpoint(p),
    /tensor of shape \[1099511627776, 1099511627776\]: its element count 1208925819614629174706176 exceeds 2\^53 - 1/,
    p,
  );
});

test("a stride-0 view of one value materialising 4 TiB is refused at open, naming --max-tensor-bytes; a smaller limit applies too", () => {
  const p = write("4tib.pt", hostile.ptWithTensor([2 ** 20, 2 ** 20], [0, 0]));
  refuses(
    () => openCheckpoint(p),
    /tensor 'weight' \(float32 \[1048576,1048576\]\) would take 4 TiB in memory, over the 1 GiB limit \(--max-tensor-bytes\)/,
    p,
  );
  // An ordinary broadcast view within the limit loads, with torch's values; the limit option lowers the bar.
  const ok = write("broadcast.pt", hostile.ptWithTensor([3, 4], [0, 1], 4));
  const ck = openCheckpoint(ok);
  try {
    const t = ck.tensors.get("weight")!.load();
    assert.deepEqual(t.shape, [3, 4]);
    assert.deepEqual(t.toNumbers(), new Array(12).fill(1));
    t.dispose();
  } finally {
    ck.close();
  }
  refuses(
    () => openCheckpoint(ok, { maxTensorBytes: 40 }),
    /would take 48 bytes in memory, over the 40 bytes limit/,
    ok,
  );
});

test("views that repeat stored values may exceed the file's bytes by at most the limit, all tensors together", () => {
  // 20 tensors, each a 1 MiB stride-0 view of the same 1-value storage: each within a 4 MiB limit, 20 MiB together.
  const entries: [string, Buffer][] = Array.from({ length: 20 }, (_, i) => [
    `w${i}`,
    hostile.tensorOps("0", 1, [2 ** 18], [0]),
  ]);
  const p = write(
    "many-views.pt",
    hostile.torchArchive(Buffer.concat([op.proto, hostile.dictOps(entries), op.stop]), { 0: [1] }),
  );
  refuses(
    () => openCheckpoint(p, { maxTensorBytes: 4 * 2 ** 20 }),
    /its tensors would take 20 MiB in memory from .* of file .*more than the file plus the 4 MiB limit/,
    p,
  );
  openCheckpoint(p, { maxTensorBytes: 32 * 2 ** 20 }).close();
});

test("a shared sub-dict is still listed under each of its paths (as PyTorch's state_dict does) when the total is modest", () => {
  // {"enc": d, "dec": d} with d = {"w": tensor}: two keys from one dict through the memo.
  const pkl = Buffer.concat([
    op.proto,
    hostile.dictOps([["w", hostile.tensorOps("0", 1, [1], [1])]]),
    op.put(0),
    hostile.dictOps([
      ["enc", op.get(0)],
      ["dec", op.get(0)],
    ]),
    op.stop,
  ]);
  const ck = openCheckpoint(write("shared.pt", hostile.torchArchive(pkl, { 0: [1] })));
  assert.deepEqual([...ck.tensors.keys()].sort(), ["dec.w", "enc.w"]);
  ck.close();
});

test("a pickle that copies one memoised list again and again is refused by the work budget (it was quadratic)", () => {
  // A 5,000-item list, then 20,000 calls of builtins.set on it: 10^8 items copied from a 150 KB pickle.
  const parts = [op.proto, op.mark, ...Array.from({ length: 5000 }, (_, i) => op.int(i)), Buffer.from("l"), op.put(0)];
  parts.push(op.mark);
  for (let i = 0; i < 20_000; i++) parts.push(op.global("builtins", "set"), op.mark, op.get(0), op.tuple, op.reduce);
  parts.push(Buffer.from("l"), op.stop);
  const pkl = Buffer.concat(parts);
  assert.throws(
    () => unpickle(pkl, { source: "copies.pkl" }),
    (e: unknown) =>
      e instanceof PickleError &&
      /copies\.pkl: unpickling takes more than \d+ steps for \d+ bytes of pickle/.test((e as Error).message),
  );
  // The same calls a few times stay well within the budget.
  const few = Buffer.concat([
    op.proto,
    op.mark,
    op.int(1),
    op.int(2),
    Buffer.from("l"),
    op.put(0),
    op.global("builtins", "set"),
    op.mark,
    op.get(0),
    op.tuple,
    op.reduce,
    op.stop,
  ]);
  assert.deepEqual(unpickle(few), new Set([1, 2]));
});

test("a safetensors shape [0, 1e300] (zero bytes, an impossible element count) is refused", () => {
  const p = write("zero-huge.safetensors", hostile.safetensorsHugeZeroShape());
  refuses(
    () => SafetensorsFile.open(p),
    /tensor 'x': shape \[0,1e\+300\] is not a list of at most 64 non-negative integers below 2\^53/,
    p,
  );
});

test("cao2 metadata: not JSON, or a model the file's tensors cannot hold, is refused before any model is built", () => {
  const notJson = write("not-json.safetensors", hostile.safetensorsMetaNotJson());
  refuses(
    () => readModelMeta(notJson),
    /the "cao2" metadata is not valid JSON .*expected a cao2 model description/,
    notJson,
  );
  const deep = write("deep.safetensors", hostile.safetensorsDiTMeta({ depth: 1_000_000 }));
  refuses(
    () => readModelMeta(deep),
    /the "cao2" metadata asks for depth 1000000, but the file holds only 1 tensors/,
    deep,
  );
  const wide = write(
    "wide.safetensors",
    hostile.safetensorsDiTMeta({ depth: 1, hiddenSize: 1_000_000_000, numHeads: 1 }),
  );
  refuses(
    () => readModelMeta(wide),
    /asks for .*hiddenSize 1000000000.*larger than any dimension of the file's tensors \(at most 1\)/,
    wide,
  );
});

// ---------------------------------------------------------------------------------------------------------------
// images
// ---------------------------------------------------------------------------------------------------------------

test("a PNG declaring 46340 x 46340 is refused from its header (--max-image-pixels); the limit is an option", () => {
  refuses(
    () => decodeImage(hostile.pngHugeDimensions(), "huge.png"),
    /huge\.png: image of 46340x46340 = 2,147,395,600 pixels is over the 89,478,485-pixel limit \(--max-image-pixels\)/,
  );
  const png = encodePng({ width: 16, height: 16, channels: 1, data: new Uint8Array(256) });
  refuses(() => decodePng(png, { maxPixels: 255 }), /16x16 = 256 pixels is over the 255-pixel limit/);
  assert.equal(decodePng(png, { maxPixels: 256 }).width, 16);
});

test("a 1x1 PNG whose image data inflates far past 2 bytes stops at the size its header implies", () => {
  // 64 MiB here (the reported file inflated to 3 GiB; the bound does not depend on the size).
  refuses(
    () => decodeImage(hostile.pngInflateBomb(64 * 2 ** 20), "bomb.png"),
    /bomb\.png: invalid PNG: the image data inflates to more than the 2 bytes a 1x1 image of this type holds/,
  );
});

test("a JPEG declaring 65000 x 65000 is refused from its frame header", () => {
  refuses(
    () => decodeImage(hostile.jpegHugeDimensions(), "huge.jpg"),
    /huge\.jpg: image of 65000x65000 = 4,225,000,000 pixels is over the 89,478,485-pixel limit/,
  );
});

test("a JPEG declaring more pixels than its bytes can hold (one bit per 8x8 block) is refused before decoding", () => {
  // 253 x 59416 = 15 megapixels in 137 bytes: within the pixel limit, but jpeg-js would decode every declared block
  // (a fuzzed 898-byte file of this kind took 14 s).
  refuses(
    () => decodeImage(hostile.jpegHugeDimensions(59416, 253), "wide.jpg"),
    /wide\.jpg: a JPEG of 137 bytes cannot hold a 59416x253 image \(at least one bit per 8x8 block\)/,
  );
});

// ---------------------------------------------------------------------------------------------------------------
// idx
// ---------------------------------------------------------------------------------------------------------------

test("an idx .gz whose data inflates far past its header's size stops after the header's worth", () => {
  // 256 MiB here (the reported file inflated to 5 GiB).
  refuses(
    () => readIdx(hostile.idxGzipBomb(256 * 2 ** 20), "bomb.gz"),
    /bomb\.gz: the gzip data inflates to more than the 800 bytes its idx header \[1, 28, 28\] implies/,
  );
});

test("an idx header counting more values than --max-tensor-bytes allows is refused before inflating", () => {
  const big = hostile.idxHeader([70_000, 1000, 1000]); // 70 GB of values, and no data at all
  refuses(
    () => readIdx(big, "big-header"),
    /big-header: its header \[70000, 1000, 1000\] counts 65.2 GiB of values, over the 1 GiB limit \(--max-tensor-bytes\)/,
  );
});

test("idx images of height 0 are refused", () => {
  const root = join(dir, "idx0");
  mkdirSync(root);
  writeFileSync(join(root, "im"), hostile.idxHeightZero(10));
  writeFileSync(join(root, "lb"), Buffer.concat([hostile.idxHeader([10]), Buffer.alloc(10)]));
  refuses(
    () => loadIdxPair(root, "im", "lb", ["a"]),
    /im: expected at least one image of at least 1x1 pixels, got \[10,0,28\]/,
  );
});

// ---------------------------------------------------------------------------------------------------------------
// ImageFolder (the FIFO, which used to block for ever, is tested through the CLI)
// ---------------------------------------------------------------------------------------------------------------

test("ImageFolder: a symlink loop, a folder cycle and a link to /dev/zero are refused with one line each", () => {
  for (const [kind, re] of [
    ["loop", /loop\.png: symbolic link loop \(expected an image file or a folder\)/],
    ["cycle", /cycle\/a: a symbolic link leads back to a folder that contains it \(a folder cycle\)/],
    ["zero", /x\.png: not a regular file \(a device\)/],
  ] as const) {
    const root = hostile.imageFolderTrap(join(dir, `trap-${kind}`), kind);
    refuses(() => loadImageFolder(root), re, root);
  }
  // A link to a folder elsewhere is followed, as torchvision does, and a folder reached twice is read once.
  const root = join(dir, "links");
  mkdirSync(join(root, "a"), { recursive: true });
  const png = encodePng({ width: 2, height: 2, channels: 1, data: new Uint8Array(4) });
  mkdirSync(join(dir, "elsewhere"));
  writeFileSync(join(dir, "elsewhere", "0.png"), png);
  symlinkSync(join(dir, "elsewhere"), join(root, "a", "one"));
  symlinkSync(join(dir, "elsewhere"), join(root, "a", "two"));
  assert.equal(loadImageFolder(root).images.size(0), 1);
});

test("ImageFolder: the images together stay within --max-tensor-bytes", () => {
  const root = join(dir, "sizes");
  mkdirSync(join(root, "a"), { recursive: true });
  const png = encodePng({ width: 8, height: 8, channels: 1, data: new Uint8Array(64) });
  for (let i = 0; i < 4; i++) writeFileSync(join(root, "a", `${i}.png`), png);
  const prev = setReadLimits({ maxTensorBytes: 200 });
  try {
    assert.equal(readLimits().maxTensorBytes, 200);
    refuses(
      () => loadImageFolder(root),
      /the images up to .*3\.png would take 256 bytes in memory, over the 200 bytes limit \(--max-tensor-bytes\)/,
      root,
    );
  } finally {
    setReadLimits(prev);
  }
  assert.equal(loadImageFolder(root).images.size(0), 4);
});
