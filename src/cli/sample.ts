// `cao2 sample`: class-conditional samples of a diffusion model, to look at it (a PNG grid, one row per class) and,
// with --selector, to measure how often the selector recognises each sample's class.
import { GaussianDiffusion } from "../diffusion/gaussian.js";
import { sample } from "../diffusion/samplers.js";
import { loadAutoencoder, loadDiT, loadSelector } from "../distill/models.js";
import { decodeLatents, scoreImages } from "../distill/score.js";
import { DIT_UNWRAP_FLAG, pickClasses } from "./distill.js";
import { PRESETS, type PresetName, presetClasses } from "../distill/presets.js";
import { tensorToPng } from "../io/image.js";
import {
  cat,
  checkPrecision,
  Generator,
  keep,
  ones,
  pad,
  type Precision,
  setNumThreads,
  type Tensor,
  tidy,
} from "../torch/index.js";
import { assetPath } from "../util/assets.js";
import { writeFileAtomic, writeJsonAtomic } from "../util/atomic.js";
import { deriveSeed } from "../util/seed.js";
import { Progress } from "../util/progress.js";
import { type FlagSpecs, parseCommand, UsageError } from "./args.js";
import { checkOutputFile } from "./outputs.js";
import {
  cfgIntervalFlag,
  deviceFlag,
  guidanceInterval,
  MAX_BATCH,
  MAX_PER_CLASS,
  MAX_STEPS,
  precisionFlag,
  seedFlag,
  threadsFlag,
} from "./shared-flags.js";
import { applyReadLimits, READ_LIMIT_FLAGS } from "./limits.js";
import { SUMMARIES } from "./commands.js";

const FLAGS = {
  preset: { type: "string", help: "Class list to use", choices: PRESETS, default: "fashion-mnist" },
  dit: { type: "string", help: "Diffusion model checkpoint", defaultText: "shipped model (fashion-mnist)" },
  unwrap: DIT_UNWRAP_FLAG,
  vae: { type: "string", help: "Autoencoder checkpoint", defaultText: "shipped model (fashion-mnist)" },
  selector: { type: "string", help: "Score the samples with this classifier (prints per-class agreement)" },
  classes: { type: "list", help: "Classes: labels, ranges, ids or names", defaultText: "all" },
  "per-class": { type: "int", help: "Samples per class", default: 8, min: 1, max: MAX_PER_CLASS },
  cfg: { type: "number", help: "Classifier-free guidance scale (1 = no guidance)", default: 2.7, min: 1 },
  "guide-channels": { type: "string", help: "Channels guided by CFG", choices: ["3", "all"], default: "3" },
  "cfg-interval": cfgIntervalFlag,
  steps: { type: "int", help: "Sampling steps", default: 50, min: 2, max: MAX_STEPS },
  seed: seedFlag("Seed"),
  out: { type: "string", help: "PNG grid to write (rows = classes; at most 16 columns shown)" },
  json: { type: "string", help: "Write the scores as JSON here" },
  "batch-size": { type: "int", help: "Most images per model call", default: 64, min: 1, max: MAX_BATCH },
  device: deviceFlag,
  threads: threadsFlag,
  precision: precisionFlag("The DiT's arithmetic"),
  "latent-size": { type: "int", help: "Latent size for DiT checkpoints that do not record it", min: 1, max: 1024 },
  "scaling-factor": {
    type: "number",
    help: "Latent scaling factor for autoencoders without cao2 metadata",
    min: 0,
    exclusiveMin: true,
  },
  ...READ_LIMIT_FLAGS,
} satisfies FlagSpecs;

/** Images [N, C, H, W] in [0, 1] tiled into one [C, rows*(H+2), cols*(W+2)] image with a 1-pixel border. */
export function grid(images: Tensor, cols: number): Tensor {
  return tidy(() => {
    const [n, c, h, w] = images.shape;
    const rows = Math.ceil(n / cols);
    const padded = pad(images, [1, 1, 1, 1], "constant", 1);
    const full =
      n === rows * cols ? padded : cat([padded, ones([rows * cols - n, c, h + 2, w + 2], { device: images.device })]);
    return full
      .view(rows, cols, c, h + 2, w + 2)
      .permute(2, 0, 3, 1, 4)
      .reshape(c, rows * (h + 2), cols * (w + 2));
  });
}

/** How many samples the selector's probabilities (one row of `numClasses` per sample) give to class `label` first. */
function agreeing(probs: Float32Array, numClasses: number, label: number): number {
  let hits = 0;
  for (let at = 0; at < probs.length; at += numClasses) {
    const row = probs.subarray(at, at + numClasses);
    if (row.indexOf(Math.max(...row)) === label) hits++;
  }
  return hits;
}

