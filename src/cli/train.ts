// `cao2 train <classifier|autoencoder|dit>`: the recipes that train the embedded models. Every run is resumable
// (checkpoint every N steps and on Ctrl-C; `--resume` continues), logs JSONL losses and validates on a held-out
// part of the training split.
import { mkdirSync } from "node:fs";
import { loadDataSpec, sampleRandomPerClass } from "../io/datasets/index.js";
import { deriveSeed } from "../util/seed.js";
import { setNumThreads } from "../torch/index.js";
import { installInterruptHandler } from "../util/interrupt.js";
import { Progress } from "../util/progress.js";
import type { AutoencoderKL } from "../models/autoencoder.js";
import { loadSavedModel } from "../models/saved.js";
import { AUTOENCODER_DEFAULTS, PERCEPTUAL_WEIGHT, trainAutoencoder } from "../train/autoencoder.js";
import { CLASSIFIER_DEFAULTS, trainClassifier } from "../train/classifier.js";
import { DIT_DEFAULTS, trainDiT } from "../train/dit.js";
import type { TrainingRun } from "../train/loop.js";
import { STUDENT_ARCHS, type StudentArch } from "../evaluate/students.js";
import { type FlagSpecs, parseArgs, parseCommand, UsageError } from "./args.js";

export const summary = "Train the small models of the embedded default (classifier, autoencoder, DiT)";

const COMMON = {
  data: { type: "string", help: "Training data: fashion-mnist or an ImageFolder path", default: "fashion-mnist" },
  out: { type: "string", help: "Run folder (checkpoint, log, final model)" },
  resume: { type: "boolean", help: "Continue the run in --out from its last checkpoint", default: false },
  steps: { type: "int", help: "Stop after this many steps (default: the recipe's full length)" },
  seed: { type: "int", help: "Seed of initialisation, data order, augmentation and the split", default: 0 },
  threads: { type: "int", help: "CPU threads", defaultText: "all cores" },
  "checkpoint-every": { type: "int", help: "Steps between checkpoints" },
  "max-per-class": { type: "int", help: "Use at most this many training images per class (quick runs, CI)" },
  "val-per-class": { type: "int", help: "Validation images per class held out of the training split", defaultText: "recipe's (500 classifier, 200 others)" },
} satisfies FlagSpecs;

const CLASSIFIER = {
  ...COMMON,
  arch: { type: "string", choices: STUDENT_ARCHS, help: "Architecture (convnet3: the width-128 ConvNet-3 of the evaluation protocols)", default: CLASSIFIER_DEFAULTS.arch },
  norm: { type: "string", choices: ["batch", "instance"], help: "Normalisation layers", defaultText: "batch for ResNets, instance for convnet3" },
  stem: { type: "string", help: "ResNet stem", choices: ["imagenet", "cifar", "mid"], default: CLASSIFIER_DEFAULTS.stem },
  size: { type: "int", help: "Image size the classifier works at", default: CLASSIFIER_DEFAULTS.size },
  epochs: { type: "int", help: "Epochs over the training split", default: CLASSIFIER_DEFAULTS.epochs },
  "batch-size": { type: "int", help: "Batch size", default: CLASSIFIER_DEFAULTS.batchSize },
  lr: { type: "number", help: "Peak learning rate (cosine decay per step)", default: CLASSIFIER_DEFAULTS.lr },
  init: { type: "string", help: "Start from this cao2 classifier's weights (a warm restart on top of a finished run)" },
} satisfies FlagSpecs;

const AUTOENCODER = {
  ...COMMON,
  epochs: { type: "int", help: "Epochs over the training split", default: AUTOENCODER_DEFAULTS.epochs },
  "batch-size": { type: "int", help: "Batch size", default: AUTOENCODER_DEFAULTS.batchSize },
  lr: { type: "number", help: "Peak learning rate (cosine decay per step)", default: AUTOENCODER_DEFAULTS.lr },
  channels: { type: "list", help: "Channels per resolution level (2 levels halve the size twice)", default: AUTOENCODER_DEFAULTS.blockOutChannels.map(String) },
  init: { type: "string", help: "Start from this cao2 autoencoder's weights (a fine-tune of a finished run)" },
  "decoder-only": { type: "boolean", help: "Train only the decoder of the --init autoencoder: latents and scaling factor stay as they are", default: false },
  perceptual: { type: "string", help: "Add a perceptual term: feature distance under this cao2 classifier file (e.g. a train classifier --arch convnet3 run)" },
  "perceptual-weight": { type: "number", help: "Weight of the perceptual term", default: PERCEPTUAL_WEIGHT },
} satisfies FlagSpecs;

const DIT = {
  ...COMMON,
  autoencoder: { type: "string", help: "The trained autoencoder (a cao2 model file)", default: "assets/fashion-mnist/autoencoder.safetensors" },
  "total-steps": { type: "int", help: "Length of the training schedule", default: DIT_DEFAULTS.steps },
  "batch-size": { type: "int", help: "Batch size", default: DIT_DEFAULTS.batchSize },
  lr: { type: "number", help: "Learning rate (after linear warm-up)", default: DIT_DEFAULTS.lr },
  depth: { type: "int", help: "DiT blocks", default: DIT_DEFAULTS.depth },
  hidden: { type: "int", help: "Hidden size", default: DIT_DEFAULTS.hiddenSize },
  heads: { type: "int", help: "Attention heads", default: DIT_DEFAULTS.numHeads },
} satisfies FlagSpecs;

