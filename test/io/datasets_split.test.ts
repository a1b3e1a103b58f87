// Seeded stratified selections: train/val split and the random-real baseline; subset and batch helpers.
import assert from "node:assert/strict";
import { test } from "node:test";
import { InputError } from "../../src/errors.js";
import { batch, type Dataset, sampleRandomPerClass, splitTrainVal, subset } from "../../src/io/datasets/index.js";
import * as torch from "../../src/torch/index.js";

/** 3 classes of 11, 6 and 4 images (labels interleaved); image i is filled with the value i. */
function toy(): Dataset {
  const labels: number[] = [];
  for (let i = 0; i < 21; i++) labels.push(i < 12 ? i % 3 : i < 17 ? (i % 2 === 0 ? 0 : 1) : 0);
  const n = labels.length;
  const images = torch.fromArray(
    Uint8Array.from({ length: n * 2 * 2 }, (_, k) => Math.floor(k / 4)),
    [n, 1, 2, 2],
  );
  return {
    images,
    labels: Int32Array.from(labels),
    classes: ["x", "y", "z"],
    source: { format: "idx", path: "toy", fileCount: 0, sha256: "" },
  };
}

const countBy = (labels: ArrayLike<number>, k: number) => {
  const c = new Array(k).fill(0);
  for (const l of Array.from(labels)) c[l]++;
  return c;
};

test("splitTrainVal: stratified, disjoint, complete, ordered; same seed same split, other seed different", () => {
  const ds = toy();
  const n = countBy(ds.labels, 3);
  assert.deepEqual(n, [11, 6, 4]);
  const s = splitTrainVal(ds, { valFraction: 0.3, seed: 1 });
  assert.deepEqual(
    countBy(s.val.labels, 3),
    n.map((k) => Math.round(k * 0.3)),
  );
  assert.deepEqual(
    [...s.trainIndices, ...s.valIndices].sort((a, b) => a - b),
    Array.from({ length: 21 }, (_, i) => i),
  );
  assert.deepEqual(
    s.valIndices,
    [...s.valIndices].sort((a, b) => a - b),
  );
  // the subsets hold the images and labels at those indices
  assert.deepEqual(
    Array.from(s.val.labels),
    s.valIndices.map((i) => ds.labels[i]),
  );
  assert.deepEqual(torch.amax(s.val.images, [1, 2, 3]).toNumbers(), s.valIndices);
  assert.deepEqual(splitTrainVal(ds, { valFraction: 0.3, seed: 1 }).valIndices, s.valIndices);
  const others = [2, 3, 4, 5].map((seed) => splitTrainVal(ds, { valFraction: 0.3, seed }).valIndices.join());
  assert.ok(
    others.some((o) => o !== s.valIndices.join()),
    "other seeds must give other splits",
  );
  const fixed = splitTrainVal(ds, { valPerClass: 2, seed: 9 });
  assert.deepEqual(countBy(fixed.val.labels, 3), [2, 2, 2]);
  assert.deepEqual(countBy(fixed.train.labels, 3), [9, 4, 2]);
});

test("splitTrainVal rejects bad options and splits that leave a class without training images", () => {
  const ds = toy();
  const fails = (o: Parameters<typeof splitTrainVal>[1], re: RegExp) =>
    assert.throws(
      () => splitTrainVal(ds, o),
      (e: Error) => e instanceof InputError && re.test(e.message),
    );
  fails({ valPerClass: 4, seed: 0 }, /class 'z' has 4 images; 4 for validation would leave none/);
  fails({ seed: 0 }, /exactly one of valFraction and valPerClass/);
  fails({ valFraction: 0.2, valPerClass: 1, seed: 0 }, /exactly one/);
  fails({ valFraction: 1, seed: 0 }, /valFraction must be in \(0, 1\)/);
  fails({ valPerClass: 1.5, seed: 0 }, /positive integer/);
});

test("sampleRandomPerClass: ipc per class, class-major order, deterministic per seed", () => {
  const ds = toy();
  const a = sampleRandomPerClass(ds, 3, 42);
  assert.equal(a.indices.length, 9);
  assert.deepEqual(Array.from(a.dataset.labels), [0, 0, 0, 1, 1, 1, 2, 2, 2]);
  assert.deepEqual(
    a.indices.map((i) => ds.labels[i]),
    [0, 0, 0, 1, 1, 1, 2, 2, 2],
  );
  assert.equal(new Set(a.indices).size, 9);
  assert.deepEqual(torch.amax(a.dataset.images, [1, 2, 3]).toNumbers(), a.indices);
  assert.deepEqual(sampleRandomPerClass(ds, 3, 42).indices, a.indices);
  const others = [1, 2, 3, 4].map((seed) => sampleRandomPerClass(ds, 3, seed).indices.join());
  assert.ok(others.some((o) => o !== a.indices.join()));
  assert.throws(() => sampleRandomPerClass(ds, 5, 0), /class 'z' has 4 images, fewer than the 5 per class/);
});

test("subset and batch: images and labels at the indices, batch as float [0, 1] and int64", () => {
  const ds = toy();
  const s = subset(ds, [5, 0, 5]);
  assert.deepEqual(torch.amax(s.images, [1, 2, 3]).toNumbers(), [5, 0, 5]);
  assert.deepEqual(Array.from(s.labels), [ds.labels[5], ds.labels[0], ds.labels[5]]);
  const b = batch(ds, [3, 20]);
  assert.equal(b.x.dtype, "float32");
  assert.deepEqual(b.x.shape, [2, 1, 2, 2]);
  assert.deepEqual(
    Array.from(b.x.toFloat32Array()),
    [3, 3, 3, 3, 20, 20, 20, 20].map((v) => Math.fround(v / 255)),
  );
  assert.equal(b.y.dtype, "int64");
  assert.deepEqual(b.y.toNumbers(), [ds.labels[3], ds.labels[20]]);
});
