// `cao2 train <classifier|autoencoder|dit|minimax>`: the recipes that train the embedded models, and the Minimax
// fine-tune of a DiT (docs/minimax.md). Every run is resumable (checkpoint every N steps and on Ctrl-C; `--resume`
// continues), logs JSONL losses and validates on a held-out part of the training split.
import { mkdirSync } from "node:fs";
import { type ImageFolderOptions, loadDataSpec, sampleRandomPerClass } from "../io/datasets/index.js";
import { deriveSeed } from "../util/seed.js";
import { checkPrecision, installInterruptHandler, type Precision, setNumThreads } from "../torch/index.js";
import { Progress } from "../util/progress.js";
import type { AutoencoderKL } from "../models/autoencoder.js";
import { loadSavedModel } from "../models/saved.js";
import { AUTOENCODER_DEFAULTS, PERCEPTUAL_WEIGHT, trainAutoencoder } from "../train/autoencoder.js";
import { CLASSIFIER_DEFAULTS, trainClassifier } from "../train/classifier.js";
import { DIT_DEFAULTS, trainDiT } from "../train/dit.js";
import { imageSize, MINIMAX_DEFAULTS, trainMinimax } from "../train/minimax.js";
import { loadAutoencoder, loadDiT } from "../distill/models.js";
import type { TrainingRun } from "../train/loop.js";
import { STUDENT_ARCHS, type StudentArch } from "../evaluate/students.js";
import { type FlagSpecs, type Parsed, parseCommand, UsageError } from "./args.js";
import { checkOutputFolder } from "./outputs.js";
import { deviceFlag, MAX_BATCH, MAX_EPOCHS, precisionFlag, seedFlag, threadsFlag } from "./shared-flags.js";
import { assetPath } from "../util/assets.js";
import { applyReadLimits, READ_LIMIT_FLAGS } from "./limits.js";
import { SUMMARIES } from "./commands.js";

const COMMON = {
  data: { type: "string", help: "Training data: fashion-mnist or an ImageFolder path", default: "fashion-mnist" },
  out: { type: "string", help: "Run folder (checkpoint, log, final model)" },
  resume: {
    type: "boolean",
    help: "Continue the run in --out from its last checkpoint (other settings are refused), or start it if there is none",
    default: false,
  },
  steps: {
    type: "int",
    help: "Stop after this many steps (default: the recipe's full length; 0 only with --init: the init's weights as this run's model)",
    min: 0,
  },
  seed: seedFlag("Seed of initialisation, data order, augmentation and the split"),
  device: deviceFlag,
  threads: threadsFlag,
  precision: precisionFlag("The model's arithmetic in training (the loss, the optimiser and the weights stay fp32)"),
  "checkpoint-every": { type: "int", help: "Steps between checkpoints", min: 1 },
  "max-per-class": { type: "int", help: "Use at most this many training images per class (quick runs, CI)", min: 1 },
  "val-per-class": {
    type: "int",
    help: "Validation images per class held out of the training split",
    defaultText: "recipe's (500 classifier, 200 others)",
    min: 1,
  },
  ...READ_LIMIT_FLAGS,
} satisfies FlagSpecs;

const CLASSIFIER = {
  arch: {
    type: "string",
    choices: STUDENT_ARCHS,
    help: "Architecture (convnet3: the width-128 ConvNet-3 of the evaluation protocols)",
    default: CLASSIFIER_DEFAULTS.arch,
  },
  norm: {
    type: "string",
    choices: ["batch", "instance"],
    help: "Normalisation layers",
    defaultText: "batch for ResNets, instance for convnet3",
  },
  stem: {
    type: "string",
    help: "ResNet stem",
    choices: ["imagenet", "cifar", "mid"],
    default: CLASSIFIER_DEFAULTS.stem,
  },
  size: {
    type: "int",
    help: "Image size the classifier works at",
    default: CLASSIFIER_DEFAULTS.size,
    min: 8,
    max: 1024,
  },
  epochs: {
    type: "int",
    help: "Epochs over the training split",
    default: CLASSIFIER_DEFAULTS.epochs,
    min: 1,
    max: MAX_EPOCHS,
  },
  "batch-size": { type: "int", help: "Batch size", default: CLASSIFIER_DEFAULTS.batchSize, min: 1, max: MAX_BATCH },
  lr: {
    type: "number",
    help: "Peak learning rate (cosine decay per step)",
    default: CLASSIFIER_DEFAULTS.lr,
    min: 0,
    exclusiveMin: true,
  },
  init: { type: "string", help: "Start from this cao2 classifier's weights (a warm restart on top of a finished run)" },
} satisfies FlagSpecs;

