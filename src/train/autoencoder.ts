// Recipe: train the small AutoencoderKL of the embedded default (32x32x1 -> 8x8x4 with the SD VAE architecture).
// Loss: L1 reconstruction in [-1, 1] plus a small KL term (weight 1e-6, as the LDM autoencoders) on posterior
// samples; Adam with a cosine learning rate. The latent scaling factor is 1 / std of the training latents, as
// latent diffusion sets it. Validation: reconstruction MSE on a held-out part of the training split.
// Optionally a perceptual term (--perceptual: a frozen classifier's feature distance, train/perceptual.ts) joins L1,
// as the SD VAE's decoders are trained with LPIPS beside L1.
// A decoder-only fine-tune (--init + decoderOnly, as the SD VAE's ft-MSE decoders were made) keeps the encoder and
// its scaling factor, so a diffusion model trained on the latents stays valid.
import { join } from "node:path";
import { batch, type Dataset, splitTrainVal } from "../io/datasets/index.js";
import { type AutoencoderKL, type AutoencoderKLConfig, createAutoencoderKL } from "../models/autoencoder.js";
import { InputError } from "../errors.js";
import { saveModel } from "../models/saved.js";
import { sha256File } from "../io/files.js";
import { Adam, F, Generator, noGrad, type Tensor, tidy } from "../torch/index.js";
import { deriveSeed } from "../util/seed.js";
import { resized } from "./classifier.js";
import { epochBatches, runOptions, trainLoop, type TrainingRun } from "./loop.js";
import { loadPerceptual } from "./perceptual.js";
import { initSettings, warmStart } from "./warm-start.js";

export interface AutoencoderRecipe {
  size: number;
  blockOutChannels: number[];
  layersPerBlock: number;
  latentChannels: number;
  normNumGroups: number;
  epochs: number;
  batchSize: number;
  lr: number;
  klWeight: number;
  /** Train only the decoder side (post_quant_conv + decoder) of an --init autoencoder; the latents do not change. */
  decoderOnly: boolean;
  valPerClass: number;
  seed: number;
  checkpointEvery: number;
}

export const AUTOENCODER_DEFAULTS: AutoencoderRecipe = {
  size: 32,
  blockOutChannels: [32, 64, 64],
  layersPerBlock: 1,
  latentChannels: 4,
  normNumGroups: 8,
  epochs: 4,
  batchSize: 64,
  lr: 1e-3,
  klWeight: 1e-6,
  decoderOnly: false,
  valPerClass: 200,
  seed: 0,
  checkpointEvery: 200,
};

/** Images in [0, 1] to the autoencoder's [-1, 1]. */
export const toSigned = (x: Tensor) => x.mul(2).sub(1);

/** Mean squared reconstruction error (in [-1, 1] units) of the posterior means, over a data set. */
export function reconstructionMse(ae: AutoencoderKL, ds: Dataset, batchSize = 250, device = "cpu"): number {
  let total = 0;
  noGrad(() => {
    for (let i = 0; i < ds.labels.length; i += batchSize) {
      const idx = Array.from({ length: Math.min(batchSize, ds.labels.length - i) }, (_, k) => i + k);
      total += tidy(() => {
        const x = toSigned(batch(ds, idx).x.to(device));
        return F.mseLoss(ae.decode(ae.encode(x).mean), x, "sum").item();
      });
    }
  });
  return total / (ds.labels.length * ds.images.size(1) * ds.images.size(2) * ds.images.size(3));
}

/** 1 / std of the posterior means over (up to) `limit` images: latents then have unit variance. */
export function latentScale(ae: AutoencoderKL, ds: Dataset, limit = 5000, device = "cpu"): number {
  const n = Math.min(limit, ds.labels.length);
  let sum = 0;
  let sq = 0;
  let count = 0;
  noGrad(() => {
    for (let i = 0; i < n; i += 250) {
      const idx = Array.from({ length: Math.min(250, n - i) }, (_, k) => i + k);
      tidy(() => {
        const m = ae.encode(toSigned(batch(ds, idx).x.to(device))).mean;
        sum += m.sum().item();
        sq += m.pow(2).sum().item();
        count += m.numel;
      });
    }
  });
  const mean = sum / count;
  return 1 / Math.sqrt(sq / count - mean * mean);
}

export interface AutoencoderRun extends TrainingRun {
  /** Start from this cao2 autoencoder's weights (same architecture); required by a decoder-only fine-tune. */
  init?: string;
  /** A perceptual term of the loss: a cao2 classifier file whose features give the distance, and its weight. */
  perceptual?: { path: string; weight: number };
}

