// Recipe: fine-tune a class-conditional DiT with the Minimax criterion (Gu et al., CVPR 2024), as the authors'
// train_dit.py does (docs/minimax.md):
//  - DiffFit: gammas in the first half of the blocks (ones unless the starting checkpoint has them); only the
//    parameters whose names contain "bias", "norm", "gamma" or "y_embed" train, everything else is frozen;
//  - data: the real images (resized to the model's size, random horizontal flip), encoded on the fly by the
//    autoencoder: latent = posterior sample * scaling factor;
//  - loss: the standard DiT loss (eps MSE + the learned-variance VB term), t uniform in {0..999}, the model in
//    training mode (label dropout on), plus the Minimax terms on the predicted x_0 ("pseudo embeddings") against
//    per-class FIFO memories (src/train/minimax-criterion.ts), which are updated after the loss;
//  - AdamW (lr 1e-3, weight decay 0, constant), EMA of the whole model (0.9999, starting at the model), batch 8.
// The finished run writes the EMA weights as a cao2 DiT file (what `distill --dit` and `sample` read).
import { join } from "node:path";
import { GaussianDiffusion } from "../diffusion/gaussian.js";
import { trainingLosses } from "../diffusion/losses.js";
import { InputError } from "../errors.js";
import { batch, labelsTensor, sampleRandomPerClass, splitTrainVal } from "../io/datasets/index.js";
import type { AutoencoderKL } from "../models/autoencoder.js";
import { diffFitParameters } from "../models/difffit.js";
import { createDiT, type DiT, type DiTAtPrecision } from "../models/dit.js";
import { saveModel } from "../models/saved.js";
import {
  AdamW,
  flip,
  Generator,
  keep,
  lt,
  noGrad,
  type Optimizer,
  rand,
  randint,
  randn,
  type Tensor,
  tidy,
  where,
} from "../torch/index.js";
import { deriveSeed } from "../util/seed.js";
import { toSigned } from "./autoencoder.js";
import { resized } from "./classifier.js";
import { encodeMoments, validationLoss } from "./dit.js";
import { copyWeights } from "./ema.js";
import { epochBatches, runOptions, trainLoop, type TrainingRun } from "./loop.js";
import { ClassMemories, type MinimaxWeights, minimaxTerms } from "./minimax-criterion.js";
import { initSettings } from "./warm-start.js";

export interface MinimaxRecipe extends MinimaxWeights {
  /** Length of the run (the learning rate is constant; this is where it stops and writes the model). */
  steps: number;
  batchSize: number;
  lr: number;
  emaDecay: number;
  /** Items per class in each of the two memories. */
  memorySize: number;
  /** Random horizontal flip of the real images (the reference's augmentation). */
  flip: boolean;
  valPerClass: number;
  seed: number;
  checkpointEvery: number;
}

/** Held-out images per class that validation scores. */
const VAL_SCORED_PER_CLASS = 50;

export const MINIMAX_DEFAULTS: MinimaxRecipe = {
  steps: 12000,
  batchSize: 8,
  lr: 1e-3,
  emaDecay: 0.9999,
  lambdaPos: 0.002,
  lambdaNeg: 0.008,
  memorySize: 64,
  flip: true,
  valPerClass: 200,
  seed: 0,
  checkpointEvery: 250,
};

/** What one training step consumes besides the model: the real latents and every random draw, fixed by the caller. */
export interface MinimaxBatch {
  /** Real latents [B, C, H, W] (posterior sample * scaling factor). */
  x0: Tensor;
  labels: readonly number[];
  /** Timestep per item. */
  t: readonly number[];
  /** The noise of q(x_t | x_0), x0's shape. */
  noise: Tensor;
  /** Label dropout per item (1: the null label); undefined for a model without a null class. */
  drop?: Tensor;
}

