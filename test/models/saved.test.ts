// cao2 model files: a saved model comes back with its weights, and a file of another kind, or one without the "cao2"
// description, is refused with an error naming what it holds and what was expected.
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { InputError } from "../../src/errors.js";
import { saveSafetensors } from "../../src/io/safetensors.js";
import { createAutoencoderKL } from "../../src/models/autoencoder.js";
import { createConvNet } from "../../src/models/convnet.js";
import { loadSavedClassifier, loadSavedModel, readModelMetaOfKind, saveModel } from "../../src/models/saved.js";
import * as torch from "../../src/torch/index.js";

const dir = mkdtempSync(join(tmpdir(), "cao2-saved-"));
const aeConfig = {
  inChannels: 1,
  outChannels: 1,
  blockOutChannels: [8],
  layersPerBlock: 1,
  latentChannels: 4,
  normNumGroups: 4,
  scalingFactor: 1,
};
const aePath = join(dir, "ae.safetensors");
const ae = createAutoencoderKL(aeConfig);
saveModel(aePath, ae, { kind: "autoencoder", config: aeConfig, scalingFactor: 0.5 });
const netConfig = { numClasses: 3, width: 8, depth: 1, norm: "instance" as const, inChannels: 1, imageSize: 8 };
const netPath = join(dir, "net.safetensors");
const net = createConvNet(netConfig);
saveModel(netPath, net, {
  kind: "convnet",
  config: netConfig,
  preprocess: { size: 8, channels: 1, mean: [0.5], std: [0.25] },
  classes: ["a", "b", "c"],
});
const plainPath = join(dir, "plain.safetensors");
saveSafetensors(plainPath, net.stateDict());

const invalid = (pattern: RegExp) => (e: unknown) => e instanceof InputError && pattern.test(e.message);

test("a saved model loads with its description and the same weights", () => {
  const { model, meta } = loadSavedModel(aePath, "autoencoder");
  assert.equal(meta.scalingFactor, 0.5);
  for (const [k, v] of ae.stateDict())
    assert.equal(
      torch.tidy(() => model.stateDict().get(k)!.sub(v).abs().max().item()),
      0,
      k,
    );
  const { net: back, preprocess } = loadSavedClassifier(netPath);
  assert.deepEqual(preprocess, { size: 8, channels: 1, mean: [0.5], std: [0.25] });
  for (const [k, v] of net.stateDict())
    assert.equal(
      torch.tidy(() => back.stateDict().get(k)!.sub(v).abs().max().item()),
      0,
      k,
    );
});

test("a file of another kind or without a description is refused, naming both", () => {
  assert.throws(
    () => loadSavedModel(netPath, "autoencoder"),
    invalid(/net\.safetensors: expected an autoencoder, but it holds a cao2 convnet model/),
  );
  assert.throws(() => loadSavedModel(aePath, "dit"), invalid(/expected a dit, but it holds a cao2 autoencoder model/));
  assert.throws(
    () => loadSavedModel(plainPath, "autoencoder"),
    invalid(/plain\.safetensors: not a cao2 model file \(no "cao2" metadata\)/),
  );
  assert.throws(
    () => loadSavedClassifier(aePath, "--model x"),
    invalid(
      /^--model x: expected a cao2 classifier model file \(ResNet or ConvNet\), but it holds a cao2 autoencoder model$/,
    ),
  );
  assert.throws(
    () => loadSavedClassifier(plainPath),
    invalid(/expected a cao2 classifier model file \(ResNet or ConvNet\), but it holds no "cao2" metadata/),
  );
  // Without a description the caller decides (an architecture read off the keys): no error here.
  assert.equal(readModelMetaOfKind(plainPath, ["resnet"], "a ResNet"), undefined);
  assert.equal(readModelMetaOfKind(netPath, ["resnet", "convnet"], "a classifier")?.kind, "convnet");
});
