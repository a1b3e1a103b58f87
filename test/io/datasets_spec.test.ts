// Named Fashion-MNIST parts: the validation split is 200 images per class that every shipped model's recipe held
// out (their splits share seed deriveSeed(0, "split")), disjoint from "fit", and together they are the training split.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { test } from "node:test";
import { FASHION_MNIST_DIR, fashionMnistPart, loadDataSpec, splitTrainVal } from "../../src/io/datasets/index.js";
import * as torch from "../../src/torch/index.js";
import { deriveSeed } from "../../src/util/seed.js";

test("data-set names: fashion-mnist by role, -part and :part forms, folders pass through", () => {
  assert.equal(fashionMnistPart("fashion-mnist", "train"), "train");
  assert.equal(fashionMnistPart("fashion-mnist", "test"), "test");
  assert.equal(fashionMnistPart("fashion-mnist-val", "test"), "val");
  assert.equal(fashionMnistPart("fashion-mnist:fit", "test"), "fit");
  assert.equal(fashionMnistPart("fashion-mnist-valid", "test"), undefined);
  assert.equal(fashionMnistPart("./fashion-mnist", "train"), undefined);
});

const have = existsSync(FASHION_MNIST_DIR) || !!process.env.FASHION_MNIST_DIR;

test(
  "fashion-mnist-val: 200 per class, disjoint from fit, held out by the selector's 500-per-class split too",
  { skip: !have && "no Fashion-MNIST" },
  () => {
    const val = loadDataSpec("fashion-mnist-val", "test");
    const fit = loadDataSpec("fashion-mnist-fit", "train");
    const train = loadDataSpec("fashion-mnist", "train");
    assert.equal(val.labels.length, 2000);
    assert.equal(fit.labels.length, 58000);
    for (let c = 0; c < 10; c++) assert.equal(val.labels.filter((l) => l === c).length, 200);
    assert.match(val.source.path, /#val$/);
    // The selector recipe's split (valPerClass 500, same seed) holds out a superset of these 2,000 images.
    const sel = splitTrainVal(train, { valPerClass: 500, seed: deriveSeed(0, "split") });
    const small = splitTrainVal(train, { valPerClass: 200, seed: deriveSeed(0, "split") });
    const selVal = new Set(sel.valIndices);
    assert.ok(small.valIndices.every((i) => selVal.has(i)));
    // The loaded images are those images, and no fit image equals a val image's index.
    const fitSet = new Set(small.trainIndices);
    assert.ok(small.valIndices.every((i) => !fitSet.has(i)));
    assert.ok(torch.tidy(() => torch.equal(val.images, small.val.images)));
    for (const d of [val, fit, train, sel.train, sel.val, small.train, small.val]) d.images.dispose();
  },
);