export async function run(argv: string[]): Promise<number> {
  const a = parseCommand(argv, "cao2 sample [flags]", SUMMARIES.sample, FLAGS);
  if (!a) return 0;
  applyReadLimits(a);
  checkOutputFile("--out", a.out);
  checkOutputFile("--json", a.json);
  const preset = a.preset as PresetName;
  if (a.threads !== undefined) setNumThreads(a.threads);
  const precision = a.precision as Precision;
  checkPrecision(precision, a.device);
  const modelFile = (v: string | undefined, flag: string, file: string) => {
    if (v) return v;
    if (preset === "fashion-mnist") return assetPath(`fashion-mnist/${file}`);
    throw new UsageError(`--${flag} is required for the ${preset} preset`);
  };
  if (!a.out && !a.selector) throw new UsageError("nothing to do: give --out (a PNG grid) and/or --selector (scores)");
  const o = { device: a.device, latentSize: a.latentSize, scalingFactor: a.scalingFactor, ditUnwrap: a.unwrap };
  const interval = guidanceInterval(a.cfgInterval);
  const dit = loadDiT(modelFile(a.dit, "dit", "dit.safetensors"), o);
  dit.eval();
  const { autoencoder, scalingFactor } = loadAutoencoder(modelFile(a.vae, "vae", "autoencoder.safetensors"), o);
  autoencoder.eval();
  const classes = pickClasses(presetClasses(preset), a.classes);
  const diffusion = GaussianDiffusion.create({ numTimesteps: 1000, respacing: a.steps });
  const model = dit.atPrecision(a.device, precision, { guidedChannels: a.guideChannels === "all" ? "all" : 3 });
  const shape = [dit.config.inChannels, dit.config.inputSize, dit.config.inputSize];
  const progress = new Progress({ unit: "steps" });
  const models = { autoencoder, scalingFactor };
  const selector = a.selector ? loadSelector(a.selector, o) : undefined;
  selector?.selector.eval();
  const rows: Tensor[] = [];
  const scores: { label: number; name: string; agreement: number }[] = [];
  for (const c of classes) {
    progress.stage(`class ${c.label} (${c.name})`, Math.ceil(a.perClass / a.batchSize) * a.steps);
    const lat = keep(
      sample(diffusion, model, new Array<number>(a.perClass).fill(c.modelIndex), shape, {
        cfgScale: a.cfg,
        guidanceInterval: interval,
        nullClass: dit.config.numClasses,
        generator: new Generator(deriveSeed(a.seed, "sample", c.modelIndex)),
        batchSize: a.batchSize,
        device: a.device,
        onStep: () => progress.tick(),
      }),
    );
    if (selector) {
      const probs = scoreImages(
        { ...models, selector: selector.selector, selectorPreprocess: selector.preprocess },
        lat,
        { batchSize: a.batchSize, compat: "paper" },
      );
      const hits = agreeing(probs, selector.selector.config.numClasses, c.modelIndex);
      scores.push({ label: c.label, name: c.name, agreement: hits / a.perClass });
      progress.log(`class ${c.label} (${c.name}): selector agrees on ${hits}/${a.perClass}`);
    }
    if (a.out) rows.push(keep(tidy(() => decodeLatents(models, lat.narrow(0, 0, Math.min(16, a.perClass))))));
    lat.dispose();
  }
  progress.end();
  if (a.out) {
    const cols = Math.min(16, a.perClass);
    writeFileAtomic(a.out, tensorToPng(tidy(() => grid(cat(rows), cols))));
    process.stdout.write(`wrote ${a.out}\n`);
  }
  if (selector) {
    const mean = scores.reduce((s, x) => s + x.agreement, 0) / scores.length;
    process.stdout.write(`selector agreement: ${(mean * 100).toFixed(2)}% of ${scores.length * a.perClass} samples\n`);
    const files = {
      dit: modelFile(a.dit, "dit", "dit.safetensors"),
      vae: modelFile(a.vae, "vae", "autoencoder.safetensors"),
      selector: a.selector,
    };
    if (a.json)
      writeJsonAtomic(a.json, {
        ...files,
        cfg: a.cfg,
        cfgInterval: interval,
        guideChannels: a.guideChannels,
        steps: a.steps,
        precision,
        seed: a.seed,
        perClass: a.perClass,
        mean,
        classes: scores,
      });
  }
  return 0;
}
