// Recipe: train the class-conditional DiT of the embedded default on the autoencoder's latents, as DiT's train.py
// does: latents = posterior sample * scaling factor, t uniform in [0, 1000), the hybrid loss (eps MSE + the
// variational bound for the learned variance), label dropout 0.1 for classifier-free guidance, AdamW without
// weight decay, EMA weights (the ones shipped and sampled with). Validation: the eps MSE on held-out latents at
// fixed timesteps and noise.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { GaussianDiffusion } from "../diffusion/gaussian.js";
import { trainingLosses } from "../diffusion/losses.js";
import { batch, type Dataset, labelsTensor, splitTrainVal } from "../io/datasets/index.js";
import { loadSafetensors, saveSafetensors } from "../io/safetensors.js";
import type { AutoencoderKL } from "../models/autoencoder.js";
import { createDiT, type DiT, type DiTConfig } from "../models/dit.js";
import { saveModel } from "../models/saved.js";
import {
  AdamW,
  cat,
  defaultGenerator,
  fromArray,
  Generator,
  keep,
  manualSeed,
  noGrad,
  randint,
  randn,
  type Tensor,
  tidy,
} from "../torch/index.js";
import { deriveSeed } from "../util/seed.js";
import { toSigned } from "./autoencoder.js";
import { resized } from "./classifier.js";
import { copyWeights } from "./ema.js";
import { epochBatches, runOptions, trainLoop, type TrainingRun } from "./loop.js";

export interface DiTRecipe {
  size: number;
  depth: number;
  hiddenSize: number;
  numHeads: number;
  patchSize: number;
  steps: number;
  batchSize: number;
  lr: number;
  warmup: number;
  emaDecay: number;
  valPerClass: number;
  seed: number;
  checkpointEvery: number;
}

export const DIT_DEFAULTS: DiTRecipe = {
  size: 32,
  depth: 6,
  hiddenSize: 192,
  numHeads: 3,
  patchSize: 2,
  steps: 12000,
  batchSize: 128,
  lr: 3e-4,
  warmup: 500,
  emaDecay: 0.999,
  valPerClass: 200,
  seed: 0,
  checkpointEvery: 250,
};

/** Posterior means and stds of a data set's images, in batches (no gradients), on the autoencoder's `device`. */
export function encodeMoments(
  ae: AutoencoderKL,
  ds: Dataset,
  batchSize = 250,
  device = "cpu",
): { mean: Tensor; std: Tensor } {
  const means: Tensor[] = [];
  const stds: Tensor[] = [];
  noGrad(() => {
    for (let i = 0; i < ds.labels.length; i += batchSize) {
      const idx = Array.from({ length: Math.min(batchSize, ds.labels.length - i) }, (_, k) => i + k);
      const post = tidy(() => {
        const p = ae.encode(toSigned(batch(ds, idx).x.to(device)));
        return { mean: p.mean.clone(), std: p.std.clone() };
      });
      means.push(post.mean);
      stds.push(post.std);
    }
  });
  const out = tidy(() => ({ mean: cat(means, 0), std: cat(stds, 0) }));
  for (const t of [...means, ...stds]) t.dispose();
  return { mean: keep(out.mean), std: keep(out.std) };
}

/** The eps MSE of the model on latents at fixed timesteps with fixed noise (the same every call). */
export function validationLoss(
  model: DiT,
  diffusion: GaussianDiffusion,
  latents: Tensor,
  labels: Tensor,
  seed: number,
): number {
  const ts = [50, 150, 300, 500, 700, 900];
  let total = 0;
  noGrad(() => {
    for (const t of ts) {
      total += tidy(() => {
        const noise = randn(latents.shape, {
          generator: new Generator(deriveSeed(seed, "val-noise", t)),
          device: latents.device,
        });
        const tt = new Array<number>(latents.size(0)).fill(t);
        return trainingLosses(diffusion, model, latents, tt, noise, labels).mse.mean().item();
      });
    }
  });
  return total / ts.length;
}

export interface DiTRun extends TrainingRun {
  /** On the run's device. */
  autoencoder: AutoencoderKL;
  scalingFactor: number;
}