const AUTOENCODER = {
  epochs: {
    type: "int",
    help: "Epochs over the training split",
    default: AUTOENCODER_DEFAULTS.epochs,
    min: 1,
    max: MAX_EPOCHS,
  },
  "batch-size": { type: "int", help: "Batch size", default: AUTOENCODER_DEFAULTS.batchSize, min: 1, max: MAX_BATCH },
  lr: {
    type: "number",
    help: "Peak learning rate (cosine decay per step)",
    default: AUTOENCODER_DEFAULTS.lr,
    min: 0,
    exclusiveMin: true,
  },
  channels: {
    type: "ints",
    help: "Channels per resolution level (2 levels halve the size twice)",
    default: AUTOENCODER_DEFAULTS.blockOutChannels,
    min: 1,
    max: 4096,
  },
  init: { type: "string", help: "Start from this cao2 autoencoder's weights (a fine-tune of a finished run)" },
  "decoder-only": {
    type: "boolean",
    help: "Train only the decoder of the --init autoencoder: latents and scaling factor stay as they are",
    default: false,
  },
  perceptual: {
    type: "string",
    help: "Add a perceptual term: feature distance under this cao2 classifier file (e.g. a train classifier --arch convnet3 run)",
  },
  "perceptual-weight": { type: "number", help: "Weight of the perceptual term", default: PERCEPTUAL_WEIGHT, min: 0 },
} satisfies FlagSpecs;

const DIT = {
  autoencoder: {
    type: "string",
    help: "The trained autoencoder (a cao2 model file)",
    defaultText: "the shipped assets/fashion-mnist/autoencoder.safetensors",
  },
  "total-steps": { type: "int", help: "Length of the training schedule", default: DIT_DEFAULTS.steps, min: 1 },
  "batch-size": { type: "int", help: "Batch size", default: DIT_DEFAULTS.batchSize, min: 1, max: MAX_BATCH },
  lr: {
    type: "number",
    help: "Learning rate (after linear warm-up)",
    default: DIT_DEFAULTS.lr,
    min: 0,
    exclusiveMin: true,
  },
  depth: { type: "int", help: "DiT blocks", default: DIT_DEFAULTS.depth, min: 1, max: 1000 },
  hidden: {
    type: "int",
    help: "Hidden size (a multiple of --heads)",
    default: DIT_DEFAULTS.hiddenSize,
    min: 1,
    max: 65_536,
  },
  heads: { type: "int", help: "Attention heads", default: DIT_DEFAULTS.numHeads, min: 1, max: 1024 },
} satisfies FlagSpecs;

const MINIMAX = {
  init: {
    type: "string",
    help: "The DiT to fine-tune (cao2 file, official DiT .pt, diffusers safetensors, Minimax checkpoint)",
    defaultText: "the shipped assets/fashion-mnist/dit.safetensors",
  },
  autoencoder: {
    type: "string",
    help: "The autoencoder of the DiT's latents (cao2 file or diffusers/SD VAE safetensors)",
    defaultText: "the shipped assets/fashion-mnist/autoencoder.safetensors",
  },
  "scaling-factor": {
    type: "number",
    help: "Latent scaling factor for an autoencoder without cao2 metadata",
    defaultText: "0.18215 (SD)",
    min: 0,
    exclusiveMin: true,
  },
  "latent-size": {
    type: "int",
    help: "Latent size for DiT checkpoints that do not record it (32 for 256x256)",
    min: 1,
    max: 1024,
  },
  "total-steps": {
    type: "int",
    help: "Length of the run (constant learning rate; the model is written at the end)",
    default: MINIMAX_DEFAULTS.steps,
    min: 1,
  },
  "batch-size": { type: "int", help: "Batch size", default: MINIMAX_DEFAULTS.batchSize, min: 1, max: MAX_BATCH },
  lr: {
    type: "number",
    help: "AdamW learning rate (constant)",
    default: MINIMAX_DEFAULTS.lr,
    min: 0,
    exclusiveMin: true,
  },
  "lambda-pos": {
    type: "number",
    help: "Weight of the representativeness term",
    default: MINIMAX_DEFAULTS.lambdaPos,
    min: 0,
  },
  "lambda-neg": { type: "number", help: "Weight of the diversity term", default: MINIMAX_DEFAULTS.lambdaNeg, min: 0 },
  "memory-size": {
    type: "int",
    help: "Real latents and pseudo embeddings kept per class",
    default: MINIMAX_DEFAULTS.memorySize,
    min: 1,
    max: MAX_BATCH,
  },
  flip: { type: "boolean", help: "Random horizontal flip of the real images", default: MINIMAX_DEFAULTS.flip },
} satisfies FlagSpecs;

type Common = Parsed<typeof COMMON>;

/** What every recipe's run gets from the common flags; the data is the whole training split, or a seeded per-class
 * subset of it. */
