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
import { type FlagSpecs, type Parsed, parseCommand, UsageError } from "./args.js";
import { applyReadLimits, READ_LIMIT_FLAGS } from "./limits.js";

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
  ...READ_LIMIT_FLAGS,
} satisfies FlagSpecs;

const CLASSIFIER = {
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
  autoencoder: { type: "string", help: "The trained autoencoder (a cao2 model file)", default: "assets/fashion-mnist/autoencoder.safetensors" },
  "total-steps": { type: "int", help: "Length of the training schedule", default: DIT_DEFAULTS.steps },
  "batch-size": { type: "int", help: "Batch size", default: DIT_DEFAULTS.batchSize },
  lr: { type: "number", help: "Learning rate (after linear warm-up)", default: DIT_DEFAULTS.lr },
  depth: { type: "int", help: "DiT blocks", default: DIT_DEFAULTS.depth },
  hidden: { type: "int", help: "Hidden size", default: DIT_DEFAULTS.hiddenSize },
  heads: { type: "int", help: "Attention heads", default: DIT_DEFAULTS.numHeads },
} satisfies FlagSpecs;

type Common = Parsed<typeof COMMON>;

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

interface Recipe {
  help: string;
  /** Parses the recipe's flags (undefined after --help), prepares the run folder and trains; returns the summary. */
  main(argv: readonly string[], usage: string): string | undefined;
}

/** A recipe from its own flags (the common ones come with every recipe) and its training call. */
function recipe<S extends FlagSpecs>(own: S, help: string, train: (a: Parsed<typeof COMMON & S>, progress: Progress) => string): Recipe {
  const flags = { ...COMMON, ...own };
  return {
    help,
    main(argv, usage) {
      const a = parseCommand(argv, usage, help, flags);
      if (!a) return undefined;
      const c = a as unknown as Common; // COMMON is part of every recipe's flags (not provable for a generic S)
      applyReadLimits(c);
      if (!c.out) throw new UsageError("--out is required (the run folder)");
      if (c.threads !== undefined) setNumThreads(c.threads);
      mkdirSync(c.out, { recursive: true });
      installInterruptHandler();
      return train(a, new Progress({ unit: "steps" }));
    },
  };
}

const RECIPES: Record<string, Recipe> = {
  classifier: recipe(CLASSIFIER, "Classifier: a ResNet (selector and soft-label teacher) or a ConvNet-3", (a, progress) => {
    const res = trainClassifier(
      { ...trainingRun(a, progress), init: a.init },
      {
        ...CLASSIFIER_DEFAULTS,
        arch: a.arch as StudentArch,
        norm: (a.norm ?? (a.arch === "convnet3" ? "instance" : "batch")) as "batch" | "instance",
        stem: a.stem as "imagenet" | "cifar" | "mid",
        size: a.size,
        epochs: a.epochs,
        batchSize: a.batchSize,
        lr: a.lr,
        ...commonSettings(a, CLASSIFIER_DEFAULTS),
      },
    );
    return `validation accuracy ${(res.valAccuracy * 100).toFixed(2)}%\nmodel: ${res.modelPath}`;
  }),
  autoencoder: recipe(AUTOENCODER, "AutoencoderKL (the SD VAE architecture, small configuration)", (a, progress) => {
    const res = trainAutoencoder(
      { ...trainingRun(a, progress), init: a.init, perceptual: a.perceptual === undefined ? undefined : { path: a.perceptual, weight: a.perceptualWeight } },
      {
        ...AUTOENCODER_DEFAULTS,
        decoderOnly: a.decoderOnly,
        epochs: a.epochs,
        batchSize: a.batchSize,
        lr: a.lr,
        blockOutChannels: a.channels.map(Number),
        ...commonSettings(a, AUTOENCODER_DEFAULTS),
      },
    );
    return `validation MSE ${res.valMse.toExponential(3)}, latent scale ${res.scalingFactor.toFixed(5)}\nmodel: ${res.modelPath}`;
  }),
  dit: recipe(DIT, "Class-conditional DiT on the autoencoder's latents", (a, progress) => {
    const { model, meta } = loadSavedModel(a.autoencoder, "autoencoder");
    const res = trainDiT(
      { ...trainingRun(a, progress), autoencoder: model as AutoencoderKL, scalingFactor: meta.scalingFactor },
      {
        ...DIT_DEFAULTS,
        steps: a.totalSteps,
        batchSize: a.batchSize,
        lr: a.lr,
        depth: a.depth,
        hiddenSize: a.hidden,
        numHeads: a.heads,
        ...commonSettings(a, DIT_DEFAULTS),
      },
    );
    return `validation eps MSE (EMA) ${res.valLoss.toFixed(5)}\nmodel: ${res.modelPath}`;
  }),
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
  const out = spec.main(rest, `cao2 train ${recipe} --out <dir> [flags]`);
  if (out !== undefined) process.stdout.write(out + "\n");
  return 0;
}
