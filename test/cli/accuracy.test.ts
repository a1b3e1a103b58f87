// `cao2 accuracy`: the counts agree with the classifier applied directly (plain and after an autoencoder round trip),
// per class too; mismatched classes and wrong model kinds are refused with exit code 2.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { selectorInput } from "../../src/distill/score.js";
import { batch, loadImageFolder } from "../../src/io/datasets/index.js";
import { resizeImages } from "../../src/io/image.js";
import { encodePng } from "../../src/io/png.js";
import { createAutoencoderKL } from "../../src/models/autoencoder.js";
import { createResNet } from "../../src/models/resnet.js";
import { saveModel } from "../../src/models/saved.js";
import * as torch from "../../src/torch/index.js";
import { ROOT } from "../helpers/fixtures.js";

const dir = mkdtempSync(join(tmpdir(), "cao2-accuracy-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const classes = ["a", "b", "c"];
const pre = { size: 16, channels: 1, mean: [0.4], std: [0.3] };

// Three classes of 12x12 grey images with different brightness, 5 each, and a random ResNet plus autoencoder.
const data = join(dir, "data");
const gen = new torch.Generator(7);
classes.forEach((c, k) => {
  mkdirSync(join(data, c), { recursive: true });
  for (let i = 0; i < 5; i++) {
    const px = torch.tidy(() =>
      torch
        .rand([12 * 12], { generator: gen })
        .mul(80)
        .add(60 * k + 20)
        .toFloat32Array(),
    );
    writeFileSync(
      join(data, c, `${i}.png`),
      encodePng({ width: 12, height: 12, channels: 1, data: Uint8Array.from(px, Math.round) }),
    );
  }
});
const net = createResNet(
  { depth: 18, numClasses: 3, inChannels: 1, stem: "cifar" },
  { generator: new torch.Generator(3) },
);
net.eval();
const model = join(dir, "sel.safetensors");
saveModel(model, net, { kind: "resnet", config: net.config, preprocess: pre, classes });
const ae = createAutoencoderKL(
  {
    inChannels: 1,
    outChannels: 1,
    blockOutChannels: [8, 8],
    layersPerBlock: 1,
    latentChannels: 4,
    normNumGroups: 4,
    scalingFactor: 1,
  },
  { generator: new torch.Generator(2) },
);
ae.eval();
const aePath = join(dir, "ae.safetensors");
saveModel(aePath, ae, { kind: "autoencoder", config: ae.config, scalingFactor: 1 });

function cao2(...args: string[]) {
  const r = spawnSync(process.execPath, [join(ROOT, "dist", "src", "cli", "main.js"), "accuracy", ...args], {
    encoding: "utf8",
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** Per-class hit counts of the network on images [N, 1, H, W] in [0, 1]. */
function hits(x: torch.Tensor, labels: Int32Array): number[] {
  const pred = torch.noGrad(() => torch.argmax(net.forward(selectorInput(x, pre)), 1).toNumbers());
  const out = [0, 0, 0];
  pred.forEach((p, i) => (out[labels[i]] += p === labels[i] ? 1 : 0));
  return out;
}

test("accuracy and per-class accuracy match the classifier applied directly, plain and reconstructed", () => {
  const json = join(dir, "acc.json");
  const r = cao2(
    "--model",
    model,
    "--data",
    data,
    "--autoencoder",
    aePath,
    "--batch-size",
    "4",
    "--threads",
    "1",
    "--json",
    json,
  );
  assert.equal(r.code, 0, r.err);
  const j = JSON.parse(readFileSync(json, "utf8"));
  const ds = loadImageFolder(data);
  const { x } = batch(
    ds,
    Array.from(ds.labels, (_, i) => i),
  );
  const plain = hits(x, ds.labels);
  const rec = torch.noGrad(() =>
    torch.tidy(() => {
      const xs = resizeImages(x, [16, 16]);
      return ae
        .decode(ae.encode(xs.mul(2).sub(1)).mean)
        .add(1)
        .div(2)
        .clamp(0, 1);
    }),
  );
  const recon = hits(rec, ds.labels);
  assert.equal(j.images, 15);
  assert.deepEqual(
    j.perClass.map((c: { accuracy: number }) => c.accuracy * 5),
    plain,
  );
  assert.equal(j.accuracy, plain.reduce((a, b) => a + b) / 15);
  assert.deepEqual(
    j.reconstructedPerClass.map((c: { accuracy: number }) => Math.round(c.accuracy * 5)),
    recon,
  );
  assert.match(r.out, /top-1 of .* \(15 images\): \d+\.\d\d%/);
  assert.match(r.out, /on reconstructions by .*: \d+\.\d\d% \(-?\d+\.\d\d points\)/);
});

test("refuses a data set with other classes, a model of the wrong kind, and a missing --model", () => {
  const other = join(dir, "other");
  for (const c of ["a", "b", "z"]) {
    mkdirSync(join(other, c), { recursive: true });
    writeFileSync(join(other, c, "0.png"), encodePng({ width: 4, height: 4, channels: 1, data: new Uint8Array(16) }));
  }
  const bad = cao2("--model", model, "--data", other);
  assert.equal(bad.code, 2);
  assert.match(bad.err, /class 2 is 'c' in .* but 'z'/);
  const kind = cao2("--model", aePath, "--data", data);
  assert.equal(kind.code, 2);
  assert.match(kind.err, /expected a classifier \(the selector\), but it holds a cao2 autoencoder model/);
  const none = cao2("--data", data);
  assert.equal(none.code, 2);
  assert.match(none.err, /--model is required/);
});
