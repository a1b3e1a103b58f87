// Parity of the students and selectors beyond ResNet / ConvNet with our PyTorch reference
// (tools/reference/models_students.py): torchvision's MobileNetV2 and EfficientNet-B0, IDC's ResNet-AP. Key names and
// shapes, eval and training outputs, running statistics and gradients at rel err <= 1e-5; dropout on its own.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { InputError } from "../../src/errors.js";
import { loadSafetensors } from "../../src/io/safetensors.js";
import { createEfficientNetB0 } from "../../src/models/efficientnet.js";
import { Dropout } from "../../src/models/layers.js";
import { createMobileNetV2 } from "../../src/models/mobilenet.js";
import { Store, VarBuilder } from "../../src/models/module.js";
import { createResNetAP, type ResNetAPConfig } from "../../src/models/resnet-ap.js";
import * as torch from "../../src/torch/index.js";
import { fixture } from "../helpers/fixtures.js";
import { fillFixtureWeights } from "../helpers/resnet-weights.js";
import { checkTrainEval, type Classifier, shapesOf } from "./classifier_parity.js";

interface CaseMeta {
  arch: "mobilenet_v2" | "efficientnet_b0" | "resnetap";
  config: { numClasses: number; inChannels?: number } & Partial<ResNetAPConfig>;
  keys: [string, number[]][];
  sums: Record<string, number>;
}

/** The reference's training forward has dropout and stochastic depth at 0 (they draw from other generators). */
function build(meta: CaseMeta): Classifier {
  const c = meta.config;
  if (meta.arch === "mobilenet_v2") return createMobileNetV2({ ...c, dropout: 0 });
  if (meta.arch === "efficientnet_b0") return createEfficientNetB0({ ...c, dropout: 0, stochasticDepth: 0 });
  return createResNetAP(c as ResNetAPConfig);
}

const sorted = (m: Map<string, readonly number[]>) => [...m].sort(([a], [b]) => (a < b ? -1 : 1));

for (const name of ["mobilenet_v2", "efficientnet_b0", "resnetap10_instance", "resnetap10_batch_mid_1ch"]) {
  test(`${name}: reference keys, eval and training outputs, running statistics and gradients (rel err <= 1e-5)`, (t) => {
    const meta = JSON.parse(readFileSync(fixture("models", "students", `${name}.json`), "utf8")) as CaseMeta;
    const fx = loadSafetensors(fixture("models", "students", `${name}.safetensors`));
    const model = fillFixtureWeights(build(meta), meta.sums);
    assert.deepEqual(sorted(shapesOf(model.stateDict())), sorted(new Map(meta.keys)));
    // One intra-op thread, as the fixture was made: over the deep batch-norm stacks of MobileNetV2 and EfficientNet-B0
    // a multi-threaded reduction sums in another order, which alone moves the training output by 1.8e-5 (2 threads).
    const threads = torch.getNumThreads();
    torch.setNumThreads(1);
    try {
      checkTrainEval(t, model, fx);
    } finally {
      torch.setNumThreads(threads);
    }
    torch.disposeAll(fx);
  });
}

test("Dropout zeroes elements (or whole samples) with probability p in training, scales the rest by 1/(1-p), and is the identity in eval", () => {
  const store = new Store("cpu", "float32", new torch.Generator(7));
  const vb = new VarBuilder(store);
  torch.tidy(() => {
    const x = torch.ones([400, 50]);
    for (const rows of [false, true]) {
      const y = new Dropout(vb, 0.3, rows).forward(x);
      const v = y.toFloat32Array();
      const kept = v.filter((e) => e !== 0);
      assert.ok(
        kept.every((e) => Math.abs(e - 1 / 0.7) < 1e-6),
        "kept values are scaled by 1/(1-p)",
      );
      const dropped = 1 - kept.length / v.length;
      assert.ok(Math.abs(dropped - 0.3) < 0.05, `dropped fraction ${dropped}`);
      if (rows)
        for (let r = 0; r < 400; r++)
          assert.equal(new Set(v.subarray(r * 50, r * 50 + 50)).size, 1, `row ${r} kept or dropped whole`);
    }
    store.training = false;
    assert.equal(new Dropout(vb, 0.3).forward(x), x);
  });
});

test("the same generator seed gives the same dropout draws (a seeded student's run is reproducible)", () => {
  const run = () =>
    torch.tidy(() => {
      const m = createMobileNetV2({ numClasses: 3 }, { generator: new torch.Generator(11) });
      m.train();
      return m.forward(torch.ones([2, 3, 32, 32])).toFloat32Array();
    });
  assert.deepEqual(run(), run());
});

test("bad configurations are input errors naming the setting", () => {
  assert.throws(
    () => createMobileNetV2({ numClasses: 0 }),
    (e) => e instanceof InputError && /numClasses/.test(e.message),
  );
  assert.throws(
    () => createEfficientNetB0({ numClasses: 10, dropout: 1 }),
    (e) => e instanceof InputError && /dropout/.test(e.message),
  );
  assert.throws(
    () => createResNetAP({ depth: 50 as 10, numClasses: 10 }),
    (e) => e instanceof InputError && /depth must be one of 10, 18, 34/.test(e.message),
  );
});
