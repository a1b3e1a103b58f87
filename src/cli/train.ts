// `cao2 train <classifier|autoencoder|dit>`: the recipes that train the embedded models. Every run is resumable
// (checkpoint every N steps and on Ctrl-C; `--resume` continues), logs JSONL losses and validates on a held-out
// part of the training split.
import { mkdirSync } from "node:fs";
import { loadDataSpec } from "../io/datasets/index.js";
import { setNumThreads } from "../torch/index.js";
import { installInterruptHandler } from "../util/interrupt.js";
import { Progress } from "../util/progress.js";
import { CLASSIFIER_DEFAULTS, trainClassifier } from "../train/classifier.js";
import { type FlagSpecs, formatHelp, parseArgs, UsageError } from "./args.js";

export const summary = "Train the small models of the embedded default (classifier, autoencoder, DiT)";

const COMMON = {
  data: { type: "string", help: "Training data: fashion-mnist or an ImageFolder path", default: "fashion-mnist" },
  out: { type: "string", help: "Run folder (checkpoint, log, final model)" },
  resume: { type: "boolean", help: "Continue the run in --out from its last checkpoint", default: false },
  steps: { type: "int", help: "Stop after this many steps (default: the recipe's full length)" },
  seed: { type: "int", help: "Seed of initialisation, data order, augmentation and the split", default: 0 },
  threads: { type: "int", help: "CPU threads", defaultText: "all cores" },
  "checkpoint-every": { type: "int", help: "Steps between checkpoints" },
} satisfies FlagSpecs;

const CLASSIFIER = {
  ...COMMON,
  depth: { type: "int", help: "ResNet depth (18, 50, 101)", default: CLASSIFIER_DEFAULTS.depth },
  stem: { type: "string", help: "ResNet stem", choices: ["imagenet", "cifar", "mid"], default: CLASSIFIER_DEFAULTS.stem },
  size: { type: "int", help: "Image size the classifier works at", default: CLASSIFIER_DEFAULTS.size },
  epochs: { type: "int", help: "Epochs over the training split", default: CLASSIFIER_DEFAULTS.epochs },
  "batch-size": { type: "int", help: "Batch size", default: CLASSIFIER_DEFAULTS.batchSize },
  lr: { type: "number", help: "Peak learning rate (cosine decay per step)", default: CLASSIFIER_DEFAULTS.lr },
  "val-per-class": { type: "int", help: "Validation images per class held out of the training split", default: CLASSIFIER_DEFAULTS.valPerClass },
} satisfies FlagSpecs;

const RECIPES: Record<string, { flags: FlagSpecs; help: string }> = {
  classifier: { flags: CLASSIFIER, help: "ResNet classifier (selector and soft-label teacher)" },
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
  if (rest.includes("--help")) {
    process.stdout.write(formatHelp(`cao2 train ${recipe} --out <dir> [flags]`, spec.help, spec.flags));
    return 0;
  }
  const a = parseArgs(rest, CLASSIFIER);
  if (!a.out) throw new UsageError("--out is required (the run folder)");
  if (a.threads !== undefined) setNumThreads(a.threads);
  mkdirSync(a.out, { recursive: true });
  installInterruptHandler();
  const progress = new Progress({ unit: "steps" });
  const data = loadDataSpec(a.data, "train");
  const res = trainClassifier(
    { data, outDir: a.out, resume: a.resume, steps: a.steps, progress },
    {
      ...CLASSIFIER_DEFAULTS,
      depth: a.depth as 18 | 50 | 101,
      stem: a.stem as "imagenet" | "cifar" | "mid",
      size: a.size,
      epochs: a.epochs,
      batchSize: a.batchSize,
      lr: a.lr,
      valPerClass: a.valPerClass,
      seed: a.seed,
      checkpointEvery: a.checkpointEvery ?? CLASSIFIER_DEFAULTS.checkpointEvery,
    },
  );
  process.stdout.write(`validation accuracy ${(res.valAccuracy * 100).toFixed(2)}%\nmodel: ${res.modelPath}\n`);
  return 0;
}
