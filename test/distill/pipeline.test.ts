// distillClass with tiny in-memory models: what the diffusion model sees during refinement in paper mode and in
// the released code's mode.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import type { LoadedModels } from "../../src/distill/models.js";
import { authorsRun, distillClass, type DistillOptions } from "../../src/distill/pipeline.js";
import { presetClasses, recipeDefaults } from "../../src/distill/presets.js";
import { createAutoencoderKL } from "../../src/models/autoencoder.js";
import { createDiT } from "../../src/models/dit.js";
import { createResNet } from "../../src/models/resnet.js";
import { cat, Generator, keep, noGrad, randn, type Tensor } from "../../src/torch/index.js";
import type { RunLayout } from "../../src/distill/write.js";

function models(): LoadedModels {
  const dit = createDiT(
    {
      inputSize: 4,
      inChannels: 4,
      numClasses: 10,
      patchSize: 2,
      depth: 1,
      hiddenSize: 32,
      numHeads: 2,
      learnSigma: true,
    },
    { generator: new Generator(1) },
  );
  noGrad(() => dit.parameters().forEach((p) => p.add_(0.02)));
  const autoencoder = createAutoencoderKL(
    {
      inChannels: 1,
      outChannels: 1,
      blockOutChannels: [8, 8, 8],
      layersPerBlock: 1,
      latentChannels: 4,
      normNumGroups: 4,
      scalingFactor: 1,
    },
    { generator: new Generator(2) },
  );
  const selector = createResNet(
    { depth: 18, numClasses: 10, inChannels: 1, stem: "imagenet" },
    { generator: new Generator(3) },
  );
  for (const m of [dit, autoencoder, selector]) m.eval();
  const file = { path: "-", sha256: "-", bytes: 0 };
  return {
    dit,
    autoencoder,
    scalingFactor: 1,
    selector,
    selectorPreprocess: { size: 16, channels: 1, mean: [0.5], std: [0.5] },
    files: { dit: file, vae: file, selector: file },
  };
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
    order: "select-refine",
    guidedChannels: 3,
    seed: 0,
    batchSize: 8,
    device: "cpu",
    savePreRefine: false,
    saveLatents: false,
  };
}

function layout(): RunLayout {
  const out = mkdtempSync(join(tmpdir(), "cao2-pipe-"));
  return { out, state: `${out}.cao2` };
}

/** Records (training mode, timesteps, labels, forced label drops) of every DiT call of a refinement step. */
function spyRefinement(m: LoadedModels) {
  const calls: { training: boolean; t: number[]; y: number[]; drops?: number[] }[] = [];
  const forward = m.dit.forward.bind(m.dit);
  m.dit.forward = (x: Tensor, t: Tensor | number, y: Tensor, o?: Parameters<typeof forward>[3]) => {
    const drops = o?.forceDropIds as Tensor | undefined;
    if (x.requiresGrad)
      calls.push({
        training: m.dit.training,
        t: (t as Tensor).toNumbers(),
        y: y.toNumbers(),
        drops: drops?.toNumbers(),
      });
    return forward(x, t, y, o);
  };
  return calls;
}

