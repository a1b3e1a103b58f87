// distillClass with tiny in-memory models: what the diffusion model sees during refinement in paper mode and in
// the released code's mode.
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import type { LoadedModels } from "../../src/distill/models.js";
import { authorsRun, distillClass, type DistillOptions } from "../../src/distill/pipeline.js";
import { presetClasses, recipeDefaults } from "../../src/distill/presets.js";
import { createAutoencoderKL } from "../../src/models/autoencoder.js";
import { createDiT } from "../../src/models/dit.js";
import { createResNet } from "../../src/models/resnet.js";
import { Generator, noGrad, randn, type Tensor } from "../../src/torch/index.js";

function models(): LoadedModels {
  const dit = createDiT({ inputSize: 4, inChannels: 4, numClasses: 10, patchSize: 2, depth: 1, hiddenSize: 32, numHeads: 2, learnSigma: true }, {}, { generator: new Generator(1) });
  noGrad(() => dit.parameters().forEach((p) => p.add_(0.02)));
  const autoencoder = createAutoencoderKL({ inChannels: 1, outChannels: 1, blockOutChannels: [8, 8, 8], layersPerBlock: 1, latentChannels: 4, normNumGroups: 4, scalingFactor: 1 }, { generator: new Generator(2) });
  const selector = createResNet({ depth: 18, numClasses: 10, inChannels: 1, stem: "imagenet" }, { generator: new Generator(3) });
  for (const m of [dit, autoencoder, selector]) m.eval();
  const file = { path: "-", sha256: "-", bytes: 0 };
  return { dit, autoencoder, scalingFactor: 1, selector, selectorPreprocess: { size: 16, channels: 1, mean: [0.5], std: [0.5] }, files: { dit: file, vae: file, selector: file } };
}

function options(compat: "paper" | "authors"): DistillOptions {
  const d = recipeDefaults("imagenet-100", compat);
  return {
    ...d,
    classes: presetClasses("fashion-mnist"),
    numClasses: 10,
    ipc: 2,
    refineIters: 4,
    tMax: 3,
    steps: 5,
    condition: "true",
    autoIpcThreshold: 50,
    compat,
    guidedChannels: 3,
    seed: 0,
    batchSize: 8,
    device: "cpu",
    savePreRefine: false,
    saveLatents: false,
  };
}

/** Records (training mode, timesteps, labels, forced label drops) of every DiT call of a refinement step. */
function spyRefinement(m: LoadedModels) {
  const calls: { training: boolean; t: number[]; y: number[]; drops?: number[] }[] = [];
  const forward = m.dit.forward.bind(m.dit);
  m.dit.forward = (x: Tensor, t: Tensor | number, y: Tensor, o?: Parameters<typeof forward>[3]) => {
    const drops = o?.forceDropIds as Tensor | undefined;
    if (x.requiresGrad) calls.push({ training: m.dit.training, t: (t as Tensor).toNumbers(), y: y.toNumbers(), drops: drops?.toNumbers() });
    return forward(x, t, y, o);
  };
  return calls;
}

test("paper mode: refinement sees original timesteps map[t] without label dropout", () => {
  const m = models();
  const calls = spyRefinement(m);
  const o = options("paper");
  const record = distillClass(m, o, o.classes[1], { out: mkdtempSync(join(tmpdir(), "cao2-pipe-")) });
  assert.ok(record.items.every((it) => it.noiseRow === undefined), "no bank rows in paper mode");
  assert.equal(calls.length, o.refineIters);
  const map = [0, 250, 500, 749, 999]; // respaced 5-step schedule
  for (const c of calls) {
    assert.equal(c.training, false);
    assert.equal(c.drops, undefined);
    assert.ok(c.t.every((t) => map.slice(1, 4).includes(t)), `t ${c.t}`);
    assert.deepEqual(c.y, [1, 1]);
  }
  assert.equal(m.dit.training, false, "the model is back in eval mode");
});

test("--compat authors: refinement passes the index k itself with training mode's label dropout drawn from the run's stream", () => {
  const m = models();
  const calls = spyRefinement(m);
  const o = options("authors");
  assert.equal(o.timestepMode, "index");
  assert.equal(o.refineTrainMode, true);
  const authors = authorsRun(o.seed, [4, 4, 4]);
  distillClass(m, o, o.classes[1], { out: mkdtempSync(join(tmpdir(), "cao2-pipe-")) }, { authors });
  assert.equal(calls.length, o.refineIters);
  for (const c of calls) {
    assert.ok(c.t.every((t) => t >= 1 && t <= 3), `t ${c.t}`);
    assert.equal(c.drops?.length, o.ipc, "every refinement call gets one label-dropout decision per image");
  }
  // The class advanced the run's stream (the next class continues it instead of starting afresh).
  const next = randn([4], { generator: authors.stream }).toNumbers();
  assert.notDeepEqual(next, randn([4], { generator: new Generator(o.seed) }).toNumbers());
  assert.throws(() => distillClass(m, o, o.classes[1], { out: mkdtempSync(join(tmpdir(), "cao2-pipe-")) }), /without an authors-mode stream/);
});