/** SD's autoencoders weigh LPIPS 1 beside L1. */
export const PERCEPTUAL_WEIGHT = 1;

/** The perceptual network (path and hash) and weight join the run's settings when one is used. */
const perceptualSettings = (p: AutoencoderRun["perceptual"]) =>
  p ? { perceptual: p.path, perceptualSha256: sha256File(p.path), perceptualWeight: p.weight } : {};

export function trainAutoencoder(
  r: AutoencoderRun,
  recipe: AutoencoderRecipe,
): { valMse: number; scalingFactor: number; modelPath: string } {
  const data = resized(r.data, recipe.size);
  const { train, val } = splitTrainVal(data, {
    valPerClass: recipe.valPerClass,
    seed: deriveSeed(recipe.seed, "split"),
  });
  const config: AutoencoderKLConfig = {
    inChannels: data.images.size(1),
    outChannels: data.images.size(1),
    blockOutChannels: recipe.blockOutChannels,
    layersPerBlock: recipe.layersPerBlock,
    latentChannels: recipe.latentChannels,
    normNumGroups: recipe.normNumGroups,
    scalingFactor: 1,
  };
  const device = r.device ?? "cpu";
  const ae = createAutoencoderKL(config, { generator: new Generator(deriveSeed(recipe.seed, "init")), device });
  if (recipe.decoderOnly && !r.init)
    throw new InputError("--decoder-only fine-tunes a trained autoencoder: pass it with --init");
  const init = r.init
    ? warmStart(ae, r.init, "autoencoder", config, {
        names: "channels, block channels, layers, latent channels, groups",
        of: (c) => [c.inChannels, c.blockOutChannels, c.layersPerBlock, c.latentChannels, c.normNumGroups],
      })
    : undefined;
  const decoderSide = (name: string) => name.startsWith("decoder.") || name.startsWith("post_quant_conv.");
  const trained = [...ae.namedParameters()]
    .filter(([name]) => !recipe.decoderOnly || decoderSide(name))
    .map(([, p]) => p);
  const perceptual = r.perceptual && {
    distance: loadPerceptual(r.perceptual.path, config.inChannels, recipe.size, device),
    weight: r.perceptual.weight,
  };
  const optimizer = new Adam(trained, { lr: recipe.lr });
  const noise = new Generator(deriveSeed(recipe.seed, "posterior"));
  const { perEpoch, batch: batchAt } = epochBatches(train.labels.length, recipe.batchSize, recipe.seed);
  const total = recipe.epochs * perEpoch;
  const step = (i: number) => {
    const lr = (recipe.lr * (1 + Math.cos((Math.PI * i) / total))) / 2;
    optimizer.paramGroups[0].lr = lr;
    const x = toSigned(batch(train, batchAt(i)).x.to(device));
    // A frozen encoder needs no graph; the decoder still sees posterior samples, as the diffusion model's latents.
    const post = recipe.decoderOnly ? noGrad(() => ae.encode(x)) : ae.encode(x);
    const xr = ae.decode(post.sample(noise));
    const rec = F.l1Loss(xr, x);
    const kl = post.kl().mean();
    const per = perceptual && { distance: perceptual.distance(xr, x), weight: perceptual.weight };
    let loss = recipe.decoderOnly ? rec : rec.add(kl, recipe.klWeight);
    if (per) loss = loss.add(per.distance, per.weight);
    loss.backward();
    optimizer.step();
    optimizer.zeroGrad();
    return { l1: rec.item(), kl: kl.item(), ...(per ? { perceptual: per.distance.item() } : {}), lr };
  };
  ae.train();
  trainLoop({ model: ae, optimizer, generators: { posterior: noise } }, step, {
    ...runOptions(r, recipe, total, { ...initSettings(r.init), ...perceptualSettings(r.perceptual) }),
    logEvery: 20,
    validateEvery: perEpoch,
    validate: () => ({ val_mse: reconstructionMse(ae, val, undefined, device) }),
  });
  ae.eval();
  const valMse = reconstructionMse(ae, val, undefined, device);
  // A frozen encoder makes the same latents, so the init's scaling factor still holds.
  const scalingFactor = recipe.decoderOnly && init ? init.scalingFactor : latentScale(ae, train, undefined, device);
  const modelPath = join(r.outDir, "model.safetensors");
  saveModel(
    modelPath,
    ae,
    { kind: "autoencoder", config: { ...config, scalingFactor }, scalingFactor },
    { val_mse: valMse.toExponential(4) },
  );
  return { valMse, scalingFactor, modelPath };
}
