// The perceptual distance of the autoencoder recipe against our PyTorch reference (tools/reference/
// perceptual_fixtures.py): a random-weight ConvNet-3 saved as a cao2 model file, the distance and its gradient with
// respect to the reconstruction; and the checks on the network file.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { InputError } from "../../src/errors.js";
import { loadSafetensors } from "../../src/io/safetensors.js";
import { createConvNet } from "../../src/models/convnet.js";
import { createAutoencoderKL } from "../../src/models/autoencoder.js";
import { saveModel } from "../../src/models/saved.js";
import { loadPerceptual } from "../../src/train/perceptual.js";
import { assertClose, fixture } from "../helpers/fixtures.js";

const dir = mkdtempSync(join(tmpdir(), "cao2-perceptual-"));
const fx = loadSafetensors(fixture("models", "perceptual", "convnet3_width16.safetensors"));
const { mean, std } = JSON.parse(readFileSync(fixture("models", "perceptual", "convnet3_width16.json"), "utf8")) as {
  mean: number[];
  std: number[];
};
const config = {
  numClasses: 10,
  width: 16,
  depth: 3,
  norm: "instance" as const,
  inChannels: 3,
  imageSize: 32,
  firstPadding: 1,
};
const netPath = join(dir, "convnet.safetensors");
const net = createConvNet(config);
net.loadStateDict(new Map([...fx].filter(([k]) => k.startsWith("features.") || k.startsWith("classifier."))));
saveModel(netPath, net, {
  kind: "convnet",
  config,
  preprocess: { size: 32, channels: 3, mean, std },
  classes: Array.from({ length: 10 }, (_, i) => `${i}`),
});

test("perceptual distance and its gradient match PyTorch (rel err <= 1e-5); zero for identical images", () => {
  const distance = loadPerceptual(netPath, 3, 32);
  const rec = fx.get("reconstruction")!.clone().requiresGrad_(true);
  const d = distance(rec, fx.get("target")!);
  assertClose(d, fx.get("distance")!, 1e-5, "distance");
  d.backward();
  assertClose(rec.grad!, fx.get("grad")!, 1e-5, "gradient");
  assert.ok(distance(fx.get("target")!, fx.get("target")!).item() < 1e-10);
});

test("perceptual network checks: a classifier file of the autoencoder's channels and size", () => {
  assert.throws(
    () => loadPerceptual(netPath, 1, 32),
    (e: unknown) => e instanceof InputError && /takes 3x32x32 images; the autoencoder works on 1x32x32/.test(e.message),
  );
  const aePath = join(dir, "ae.safetensors");
  const aeConfig = {
    inChannels: 3,
    outChannels: 3,
    blockOutChannels: [8],
    layersPerBlock: 1,
    latentChannels: 4,
    normNumGroups: 4,
    scalingFactor: 1,
  };
  saveModel(aePath, createAutoencoderKL(aeConfig), { kind: "autoencoder", config: aeConfig, scalingFactor: 1 });
  assert.throws(
    () => loadPerceptual(aePath, 3, 32),
    (e: unknown) =>
      e instanceof InputError &&
      /--perceptual .*ae\.safetensors: expected a cao2 classifier model file \(ResNet or ConvNet\), but it holds a cao2 autoencoder model/.test(
        e.message,
      ),
  );
});
