// ConvNet-D parity with our PyTorch copy of the DD evaluation net (tools/reference/models_convnet.py): key layout,
// eval and training outputs, running statistics and gradients for instance / batch / no norm, the 1-channel padding rule.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { InputError } from "../../src/errors.js";
import { loadSafetensors } from "../../src/io/safetensors.js";
import { type ConvNetConfig, createConvNet } from "../../src/models/convnet.js";
import * as torch from "../../src/torch/index.js";
import { fixture } from "../helpers/fixtures.js";
import { checkTrainEval, shapesOf } from "./classifier_parity.js";

interface CaseMeta extends Required<Omit<ConvNetConfig, "firstPadding" | "imageSize">> {
  imageSize: number;
  keys: [string, number[]][];
}

const cases: [string, (m: CaseMeta) => ConvNetConfig][] = [
  // The standard ConvNet-3 (width 128, instance norm, 3x32x32) is the default configuration.
  ["convnet3_instance", (m) => ({ numClasses: m.numClasses })],
  ["convnet3_batch_1ch28", (m) => m],
  ["convnet4_none", (m) => m],
];

for (const [name, config] of cases) {
  test(`${name}: DD key layout, eval and training outputs, running statistics and gradients (rel err <= 1e-5)`, (t) => {
    const meta = JSON.parse(readFileSync(fixture("models", "convnet", `${name}.json`), "utf8")) as CaseMeta;
    const fx = loadSafetensors(fixture("models", "convnet", `${name}.safetensors`));
    const model = createConvNet(config(meta));
    const refKeys = new Map(meta.keys);
    assert.deepEqual([...shapesOf(model.stateDict())].sort(), [...refKeys].sort());
    model.loadStateDict(new Map([...fx].filter(([k]) => refKeys.has(k))));
    checkTrainEval(t, model, fx);
  });
}

test("PyTorch default init (as the DD codes use): conv and linear U(+-1/sqrt(fan_in)), instance norm 1/0", () => {
  const m = createConvNet({ numClasses: 10, width: 32 }, { generator: new torch.Generator(5) });
  assert.equal(m.numFeatures, 32 * 4 * 4);
  const sd = m.stateDict();
  const bound = (k: string, fanIn: number) => {
    const t = sd.get(k)!;
    const b = 1 / Math.sqrt(fanIn);
    assert.ok(t.abs().max().item() <= b && t.abs().max().item() > 0.9 * b, k);
  };
  bound("features.0.weight", 27);
  bound("features.4.weight", 32 * 9);
  bound("features.4.bias", 32 * 9);
  bound("classifier.weight", 512);
  assert.deepEqual(new Set(sd.get("features.5.weight")!.toNumbers()), new Set([1]));
  assert.deepEqual(new Set(sd.get("features.5.bias")!.toNumbers()), new Set([0]));
});

test("ConvNet sizes: non-square images, the padding override, and clear errors", () => {
  const m = createConvNet({ numClasses: 3, width: 8, depth: 2, imageSize: [16, 24], norm: "none" });
  assert.equal(m.numFeatures, 8 * 4 * 6);
  assert.deepEqual(m.forward(torch.zeros([2, 3, 16, 24])).shape, [2, 3]);
  // 1-channel input takes padding 3 by default (28 -> 32); firstPadding 1 gives the plain 28 -> 14 -> 7 -> 3 chain.
  assert.equal(createConvNet({ numClasses: 10, width: 4, inChannels: 1, imageSize: 28 }).numFeatures, 4 * 4 * 4);
  assert.equal(
    createConvNet({ numClasses: 10, width: 4, inChannels: 1, imageSize: 28, firstPadding: 1 }).numFeatures,
    4 * 3 * 3,
  );
  assert.throws(() => m.forward(torch.zeros([2, 3, 16, 16])), /expects input \[N, 3, 16, 24\]; got \[2,3,16,16\]/);
  assert.throws(() => createConvNet({ numClasses: 10, depth: 6, imageSize: 32 }), InputError);
  assert.throws(() => createConvNet({ numClasses: 10, norm: "layer" as "none" }), InputError);
  assert.throws(() => createConvNet({ numClasses: 1.5 }), InputError);
});

test("freeze(): eval mode and no parameter takes a gradient, yet gradients still flow to the input", () => {
  const m = createConvNet({ numClasses: 10, width: 8, imageSize: 16 }, { generator: new torch.Generator(1) });
  assert.equal(m.freeze(), m);
  assert.equal(m.training, false);
  assert.ok(m.parameters().every((p) => !p.requiresGrad));
  const x = torch.randn([2, 3, 16, 16], { generator: new torch.Generator(2) }).requiresGrad_(true);
  m.forward(x).sum().backward();
  assert.ok(x.grad !== null && x.grad.abs().sum().item() > 0);
  assert.ok(m.parameters().every((p) => p.grad === null));
});
