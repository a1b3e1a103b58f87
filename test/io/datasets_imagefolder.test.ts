// ImageFolder reader on small folders written by the test (PNG via our encoder, JPEG fixtures written by PIL).
import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { InputError } from "../../src/errors.js";
import { loadImageFolder } from "../../src/io/datasets/index.js";
import { convertChannels, decodeImage, imageToUint8Tensor, resizeImages } from "../../src/io/image.js";
import { encodePng, type RawImage } from "../../src/io/png.js";
import { fixture } from "../helpers/fixtures.js";

const base = mkdtempSync(join(tmpdir(), "cao2-imagefolder-"));
after(() => rmSync(base, { recursive: true, force: true }));

let counter = 0;
function image(w: number, h: number, channels: 1 | 3, fill: number): RawImage {
  return {
    width: w,
    height: h,
    channels,
    data: Uint8Array.from({ length: w * h * channels }, (_, i) => (fill + i * 7) & 0xff),
  };
}
/** Creates root/<class>/<file> for each entry (null = an empty folder) and returns the root. */
function folder(files: Record<string, RawImage | Uint8Array | string | null>): string {
  const root = join(base, `r${counter++}`);
  for (const [rel, content] of Object.entries(files)) {
    const p = join(root, rel);
    if (content === null) {
      mkdirSync(p, { recursive: true });
      continue;
    }
    mkdirSync(join(p, ".."), { recursive: true });
    writeFileSync(p, typeof content === "string" || content instanceof Uint8Array ? content : encodePng(content));
  }
  return root;
}

const fails = (f: () => unknown, re: RegExp) =>
  assert.throws(f, (e: Error) => e instanceof InputError && re.test(e.message), String(re));

test("classes are sorted folder names; nested images count; hidden entries and other files are skipped", () => {
  const root = folder({
    "b/1.png": image(4, 3, 1, 10),
    "a/x.png": image(4, 3, 1, 20),
    "a/sub/y.PNG": image(4, 3, 1, 30),
    "c/z.png": image(4, 3, 1, 40),
    "c/notes.txt": "not an image",
    "c/.hidden.png": "never read",
    ".ipynb_checkpoints/q.png": image(4, 3, 1, 50),
  });
  const ds = loadImageFolder(root);
  assert.deepEqual(ds.classes, ["a", "b", "c"]);
  assert.deepEqual(Array.from(ds.labels), [0, 0, 1, 2]);
  assert.deepEqual(ds.images.shape, [4, 1, 3, 4]);
  assert.equal(ds.images.dtype, "uint8");
  // within a class, paths sort by name: "sub" < "x.png", so the nested image comes first
  assert.deepEqual(ds.images.select(0, 0).reshape(12).toNumbers(), Array.from(image(4, 3, 1, 30).data));
  assert.deepEqual(ds.images.select(0, 1).reshape(12).toNumbers(), Array.from(image(4, 3, 1, 20).data));
  assert.equal(ds.source.classOrder, "sorted folder names");
  assert.equal(ds.source.fileCount, 4);
  assert.match(ds.source.sha256, /^[0-9a-f]{64}$/);
  assert.equal(loadImageFolder(root).source.sha256, ds.source.sha256);
  writeFileSync(join(root, "b/1.png"), encodePng(image(4, 3, 1, 11)));
  assert.notEqual(loadImageFolder(root).source.sha256, ds.source.sha256);
});

test("a class list (names, file, or root/classes.txt) fixes the label order and selects folders", () => {
  const root = folder({
    "cat/1.png": image(2, 2, 1, 1),
    "dog/1.png": image(2, 2, 1, 2),
    "emu/1.png": image(2, 2, 1, 3),
  });
  const byNames = loadImageFolder(root, { classes: ["emu", "cat"] });
  assert.deepEqual(byNames.classes, ["emu", "cat"]);
  assert.deepEqual(Array.from(byNames.labels), [0, 1]);
  assert.deepEqual(byNames.images.select(0, 0).reshape(4).toNumbers(), Array.from(image(2, 2, 1, 3).data));
  const listFile = join(base, `list${counter++}.txt`);
  writeFileSync(listFile, "dog\r\n\n  cat \nemu\n");
  const byFile = loadImageFolder(root, { classFile: listFile });
  assert.deepEqual(byFile.classes, ["dog", "cat", "emu"]);
  assert.equal(byFile.source.classOrder, listFile);
  writeFileSync(join(root, "classes.txt"), "emu\ndog\n");
  const auto = loadImageFolder(root);
  assert.deepEqual(auto.classes, ["emu", "dog"]);
  assert.equal(auto.source.classOrder, join(root, "classes.txt"));
});