export interface MinimaxTrainer {
  model: DiT;
  /** The model at the run's precision for the training forward (DiT.atPrecision; default: the model, in fp32). */
  atPrecision?: DiTAtPrecision;
  diffusion: GaussianDiffusion;
  optimizer: Optimizer<{ lr: number }>;
  memories: ClassMemories;
  weights: MinimaxWeights;
}

export interface MinimaxStepMetrics {
  [k: string]: number;
  /** Mean diffusion loss (eps MSE + VB). */
  loss: number;
  mse: number;
  vb: number;
  /** The weighted Minimax terms (0 while no class of the batch has a memory). */
  pos: number;
  neg: number;
}

/**
 * One optimisation step: diffusion loss, Minimax terms against the memories as they were, memory update with this
 * batch, backward, AdamW step. The EMA is the caller's (the training loop updates it after each step).
 */
export function minimaxStep(tr: MinimaxTrainer, b: MinimaxBatch): MinimaxStepMetrics {
  return tidy(() => {
    const { model, diffusion } = tr;
    const labels = labelsTensor(b.labels).to(b.x0.device);
    const net = tr.atPrecision ?? model;
    const dropped = { forward: (x: Tensor, t: Tensor, y: Tensor) => net.forward(x, t, y, { forceDropIds: b.drop }) };
    const losses = trainingLosses(diffusion, dropped, b.x0, b.t, b.noise, labels);
    const pseudo = diffusion.predictXstartFromEps(losses.xt, b.t, losses.eps);
    const terms = minimaxTerms(pseudo, b.labels, tr.memories, tr.weights);
    tr.memories.update(b.x0, pseudo, b.labels);
    const loss = losses.loss.mean();
    loss.add(terms.pos).add(terms.neg).backward();
    tr.optimizer.step();
    tr.optimizer.zeroGrad();
    return {
      loss: loss.item(),
      mse: losses.mse.mean().item(),
      vb: losses.vb?.mean().item() ?? 0,
      pos: terms.pos.item(),
      neg: terms.neg.item(),
    };
  });
}

/** Freezes every parameter outside the DiffFit subset (docs/minimax.md); returns the trainable ones, in key order. */
export function freezeOutsideDiffFit(model: DiT): Tensor[] {
  const trainable = diffFitParameters(model);
  for (const [name, p] of model.namedParameters()) p.requiresGrad_(trainable.has(name));
  return [...trainable.values()];
}

/** The image size whose latents the DiT takes: its latent size times the autoencoder's downsampling. */
export const imageSize = (dit: DiT, ae: AutoencoderKL): number =>
  dit.config.inputSize * 2 ** (ae.config.blockOutChannels.length - 1);

export interface MinimaxRun extends TrainingRun {
  /** The starting model (gammas included, see the CLI), on `device`; it is trained in place. */
  model: DiT;
  /** Its file, recorded with the run's settings with its hash (resume refuses another starting point). */
  init: string;
  autoencoder: AutoencoderKL;
  scalingFactor: number;
}