type Common = ReturnType<typeof parseArgs<typeof COMMON>>;

/** What every recipe's run gets from the common flags; the data is the whole training split, or a seeded per-class
 * subset of it. */
function trainingRun(c: Common, progress: Progress): TrainingRun {
  const ds = loadDataSpec(c.data, "train");
  const data = c.maxPerClass === undefined ? ds : sampleRandomPerClass(ds, c.maxPerClass, deriveSeed(c.seed, "subset")).dataset;
  return { data, outDir: c.out!, resume: c.resume, steps: c.steps, progress };
}

/** The recipe settings the common flags give, over the recipe's defaults. */
const commonSettings = (c: Common, defaults: { valPerClass: number; checkpointEvery: number }) => ({
  valPerClass: c.valPerClass ?? defaults.valPerClass,
  seed: c.seed,
  checkpointEvery: c.checkpointEvery ?? defaults.checkpointEvery,
});

const RECIPES: Record<string, { flags: FlagSpecs; help: string; run(argv: string[], common: Common, progress: Progress): string }> = {
  classifier: {
    flags: CLASSIFIER,
    help: "Classifier: a ResNet (selector and soft-label teacher) or a ConvNet-3",
    run(argv, c, progress) {
      const a = parseArgs(argv, CLASSIFIER);
      const res = trainClassifier(
        { ...trainingRun(c, progress), init: a.init },
        {
          ...CLASSIFIER_DEFAULTS,
          arch: a.arch as StudentArch,
          norm: (a.norm ?? (a.arch === "convnet3" ? "instance" : "batch")) as "batch" | "instance",
          stem: a.stem as "imagenet" | "cifar" | "mid",
          size: a.size,
          epochs: a.epochs,
          batchSize: a.batchSize,
          lr: a.lr,
          ...commonSettings(c, CLASSIFIER_DEFAULTS),
        },
      );
      return `validation accuracy ${(res.valAccuracy * 100).toFixed(2)}%\nmodel: ${res.modelPath}`;
    },
  },
  autoencoder: {
    flags: AUTOENCODER,
    help: "AutoencoderKL (the SD VAE architecture, small configuration)",
    run(argv, c, progress) {
      const a = parseArgs(argv, AUTOENCODER);
      const res = trainAutoencoder(
        { ...trainingRun(c, progress), init: a.init, perceptual: a.perceptual === undefined ? undefined : { path: a.perceptual, weight: a.perceptualWeight } },
        {
          ...AUTOENCODER_DEFAULTS,
          decoderOnly: a.decoderOnly,
          epochs: a.epochs,
          batchSize: a.batchSize,
          lr: a.lr,
          blockOutChannels: a.channels.map(Number),
          ...commonSettings(c, AUTOENCODER_DEFAULTS),
        },
      );
      return `validation MSE ${res.valMse.toExponential(3)}, latent scale ${res.scalingFactor.toFixed(5)}\nmodel: ${res.modelPath}`;
    },
  },
  dit: {
    flags: DIT,
    help: "Class-conditional DiT on the autoencoder's latents",
    run(argv, c, progress) {
      const a = parseArgs(argv, DIT);
      const { model, meta } = loadSavedModel(a.autoencoder, "autoencoder");
      const res = trainDiT(
        { ...trainingRun(c, progress), autoencoder: model as AutoencoderKL, scalingFactor: meta.scalingFactor },
        {
          ...DIT_DEFAULTS,
          steps: a.totalSteps,
          batchSize: a.batchSize,
          lr: a.lr,
          depth: a.depth,
          hiddenSize: a.hidden,
          numHeads: a.heads,
          ...commonSettings(c, DIT_DEFAULTS),
        },
      );
      return `validation eps MSE (EMA) ${res.valLoss.toFixed(5)}\nmodel: ${res.modelPath}`;
    },
  },
};

export async function run(argv: string[]): Promise<number> {
  const [recipe, ...rest] = argv;
  const spec = recipe ? RECIPES[recipe] : undefined;
  if (!spec) {
    if (recipe === "--help" || recipe === undefined) {
      process.stdout.write(`Usage: cao2 train <${Object.keys(RECIPES).join("|")}> [flags]\n\n${summary}\n`);
      return recipe ? 0 : 2;
    }
    throw new UsageError(`unknown recipe '${recipe}' (one of ${Object.keys(RECIPES).join(", ")})`);
  }
  const parsed = parseCommand(rest, `cao2 train ${recipe} --out <dir> [flags]`, spec.help, spec.flags);
  if (!parsed) return 0;
  const common = parsed as unknown as Common;
  if (!common.out) throw new UsageError("--out is required (the run folder)");
  if (common.threads !== undefined) setNumThreads(common.threads);
  mkdirSync(common.out, { recursive: true });
  installInterruptHandler();
  process.stdout.write(spec.run(rest, common, new Progress({ unit: "steps" })) + "\n");
  return 0;
}
