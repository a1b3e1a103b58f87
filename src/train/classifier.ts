// Recipe: train an image classifier (the selector / soft-label teacher: a ResNet; or a ConvNet-3, e.g. the network of
// a perceptual distance) on a data set's training split, validating
// on a held-out part of that split (never the test set). SGD with Nesterov momentum, cosine learning rate per step,
// random crop with padding and horizontal flips. Resumable; the result is a cao2 model file with its preprocessing.
import { join } from "node:path";
import { type Dataset, batch, splitTrainVal } from "../io/datasets/index.js";
import { resizeImages } from "../io/image.js";
import { randomCropWithPadding, randomHorizontalFlip } from "../evaluate/augment.js";
import { normalize } from "../io/image.js";
import type { ResNetStem } from "../models/resnet.js";
import { type Preprocess, saveModel } from "../models/saved.js";
import { buildClassifier, type Classifier, savedClassifier } from "../models/classifiers.js";
import { type StudentArch, studentSpec } from "../evaluate/students.js";
import { argmax, autocastToFloat, F, Generator, noGrad, SGD, type Tensor, tidy } from "../torch/index.js";
import { deriveSeed } from "../util/seed.js";
import { epochBatches, runOptions, trainLoop, type TrainingRun } from "./loop.js";
import { initSettings, warmStart } from "./warm-start.js";

export interface ClassifierRecipe {
  arch: StudentArch;
  /** ResNet stem (ConvNets have none). */
  stem: ResNetStem;
  norm: "batch" | "instance";
  /** Images are resized to size x size (uint8, once) before training. */
  size: number;
  epochs: number;
  batchSize: number;
  lr: number;
  momentum: number;
  weightDecay: number;
  labelSmoothing: number;
  /** Validation images per class held out of the training split. */
  valPerClass: number;
  seed: number;
  checkpointEvery: number;
}

export const CLASSIFIER_DEFAULTS: ClassifierRecipe = {
  arch: "resnet18",
  stem: "mid",
  norm: "batch",
  size: 32,
  epochs: 12,
  batchSize: 128,
  lr: 0.1,
  momentum: 0.9,
  weightDecay: 5e-4,
  labelSmoothing: 0.1,
  valPerClass: 500,
  seed: 0,
  checkpointEvery: 200,
};

/** Per-channel mean and standard deviation of uint8 images, in [0, 1] units. */
export function channelStats(images: Tensor): { mean: number[]; std: number[] } {
  return tidy(() => {
    const x = images.to("float64").div(255);
    const dims = [0, 2, 3];
    return {
      mean: x.mean(dims).toNumbers(),
      std: x.sub(x.mean(dims, true)).pow(2).mean(dims).sqrt().toNumbers(),
    };
  });
}

/** Top-1 accuracy of a classifier on `device` on a data set (already at the model's size), in eval mode, in batches. */
export function accuracy(model: Classifier, ds: Dataset, pre: Preprocess, batchSize = 500, device = "cpu"): number {
  const wasTraining = model.training;
  model.eval();
  let correct = 0;
  noGrad(() => {
    for (let i = 0; i < ds.labels.length; i += batchSize) {
      const idx = Array.from({ length: Math.min(batchSize, ds.labels.length - i) }, (_, k) => i + k);
      correct += tidy(() => {
        const { x, y } = batch(ds, idx);
        return argmax(model.forward(normalize(x.to(device), pre.mean, pre.std)), 1)
          .eq(y.to(device))
          .sum()
          .item();
      });
    }
  });
  model.train(wasTraining);
  return correct / ds.labels.length;
}

/** Resizes a data set's images to size x size (uint8). */
export function resized(ds: Dataset, size: number): Dataset {
  if (ds.images.size(2) === size && ds.images.size(3) === size) return ds;
  return { ...ds, images: resizeImages(ds.images, [size, size]) };
}

export interface ClassifierRun extends TrainingRun {
  /** Start from this cao2 classifier's weights (same architecture) instead of a fresh initialisation: a second,
   * warm-restarted schedule on top of a finished run. */
  init?: string;
}

/** Trains and writes <outDir>/model.safetensors; returns the validation accuracy of the final weights. */
export function trainClassifier(
  r: ClassifierRun,
  recipe: ClassifierRecipe,
): { valAccuracy: number; modelPath: string } {
  const data = resized(r.data, recipe.size);
  const { train, val } = splitTrainVal(data, {
    valPerClass: recipe.valPerClass,
    seed: deriveSeed(recipe.seed, "split"),
  });
  const stats = channelStats(train.images);
  const pre: Preprocess = { size: recipe.size, channels: data.images.size(1), mean: stats.mean, std: stats.std };
  const spec = studentSpec(recipe.arch, {
    numClasses: data.classes.length,
    inChannels: pre.channels,
    imageSize: recipe.size,
    norm: recipe.norm,
    stem: recipe.stem,
  });
  const device = r.device ?? "cpu";
  const model = buildClassifier(spec, { generator: new Generator(deriveSeed(recipe.seed, "init")), device });
  const saved = savedClassifier(spec, pre, data.classes);
  if (r.init) warmStart(model, r.init, saved.kind, saved.config, { names: "architecture", of: (c) => [c] });
  const decay = model.parameters().filter((p) => p.ndim > 1);
  const noDecay = model.parameters().filter((p) => p.ndim <= 1);
  const optimizer = new SGD(
    [
      { params: decay, weightDecay: recipe.weightDecay },
      { params: noDecay, weightDecay: 0 },
    ],
    { lr: recipe.lr, momentum: recipe.momentum, nesterov: true },
  );
  const aug = new Generator(deriveSeed(recipe.seed, "augment"));
  const { perEpoch, batch: batchAt } = epochBatches(train.labels.length, recipe.batchSize, recipe.seed);
  const total = recipe.epochs * perEpoch;
  const step = (i: number) => {
    const lr = (recipe.lr * (1 + Math.cos((Math.PI * i) / total))) / 2;
    for (const g of optimizer.paramGroups) g.lr = lr;
    const { x, y } = batch(train, batchAt(i));
    const xa = normalize(randomHorizontalFlip(randomCropWithPadding(x.to(device), aug, 4), aug), pre.mean, pre.std);
    const logits = autocastToFloat(device, r.precision ?? "fp32", () => model.forward(xa));
    const loss = F.crossEntropy(logits, y.to(device), { labelSmoothing: recipe.labelSmoothing });
    loss.backward();
    optimizer.step();
    optimizer.zeroGrad();
    return { loss: loss.item(), lr };
  };
  model.train();
  trainLoop({ model, optimizer, generators: { augment: aug } }, step, {
    ...runOptions(r, recipe, total, { classes: data.classes, ...initSettings(r.init) }),
    logEvery: 20,
    validateEvery: perEpoch,
    validate: () => ({ val_accuracy: accuracy(model, val, pre, undefined, device) }),
  });
  const valAccuracy = accuracy(model, val, pre, undefined, device);
  const modelPath = join(r.outDir, "model.safetensors");
  saveModel(modelPath, model, saved, { val_accuracy: valAccuracy.toFixed(4) });
  return { valAccuracy, modelPath };
}