test("paper mode: refinement sees original timesteps map[t] without label dropout", () => {
  const m = models();
  const calls = spyRefinement(m);
  const o = options("paper");
  const record = distillClass(m, o, o.classes[1], layout());
  assert.ok(
    record.items.every((it) => it.noiseRow === undefined),
    "no bank rows in paper mode",
  );
  assert.equal(calls.length, o.refineIters);
  const map = [0, 250, 500, 749, 999]; // respaced 5-step schedule
  for (const c of calls) {
    assert.equal(c.training, false);
    assert.equal(c.drops, undefined);
    assert.ok(
      c.t.every((t) => map.slice(1, 4).includes(t)),
      `t ${c.t}`,
    );
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
  distillClass(m, o, o.classes[1], layout(), { authors });
  assert.equal(calls.length, o.refineIters);
  for (const c of calls) {
    assert.ok(
      c.t.every((t) => t >= 1 && t <= 3),
      `t ${c.t}`,
    );
    assert.equal(c.drops?.length, o.ipc, "every refinement call gets one label-dropout decision per image");
  }
  // The class advanced the run's stream (the next class continues it instead of starting afresh).
  const next = randn([4], { generator: authors.stream }).toNumbers();
  assert.notDeepEqual(next, randn([4], { generator: new Generator(o.seed) }).toNumbers());
  assert.throws(() => distillClass(m, o, o.classes[1], layout()), /without an authors-mode stream/);
});

test("--order refine-select refines every pool candidate, then selects on the refined view; a candidate's refinement does not depend on the order", () => {
  const m = models();
  const calls = spyRefinement(m);
  const o = { ...options("paper"), select: "random" as const, batchSize: 3 };
  const n = o.ipc * o.poolFactor;
  const sr = layout();
  const a = distillClass(m, o, o.classes[1], sr);
  assert.equal(calls.length, o.refineIters, "select-refine: one batch of the IPC selected");
  calls.length = 0;
  const rs = layout();
  const b = distillClass(m, { ...o, order: "refine-select" }, o.classes[1], rs);
  assert.equal(calls.length, o.refineIters * Math.ceil(n / o.batchSize), "refine-select: the whole pool, in batches");
  assert.equal(
    calls.reduce((s, c) => s + c.y.length, 0),
    o.refineIters * n,
  );
  assert.equal(b.refinedPool?.length, n);
  assert.equal(a.refinedPool, undefined);
  // Random selection ignores the scores, so both orders keep the same candidates; each is refined with its own
  // noise and t draws, so the images are the same bytes.
  assert.deepEqual(
    b.items.map((it) => it.poolIndex),
    a.items.map((it) => it.poolIndex),
  );
  for (const it of a.items)
    assert.deepEqual(readFileSync(join(rs.out, it.file)), readFileSync(join(sr.out, it.file)), it.file);
  for (const [i, it] of b.items.entries()) {
    assert.deepEqual(
      [it.refinedPrediction, it.refinedConfidence],
      [b.refinedPool![it.poolIndex].prediction, b.refinedPool![it.poolIndex].confidence],
    );
    assert.equal(it.lossBefore, a.items[i].lossBefore);
    assert.equal(it.lossAfter, a.items[i].lossAfter);
  }
  assert.deepEqual(b.pool, a.pool, "the pool's record is the selector's view before refinement in both orders");
});

test("--order refine-select ranks the refined candidates: the kept ones are the most confident correct ones after refinement", () => {
  const m = models();
  // Tiny random models barely move in refinement and hardly tell images apart. Here refinement's noise prediction
  // depends strongly on its input (the DiT's output plus the noisy latent itself) and takes large steps, the decoder
  // shows the latent's values as an 8x8 image and the selector is a fixed random linear map, so that refinement
  // reorders the candidates in the selector's eyes.
  const forward = m.dit.forward.bind(m.dit);
  m.dit.forward = (x: Tensor, t: Tensor | number, y: Tensor, f?: Parameters<typeof forward>[3]) =>
    x.requiresGrad ? forward(x, t, y, f).add(cat([x, x], 1).mul(3)) : forward(x, t, y, f);
  m.autoencoder.decode = (z: Tensor) => z.reshape(z.size(0), 1, 8, 8).mul(0.3);
  const w = keep(randn([16 * 16, 10], { generator: new Generator(6) }));
  m.selector.forward = (x: Tensor) => x.flatten(1).matmul(w);
  const o = {
    ...options("paper"),
    select: "confident" as const,
    order: "refine-select" as const,
    refineIters: 6,
    lr: 0.5,
    poolFactor: 4,
  };
  const c = o.classes[2];
  const r = distillClass(m, o, c, layout());
  const rank = (view: { prediction: number; confidence: number }[]) =>
    view
      .map((p, index) => ({ ...p, index }))
      .filter((p) => p.prediction === c.modelIndex)
      .sort((x, y) => y.confidence - x.confidence || x.index - y.index)
      .map((p) => p.index);
  const kept = r.items.map((it) => it.poolIndex);
  assert.ok(rank(r.refinedPool!).length >= o.ipc, "enough correct candidates for the test to mean something");
  assert.deepEqual(kept, rank(r.refinedPool!).slice(0, o.ipc));
  assert.notDeepEqual(kept, rank(r.pool).slice(0, o.ipc), "the view before refinement would have kept others");
  assert.equal(r.filled, 0);
  w.dispose();
});