/** Trains and writes <outDir>/model.safetensors (the EMA weights); returns the EMA's validation eps MSE. */
export function trainMinimax(r: MinimaxRun, recipe: MinimaxRecipe): { valLoss: number; modelPath: string } {
  const { model, autoencoder: ae } = r;
  const device = r.device ?? "cpu";
  const c = model.config;
  if (r.data.classes.length !== c.numClasses) {
    throw new InputError(
      `--data has ${r.data.classes.length} classes but the DiT was trained for ${c.numClasses}; give data with the model's classes`,
    );
  }
  const latentChannels = ae.config.latentChannels;
  if (latentChannels !== c.inChannels)
    throw new InputError(
      `the autoencoder makes ${latentChannels}-channel latents but the DiT takes ${c.inChannels} channels`,
    );
  const data = resized(r.data, imageSize(model, ae));
  const { train, val } = splitTrainVal(data, {
    valPerClass: recipe.valPerClass,
    seed: deriveSeed(recipe.seed, "split"),
  });
  // Validation scores a seeded 50 per class of the held-out part: with batch 8, scoring all of it would cost as much
  // as the training steps between two validations.
  const scored = sampleRandomPerClass(
    val,
    Math.min(VAL_SCORED_PER_CLASS, recipe.valPerClass),
    deriveSeed(recipe.seed, "val-scored"),
  ).dataset;
  const valLatents = keep(tidy(() => encodeMoments(ae, scored, 250, device).mean.mul(r.scalingFactor)));
  const valLabels = keep(labelsTensor(scored.labels).to(device));

  const ema = createDiT(c, { device, init: "zeros" });
  copyWeights(ema, model);
  ema.eval();
  const optimizer = new AdamW(freezeOutsideDiffFit(model), { lr: recipe.lr, weightDecay: 0 });
  const diffusion = GaussianDiffusion.create({ numTimesteps: 1000 });
  const memories = new ClassMemories(recipe.memorySize, device);
  const atPrecision = model.atPrecision(device, r.precision ?? "fp32");
  const trainer: MinimaxTrainer = { model, atPrecision, diffusion, optimizer, memories, weights: recipe };
  const gen = new Generator(deriveSeed(recipe.seed, "train"));
  const { batch: batchAt } = epochBatches(train.labels.length, recipe.batchSize, recipe.seed);
  const dropProb = c.classDropoutProb;
  // Every random draw of a step comes from `gen` on the CPU, in a fixed order, so a run does not depend on the
  // device and a resumed run draws what the uninterrupted one did.
  const step = (i: number) => {
    const idx = batchAt(i);
    const n = idx.length;
    const x0 = noGrad(() => {
      let x = batch(train, idx).x;
      if (recipe.flip) x = where(lt(rand([n], { generator: gen }), 0.5).view(n, 1, 1, 1), flip(x, [3]), x);
      const post = ae.encode(toSigned(x.to(device)));
      return post.mean.add(post.std.mul(randn(post.mean.shape, { generator: gen }).to(device))).mul(r.scalingFactor);
    });
    const t = randint(0, diffusion.numTimesteps, [n], { generator: gen }).toNumbers();
    const noise = randn(x0.shape, { generator: gen }).to(device);
    const drop = dropProb > 0 ? lt(rand([n], { generator: gen }), dropProb).to(device) : undefined;
    return minimaxStep(trainer, { x0, labels: Array.from(idx, (k) => train.labels[k]), t, noise, drop });
  };
  let lastValidation: number | undefined;
  const validate = () => {
    lastValidation = validationLoss(ema, diffusion, valLatents, valLabels, recipe.seed);
    return {
      val_mse_ema: lastValidation,
      val_mse: evalMode(model, () => validationLoss(model, diffusion, valLatents, valLabels, recipe.seed)),
    };
  };
  model.train();
  trainLoop({ model, ema, optimizer, generators: { train: gen }, extraTensors: memories }, step, {
    ...runOptions(r, recipe, recipe.steps, { scalingFactor: r.scalingFactor, ...initSettings(r.init) }),
    logEvery: 25,
    emaDecay: recipe.emaDecay,
    validateEvery: 2000,
    validate,
  });
  // The loop validates at its last step; a resumed run that had nothing left to do has not.
  const valLoss = lastValidation ?? validationLoss(ema, diffusion, valLatents, valLabels, recipe.seed);
  const modelPath = join(r.outDir, "model.safetensors");
  saveModel(
    modelPath,
    ema,
    { kind: "dit", config: { ...c }, classes: data.classes },
    { val_mse: valLoss.toExponential(4), scaling_factor: String(r.scalingFactor), recipe: "minimax" },
  );
  memories.clear();
  return { valLoss, modelPath };
}

function evalMode<T>(m: DiT, fn: () => T): T {
  const was = m.training;
  m.eval();
  try {
    return fn();
  } finally {
    m.train(was);
  }
}