export function trainDiT(r: DiTRun, recipe: DiTRecipe): { valLoss: number; modelPath: string } {
  const data = resized(r.data, recipe.size);
  const { train, val } = splitTrainVal(data, {
    valPerClass: recipe.valPerClass,
    seed: deriveSeed(recipe.seed, "split"),
  });
  // The latents of the training split are computed once per run folder (encoding is deterministic).
  const device = r.device ?? "cpu";
  const cache = join(r.outDir, "latents.safetensors");
  let moments: { mean: Tensor; std: Tensor };
  if (existsSync(cache)) {
    const m = loadSafetensors(cache);
    moments = tidy(() => ({ mean: keep(m.get("mean")!.to(device)), std: keep(m.get("std")!.to(device)) }));
  } else {
    r.progress?.log(`encoding ${train.labels.length} training images`);
    moments = encodeMoments(r.autoencoder, train, undefined, device);
    saveSafetensors(cache, moments);
  }
  const valLatents = keep(tidy(() => encodeMoments(r.autoencoder, val, undefined, device).mean.mul(r.scalingFactor)));
  const valLabels = keep(labelsTensor(val.labels).to(device));
  const latentShape = moments.mean.shape.slice(1);
  const config: DiTConfig = {
    inputSize: latentShape[1],
    inChannels: latentShape[0],
    numClasses: data.classes.length,
    learnSigma: true,
    classDropoutProb: 0.1,
    depth: recipe.depth,
    hiddenSize: recipe.hiddenSize,
    numHeads: recipe.numHeads,
    patchSize: recipe.patchSize,
    mlpRatio: 4,
    gammaBlocks: 0,
  };
  const gen = new Generator(deriveSeed(recipe.seed, "train"));
  const model = createDiT(config, { generator: new Generator(deriveSeed(recipe.seed, "init")), device });
  const ema = createDiT(config, { init: "zeros", device });
  copyWeights(ema, model);
  ema.eval();
  const optimizer = new AdamW(model.parameters(), { lr: recipe.lr, weightDecay: 0 });
  const diffusion = GaussianDiffusion.create({ numTimesteps: 1000 });
  const total = recipe.steps;
  const { batch: batchAt } = epochBatches(train.labels.length, recipe.batchSize, recipe.seed);
  const atPrecision = model.atPrecision(device, r.precision ?? "fp32");
  const step = (i: number) => {
    optimizer.paramGroups[0].lr = recipe.lr * Math.min(1, (i + 1) / recipe.warmup);
    const idx = batchAt(i);
    const rows = fromArray(BigInt64Array.from(idx, BigInt), [idx.length], { device });
    const mean = moments.mean.indexSelect(0, rows);
    const std = moments.std.indexSelect(0, rows);
    const x0 = mean.add(std.mul(randn(mean.shape, { generator: gen, device }))).mul(r.scalingFactor);
    const y = labelsTensor(Array.from(idx, (k) => train.labels[k])).to(device);
    const t = randint(0, diffusion.numTimesteps, [idx.length], { generator: gen });
    const noise = randn(x0.shape, { generator: gen, device });
    const losses = trainingLosses(diffusion, atPrecision, x0, t, noise, y);
    losses.loss.mean().backward();
    optimizer.step();
    optimizer.zeroGrad();
    return { loss: losses.loss.mean().item(), mse: losses.mse.mean().item() };
  };
  // Label dropout draws from the default generator (DiT's token_drop); it is seeded here and checkpointed.
  manualSeed(deriveSeed(recipe.seed, "label-dropout"));
  model.train();
  trainLoop({ model, ema, optimizer, generators: { train: gen, labelDrop: defaultGenerator() } }, step, {
    ...runOptions(r, recipe, total, { scalingFactor: r.scalingFactor }),
    logEvery: 25,
    emaDecay: recipe.emaDecay,
    validateEvery: 1000,
    validate: () => ({ val_mse_ema: validationLoss(ema, diffusion, valLatents, valLabels, recipe.seed) }),
  });
  const valLoss = validationLoss(ema, diffusion, valLatents, valLabels, recipe.seed);
  const modelPath = join(r.outDir, "model.safetensors");
  saveModel(
    modelPath,
    ema,
    { kind: "dit", config, classes: data.classes },
    { val_mse: valLoss.toExponential(4), scaling_factor: String(r.scalingFactor) },
  );
  return { valLoss, modelPath };
}
