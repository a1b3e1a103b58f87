// idx reader and Fashion-MNIST: checked against an independent parse of the Debian files, and against broken files.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { gunzipSync, gzipSync } from "node:zlib";
import { InputError } from "../../src/errors.js";
import {
  FASHION_MNIST_CLASSES,
  FASHION_MNIST_DIR,
  loadFashionMnist,
  loadIdxPair,
} from "../../src/io/datasets/index.js";

const haveFashion = existsSync(join(FASHION_MNIST_DIR, "train-images-idx3-ubyte.gz"));
const skip = haveFashion
  ? false
  : `Fashion-MNIST not installed in ${FASHION_MNIST_DIR} (Debian package dataset-fashion-mnist)`;

/** Our own minimal reading of the raw file: big-endian header words, then the payload. */
function rawIdx(path: string): { words: number[]; payload: Buffer } {
  const b = gunzipSync(readFileSync(path));
  const n = b[3];
  const words = [];
  for (let i = 0; i <= n; i++) words.push(b.readUInt32BE(4 * i));
  return { words, payload: b.subarray(4 + 4 * n) };
}

for (const [split, prefix, count] of [
  ["train", "train", 60000],
  ["test", "t10k", 10000],
] as const) {
  test(`Fashion-MNIST ${split}: counts, shapes, labels, pixels and hashes agree with the raw files`, { skip }, () => {
    const ds = loadFashionMnist(split);
    const img = rawIdx(join(FASHION_MNIST_DIR, `${prefix}-images-idx3-ubyte.gz`));
    const lab = rawIdx(join(FASHION_MNIST_DIR, `${prefix}-labels-idx1-ubyte.gz`));
    // magic words 0x803 / 0x801, then the sizes
    assert.deepEqual(img.words, [0x803, count, 28, 28]);
    assert.deepEqual(lab.words, [0x801, count]);
    assert.deepEqual(ds.images.shape, [count, 1, 28, 28]);
    assert.equal(ds.images.dtype, "uint8");
    assert.deepEqual(ds.classes, FASHION_MNIST_CLASSES);
    assert.deepEqual(Array.from(ds.labels.subarray(0, 20)), Array.from(lab.payload.subarray(0, 20)));
    assert.deepEqual(Array.from(ds.labels.subarray(count - 5)), Array.from(lab.payload.subarray(count - 5)));
    // every class equally frequent (6000 / 1000 per class), counted from the raw labels as well
    const counts = new Array(10).fill(0);
    for (const l of lab.payload) counts[l]++;
    assert.deepEqual(counts, new Array(10).fill(count / 10));
    const ours = new Array(10).fill(0);
    for (const l of ds.labels) ours[l]++;
    assert.deepEqual(ours, counts);
    // first and last image bytes
    for (const i of [0, count - 1]) {
      const want = Array.from(img.payload.subarray(i * 784, (i + 1) * 784));
      assert.deepEqual(ds.images.select(0, i).reshape(784).toNumbers(), want, `image ${i}`);
    }
    const files = [`${prefix}-images-idx3-ubyte.gz`, `${prefix}-labels-idx1-ubyte.gz`].map((f) =>
      readFileSync(join(FASHION_MNIST_DIR, f)),
    );
    assert.equal(ds.source.files![0].sha256, createHash("sha256").update(files[0]).digest("hex"));
    assert.equal(ds.source.sha256, createHash("sha256").update(files[0]).update(files[1]).digest("hex"));
  });
}

// ---- broken idx files ----
const dir = mkdtempSync(join(tmpdir(), "cao2-idx-"));
after(() => rmSync(dir, { recursive: true, force: true }));

function idx(typeByte: number, dims: number[], values: number[]): Buffer {
  const head = Buffer.alloc(4 + 4 * dims.length);
  head[2] = typeByte;
  head[3] = dims.length;
  dims.forEach((d, i) => head.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([head, Buffer.from(values)]);
}

function load(images: Buffer, labels: Buffer, gz = false) {
  const sub = mkdtempSync(join(dir, "case-"));
  writeFileSync(join(sub, `im${gz ? ".gz" : ""}`), gz ? gzipSync(images) : images);
  writeFileSync(join(sub, `lb${gz ? ".gz" : ""}`), gz ? gzipSync(labels) : labels);
  return loadIdxPair(sub, "im", "lb", ["a", "b", "c"]);
}

test("idx: plain and gzipped files give the same data set", () => {
  const images = idx(8, [2, 2, 3], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
  const labels = idx(8, [2], [2, 0]);
  const a = load(images, labels);
  const b = load(images, labels, true);
  assert.deepEqual(a.images.shape, [2, 1, 2, 3]);
  assert.deepEqual(a.images.toNumbers(), b.images.toNumbers());
  assert.deepEqual(Array.from(a.labels), [2, 0]);
});

test("idx: bad files fail with InputErrors that name the file and the problem", () => {
  const images = idx(8, [2, 2, 3], new Array(12).fill(0));
  const labels = idx(8, [2], [0, 1]);
  const fails = (f: () => unknown, re: RegExp) =>
    assert.throws(f, (e: Error) => e instanceof InputError && re.test(e.message), String(re));
  fails(() => load(Buffer.from([1, 2, 3, 4, 5]), labels), /im: not an idx file \(bad magic number\)/);
  fails(() => load(idx(0x0d, [2, 2, 3], new Array(48).fill(0)), labels), /im: idx value type 0xd is not supported/);
  fails(() => load(images.subarray(0, images.length - 1), labels), /im: 27 bytes, but its header \[2, 2, 3\] needs 28/);
  fails(() => load(images, idx(8, [3], [0, 1, 2])), /lb: 3 labels for 2 images/);
  fails(() => load(images, idx(8, [2], [0, 3])), /lb: label 3 at index 1 is outside 0\.\.2/);
  fails(() => load(idx(8, [2, 6], new Array(12).fill(0)), labels), /im: expected 3 dimensions/);
  fails(() => load(gzipSync(images).subarray(0, 20), labels), /im: corrupt gzip data/);
  fails(() => loadIdxPair(dir, "nothing", "lb", ["a"]), /neither nothing\.gz nor nothing found/);
  fails(() => loadFashionMnist("train", join(dir, "missing")), /missing: no such folder/);
});
