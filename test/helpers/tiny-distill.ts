// Tiny random models and a tiny `cao2 distill` run for the end-to-end tests (one process, shards, Slurm), and a
// snapshot of a run's files that two runs' bytes are compared by.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { createAutoencoderKL } from "../../src/models/autoencoder.js";
import { createDiT } from "../../src/models/dit.js";
import { createResNet } from "../../src/models/resnet.js";
import { saveModel } from "../../src/models/saved.js";
import { Generator, noGrad } from "../../src/torch/index.js";

/** Tiny random models with the embedded default's shapes scaled down: 16x16 grey images, 4x4x4 latents. */
export function makeTinyModels(at: string): string[] {
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
  // Non-zero adaLN and output layers, so that samples depend on the class and refinement has gradients.
  noGrad(() => {
    for (const p of dit.parameters()) p.add_(0.02);
  });
  const ae = createAutoencoderKL(
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
  const sel = createResNet(
    { depth: 18, numClasses: 10, inChannels: 1, stem: "imagenet" },
    { generator: new Generator(3) },
  );
  const classes = Array.from({ length: 10 }, (_, i) => `c${i}`);
  const paths = ["dit", "vae", "selector"].map((n) => join(at, `${n}.safetensors`));
  saveModel(paths[0], dit, { kind: "dit", config: dit.config, classes });
  saveModel(paths[1], ae, { kind: "autoencoder", config: ae.config, scalingFactor: 1.5 });
  saveModel(
    paths[2],
    sel,
    { kind: "resnet", config: sel.config, preprocess: { size: 16, channels: 1, mean: [0.5], std: [0.5] }, classes },
    { val_accuracy: "0.95" },
  );
  return paths;
}

/** 3 classes at IPC 2, 5 sampling steps, 3 refinement iterations: well under a second per class. */
export const TINY = [
  "--classes",
  "0-2",
  "--ipc",
  "2",
  "--steps",
  "5",
  "--refine-iters",
  "3",
  "--t-max",
  "2",
  "--threads",
  "1",
];

export const tinyDistillArgs = (models: readonly string[], out: string, extra: readonly string[] = []) => [
  "distill",
  "--dit",
  models[0],
  "--vae",
  models[1],
  "--selector",
  models[2],
  ...TINY,
  "--out",
  out,
  ...extra,
];

/** What records how a run was done rather than what it made: times, and which process, host or shard did what. */
const EXECUTION = new Set(["created", "timings", "distillSeconds", "worker", "execution"]);

/**
 * Every file of a run with its bytes, the state folder's under "state/" (its locks excepted, present only while a
 * class is being distilled); the manifest and class records without the execution details and the folders'
 * locations.
 */
export function snapshot(out: string, state = `${out}.cao2`): Map<string, string> {
  const files = new Map<string, string>();
  const walk = (d: string, rel: string) => {
    for (const e of readdirSync(d).sort()) {
      const p = join(d, e);
      if (p === state || p === join(state, "locks")) continue; // an output written before the state moved holds it
      if (statSync(p).isDirectory()) walk(p, `${rel}${e}/`);
      else files.set(`${rel}${e}`, readFileSync(p).toString("base64"));
    }
  };
  walk(out, "");
  walk(state, "state/");
  const strip = (k: string) => {
    const v = files.get(k);
    if (!v) return;
    const j = JSON.parse(Buffer.from(v, "base64").toString("utf8"), (key, val) =>
      EXECUTION.has(key) ? undefined : val,
    );
    if (j.config) j.config.out = j.config.state = undefined;
    files.set(k, JSON.stringify(j));
  };
  strip("manifest.json");
  for (const k of files.keys()) if (k.startsWith("state/classes/") && k.endsWith(".json")) strip(k);
  return files;
}