function trainingRun(c: Common, progress: Progress, folder: ImageFolderOptions = {}): TrainingRun {
  const ds = loadDataSpec(c.data, "train", folder);
  const data =
    c.maxPerClass === undefined ? ds : sampleRandomPerClass(ds, c.maxPerClass, deriveSeed(c.seed, "subset")).dataset;
  const precision = c.precision as Precision;
  return { data, outDir: c.out!, resume: c.resume, steps: c.steps, device: c.device, precision, progress };
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
function recipe<S extends FlagSpecs>(
  own: S,
  help: string,
  train: (a: Parsed<typeof COMMON & S>, progress: Progress) => string,
  /** Why the recipe trains in fp32 only, if it does. */
  fp32Only?: string,
): Recipe {
  const flags = { ...COMMON, ...own };
  return {
    help,
    main(argv, usage) {
      const a = parseCommand(argv, usage, help, flags);
      if (!a) return undefined;
      const c = a as unknown as Common; // COMMON is part of every recipe's flags (not provable for a generic S)
      applyReadLimits(c);
      if (!c.out) throw new UsageError("--out is required (the run folder)");
      if (c.steps === 0 && !("init" in a && a.init))
        throw new UsageError(
          "--steps 0 trains nothing: give at least 1 (0 is for --init, to keep that model's weights under a new run)",
        );
      if (c.threads !== undefined) setNumThreads(c.threads);
      checkPrecision(c.precision as Precision, c.device);
      if (fp32Only && c.precision !== "fp32")
        throw new UsageError(`this recipe trains in fp32 only (--precision ${c.precision} was given): ${fp32Only}`);
      checkOutputFolder("--out", c.out, { createParents: true });
      mkdirSync(c.out, { recursive: true });
      installInterruptHandler();
      return train(a, new Progress({ unit: "steps" }));
    },
  };
}

const RECIPES: Record<string, Recipe> = {
  classifier: recipe(
    CLASSIFIER,
    "Classifier: a ResNet (selector and soft-label teacher) or a ConvNet-3",
    (a, progress) => {
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
    },
  ),
  autoencoder: recipe(
    AUTOENCODER,
    "AutoencoderKL (the SD VAE architecture, small configuration)",
    (a, progress) => {
      const res = trainAutoencoder(
        {
          ...trainingRun(a, progress),
          init: a.init,
          perceptual: a.perceptual === undefined ? undefined : { path: a.perceptual, weight: a.perceptualWeight },
        },
        {
          ...AUTOENCODER_DEFAULTS,
          decoderOnly: a.decoderOnly,
          epochs: a.epochs,
          batchSize: a.batchSize,
          lr: a.lr,
          blockOutChannels: a.channels,
          ...commonSettings(a, AUTOENCODER_DEFAULTS),
        },
      );
      return `validation MSE ${res.valMse.toExponential(3)}, latent scale ${res.scalingFactor.toFixed(5)}\nmodel: ${res.modelPath}`;
    },
    "its posterior, KL and perceptual term sit inside the network's calls, where autocast would run them in bf16",
  ),
  dit: recipe(DIT, "Class-conditional DiT on the autoencoder's latents", (a, progress) => {
    const { model, meta } = loadSavedModel(
      a.autoencoder ?? assetPath("fashion-mnist/autoencoder.safetensors"),
      "autoencoder",
      a.device,
    );
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
  minimax: recipe(
    MINIMAX,
    "Fine-tune a DiT with the Minimax criterion (DiffFit parameters, docs/minimax.md)",
    (a, progress) => {
      const o = { device: a.device, latentSize: a.latentSize, scalingFactor: a.scalingFactor };
      const { autoencoder, scalingFactor } = loadAutoencoder(
        a.autoencoder ?? assetPath("fashion-mnist/autoencoder.safetensors"),
        o,
      );
      // A plain DiT gets the Minimax layout with its gammas at 1; a Minimax checkpoint keeps its own.
      const init = a.init ?? assetPath("fashion-mnist/dit.safetensors");
      const model = loadDiT(init, { ...o, minimaxGammas: true });
      // An ImageFolder is read at the model's image size (resized, not cropped).
      const res = trainMinimax(
        {
          ...trainingRun(a, progress, { size: imageSize(model, autoencoder) }),
          model,
          init,
          autoencoder,
          scalingFactor,
        },
        {
          ...MINIMAX_DEFAULTS,
          steps: a.totalSteps,
          batchSize: a.batchSize,
          lr: a.lr,
          lambdaPos: a.lambdaPos,
          lambdaNeg: a.lambdaNeg,
          memorySize: a.memorySize,
          flip: a.flip,
          ...commonSettings(a, MINIMAX_DEFAULTS),
        },
      );
      return `validation eps MSE (EMA) ${res.valLoss.toFixed(5)}\nmodel (EMA weights): ${res.modelPath}`;
    },
  ),
};

export async function run(argv: string[]): Promise<number> {
  const [recipe, ...rest] = argv;
  const spec = recipe ? RECIPES[recipe] : undefined;
  if (!spec) {
    if (recipe === "--help" || recipe === undefined) {
      process.stdout.write(`Usage: cao2 train <${Object.keys(RECIPES).join("|")}> [flags]\n\n${SUMMARIES.train}\n`);
      return recipe ? 0 : 2;
    }
    throw new UsageError(`unknown recipe '${recipe}' (one of ${Object.keys(RECIPES).join(", ")})`);
  }
  const out = spec.main(rest, `cao2 train ${recipe} --out <dir> [flags]`);
  if (out !== undefined) process.stdout.write(out + "\n");
  return 0;
}
