// Condition "auto": the selector's top-1 on held-out real images, seen as a run shows it images, decides c^; without
// held-out images, the accuracy recorded in the selector file (with a note), and without that the preset's condition.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { test } from "node:test";
import { chooseCondition, type ConditionRequest, heldOutAccuracy } from "../../src/distill/condition.js";
import type { LoadedModels } from "../../src/distill/models.js";
import { type ClassSpec, presetClasses } from "../../src/distill/presets.js";
import { FASHION_MNIST_DIR, type Dataset } from "../../src/io/datasets/index.js";
import type { ResNet } from "../../src/models/resnet.js";
import { fromArray, type Tensor } from "../../src/torch/index.js";

/**
 * A stand-in selector over 3 classes that predicts the class nearest to the mean of its input, so what it predicts
 * shows what it was fed. With mean 0 and std 1/255, a run's preparation turns a pixel of value p back into p.
 */
function nearestMeanSelector(numClasses = 3) {
  const seen: number[][] = [];
  const forward = (x: Tensor) => {
    seen.push(x.shape);
    const [n] = x.shape;
    const v = x.toNumbers();
    const per = v.length / n;
    const logits = new Float32Array(n * numClasses);
    for (let i = 0; i < n; i++) {
      const mean = v.slice(i * per, (i + 1) * per).reduce((a, b) => a + b, 0) / per;
      for (let k = 0; k < numClasses; k++) logits[i * numClasses + k] = -((mean - k) ** 2);
    }
    return fromArray(logits, [n, numClasses]);
  };
  const m = {
    selector: { forward, config: { numClasses } } as unknown as ResNet,
    selectorPreprocess: { size: 4, channels: 1, mean: [0], std: [1 / 255] },
  } satisfies Pick<LoadedModels, "selector" | "selectorPreprocess">;
  return { m, seen };
}

/** Constant 4x4 grey images of the given pixel values. */
function constantImages(values: number[], labels: number[]): Dataset {
  const data = new Uint8Array(values.length * 16);
  values.forEach((v, i) => data.fill(v, i * 16, (i + 1) * 16));
  return {
    images: fromArray(data, [values.length, 1, 4, 4]),
    labels: Int32Array.from(labels),
    classes: ["a", "b", "c"],
    source: { format: "image-folder", path: "-", fileCount: values.length, sha256: "-" },
  };
}

const spec = (modelIndex: number[]): ClassSpec[] =>
  modelIndex.map((mi, label) => ({ label, modelIndex: mi, id: `c${label}`, name: `c${label}` }));

test("held-out accuracy: the selector's view of each real image, compared with the model index of its label", () => {
  const { m, seen } = nearestMeanSelector();
  // predictions (paper mode) = pixel values: 0 1 2 2 1 0
  const ds = constantImages([0, 1, 2, 2, 1, 0], [0, 1, 2, 1, 1, 0]);
  const o = { batchSize: 4, compat: "paper" as const, device: "cpu" };
  assert.equal(heldOutAccuracy(m, ds, spec([0, 1, 2]), o), 5 / 6);
  assert.deepEqual(
    seen.map((s) => s[0]),
    [4, 2],
    "in batches",
  );
  // Labels map to the selector's classes through the preset's model indices.
  assert.equal(heldOutAccuracy(m, ds, spec([2, 1, 0]), o), 2 / 6);
  // The released code's view: the decoder's range [-1, 1], no normalisation, so a pixel arrives as 2 p / 255 - 1
  // (all nearest 0).
  assert.equal(heldOutAccuracy(m, ds, spec([0, 1, 2]), { ...o, compat: "authors" }), 2 / 6);
});

const request = (over: Partial<ConditionRequest>): ConditionRequest => ({
  condition: "auto",
  autoConditionThreshold: 0.9,
  preset: "imagewoof",
  presetClasses: presetClasses("imagewoof"),
  presetCondition: "null",
  batchSize: 64,
  compat: "paper",
  device: "cpu",
  ...over,
});

test("condition true/null is taken as given, without measuring", () => {
  const { m, seen } = nearestMeanSelector();
  for (const c of ["true", "null"] as const) {
    assert.deepEqual(chooseCondition(request({ condition: c, preset: "fashion-mnist" }), m), {
      requested: c,
      chosen: c,
    });
  }
  assert.equal(seen.length, 0);
});

test("auto without held-out images: the accuracy recorded in the selector file, with a note; without one, the preset's condition", () => {
  const { m, seen } = nearestMeanSelector();
  const recorded = { ...m, selectorAccuracy: 0.95 };
  const a = chooseCondition(request({}), recorded);
  assert.equal(a.chosen, "true");
  assert.equal(a.accuracy, 0.95);
  assert.match(a.source!, /selector file/);
  assert.match(a.note!, /imagewoof preset has no held-out images/);
  assert.equal(chooseCondition(request({ autoConditionThreshold: 0.96 }), recorded).chosen, "null");
  const none = chooseCondition(request({ presetCondition: "true" }), m);
  assert.equal(none.chosen, "true");
  assert.equal(none.accuracy, undefined);
  assert.match(none.note!, /records no accuracy; using the preset's condition \(true\)/);
  assert.equal(seen.length, 0);
});

const missing = !existsSync(FASHION_MNIST_DIR) && `Fashion-MNIST not installed (${FASHION_MNIST_DIR})`;

test(
  "auto on fashion-mnist measures on the 2,000 validation images, not the recorded number; the threshold decides",
  { skip: missing },
  () => {
    const { m } = nearestMeanSelector(10);
    const r = request({ preset: "fashion-mnist", presetClasses: presetClasses("fashion-mnist"), batchSize: 500 });
    const a = chooseCondition(r, { ...m, selectorAccuracy: 0.99 });
    assert.equal(a.source, "fashion-mnist-val");
    assert.equal(a.images, 2000);
    assert.equal(a.note, undefined);
    // The stand-in predicts every image (pixel means well above 9) as class 9: the share of class 9 in the split.
    assert.equal(a.accuracy, 0.1);
    assert.equal(a.chosen, "null", "10% is below 0.9, whatever the file records");
    assert.equal(
      chooseCondition({ ...r, autoConditionThreshold: 0.1 }, m).chosen,
      "true",
      "reaching the threshold counts",
    );
  },
);