test("channels: all-grey sets stay 1-channel, mixed sets become RGB, and channels can be forced", () => {
  const grey = image(3, 2, 1, 5);
  const rgb = image(3, 2, 3, 9);
  const root = folder({ "a/g.png": grey, "b/c.png": rgb });
  const mixed = loadImageFolder(root);
  assert.deepEqual(mixed.images.shape, [2, 3, 2, 3]);
  assert.deepEqual(mixed.images.select(0, 0).toNumbers(), imageToUint8Tensor(grey, 3).toNumbers());
  assert.deepEqual(mixed.images.select(0, 1).toNumbers(), imageToUint8Tensor(rgb).toNumbers());
  const forced = loadImageFolder(root, { channels: 1 });
  assert.deepEqual(forced.images.shape, [2, 1, 2, 3]);
  assert.deepEqual(forced.images.select(0, 1).reshape(6).toNumbers(), Array.from(convertChannels(rgb, 1).data));
});

test("JPEG and PNG mix, and resizing to a size equals resizeImages on each image", () => {
  const root = folder({ "a/p.png": image(24, 20, 3, 0) });
  mkdirSync(join(root, "b"));
  copyFileSync(fixture("data", "jpeg", "rgb444.jpg"), join(root, "b", "j.jpg"));
  copyFileSync(fixture("data", "jpeg", "gray.jpg"), join(root, "b", "k.jpeg"));
  const ds = loadImageFolder(root, { size: [10, 12] });
  assert.deepEqual(ds.images.shape, [3, 3, 10, 12]);
  const jpg = decodeImage(readFileSync(join(root, "b", "j.jpg")), "j.jpg");
  const want = resizeImages(imageToUint8Tensor(jpg).unsqueeze(0), [10, 12]).reshape(3, 10, 12);
  assert.deepEqual(ds.images.select(0, 1).toNumbers(), want.toNumbers());
  assert.deepEqual(loadImageFolder(root, { size: 8 }).images.shape, [3, 3, 8, 8]);
});

test("errors name the folder or file: empty class, unreadable image, no classes, unknown listed class, mixed sizes", () => {
  fails(
    () => loadImageFolder(folder({ "a/1.png": image(2, 2, 1, 0), b: null })),
    /r\d+\/b: class folder has no images/,
  );
  fails(
    () => loadImageFolder(folder({ "a/1.png": image(2, 2, 1, 0), "a/2.png": "garbage" })),
    /a\/2\.png: not a PNG or JPEG file/,
  );
  const truncated = encodePng(image(8, 8, 3, 0)).subarray(0, 50);
  fails(() => loadImageFolder(folder({ "a/1.png": truncated })), /a\/1\.png: invalid PNG: truncated/);
  fails(() => loadImageFolder(folder({ "x.png": image(2, 2, 1, 0) })), /no class folders/);
  fails(() => loadImageFolder(join(base, "nope")), /nope: no such folder/);
  const two = folder({ "a/1.png": image(2, 2, 1, 0), "b/1.png": image(2, 2, 1, 0) });
  fails(() => loadImageFolder(two, { classes: ["a", "zebra", "b"] }), /no folder for 1 listed class\(es\): 'zebra'/);
  fails(() => loadImageFolder(two, { classes: ["a", "a"] }), /class 'a' is listed twice/);
  fails(() => loadImageFolder(two, { classes: ["a"], classFile: "x" }), /either as names or as a file/);
  fails(
    () => loadImageFolder(folder({ "a/1.png": image(2, 2, 1, 0), "b/1.png": image(3, 2, 1, 0) })),
    /b\/1\.png: 3x2 differs from .*a\/1\.png \(2x2\); give an image size/,
  );
});
