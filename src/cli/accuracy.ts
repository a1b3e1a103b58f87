// `cao2 accuracy`: top-1 of a saved classifier on a labelled data set, the way the pipeline feeds it (selectorInput);
// with --autoencoder also on the autoencoder's reconstructions of the same images. These are the quality measurements
// of the shipped selector and autoencoder (their model cards name this command).
import { matchClasses } from "../io/datasets/sets.js";
import { loadAutoencoder, loadSelector } from "../distill/models.js";
import { selectorInput } from "../distill/score.js";
import { batch, loadDataSpec } from "../io/datasets/index.js";
import { resizeImages } from "../io/image.js";
import { readModelMeta } from "../models/saved.js";
import { argmax, noGrad, setNumThreads, type Tensor, tidy } from "../torch/index.js";
import { writeJsonAtomic } from "../util/atomic.js";
import { type FlagSpecs, parseCommand, UsageError } from "./args.js";
import { checkOutputFile } from "./outputs.js";
import { deviceFlag, MAX_BATCH, threadsFlag } from "./shared-flags.js";
import { applyReadLimits, READ_LIMIT_FLAGS } from "./limits.js";
import { SUMMARIES } from "./commands.js";

const FLAGS = {
  model: { type: "string", help: "The classifier (cao2 model file or torchvision ResNet)" },
  data: {
    type: "string",
    help: "Labelled images: fashion-mnist[:train|:test] or an ImageFolder",
    default: "fashion-mnist:test",
  },
  autoencoder: {
    type: "string",
    help: "Also measure on this autoencoder's reconstructions (encode to the posterior mean, decode)",
  },
  "batch-size": { type: "int", help: "Images per model call", default: 250, min: 1, max: MAX_BATCH },
  json: { type: "string", help: "Write the result as JSON here (atomically)" },
  device: deviceFlag,
  threads: threadsFlag,
  ...READ_LIMIT_FLAGS,
} satisfies FlagSpecs;

interface Tally {
  correct: number[];
  total: number[];
}

const tally = (k: number): Tally => ({ correct: new Array<number>(k).fill(0), total: new Array<number>(k).fill(0) });
const overall = (t: Tally) => t.correct.reduce((a, b) => a + b, 0) / t.total.reduce((a, b) => a + b, 0);

export async function run(argv: string[]): Promise<number> {
  const a = parseCommand(
    argv,
    "cao2 accuracy --model <classifier> [--data fashion-mnist:test|<folder>] [--autoencoder <file>]",
    SUMMARIES.accuracy,
    FLAGS,
  );
  if (!a) return 0;
  applyReadLimits(a);
  checkOutputFile("--json", a.json);
  if (!a.model) throw new UsageError("--model is required: the classifier to measure");
  if (a.threads !== undefined) setNumThreads(a.threads);
  const o = { device: a.device! };
  const { selector, preprocess } = loadSelector(a.model, o);
  selector.eval();
  const ds = loadDataSpec(a.data!, "test");
  const meta = readModelMeta(a.model);
  if (meta && "classes" in meta && meta.classes)
    matchClasses(meta.classes, ds.classes, { data: a.model, test: a.data! });
  else if (selector.config.numClasses !== ds.classes.length)
    throw new UsageError(`${a.model} has ${selector.config.numClasses} classes but ${a.data} has ${ds.classes.length}`);
  const ae = a.autoencoder ? loadAutoencoder(a.autoencoder, o).autoencoder : undefined;
  ae?.eval();

  const k = ds.classes.length;
  const plain = tally(k);
  const recon = tally(k);
  const count = (t: Tally, x: Tensor, labels: Int32Array) => {
    const pred = argmax(selector.forward(selectorInput(x, preprocess)), 1).toNumbers();
    pred.forEach((p, i) => {
      t.total[labels[i]]++;
      if (p === labels[i]) t.correct[labels[i]]++;
    });
  };
  noGrad(() => {
    for (let lo = 0; lo < ds.labels.length; lo += a.batchSize!) {
      const idx = Array.from({ length: Math.min(a.batchSize!, ds.labels.length - lo) }, (_, i) => lo + i);
      const labels = Int32Array.from(idx, (i) => ds.labels[i]);
      tidy(() => {
        const x = batch(ds, idx).x.to(a.device!);
        count(plain, x, labels);
        if (ae) {
          // The autoencoder works at the classifier's resolution (the embedded models share it: 32x32).
          const xs = x.size(2) === preprocess.size ? x : resizeImages(x, [preprocess.size, preprocess.size]);
          const r = ae
            .decode(ae.encode(xs.mul(2).sub(1)).mean)
            .add(1)
            .div(2)
            .clamp(0, 1);
          count(recon, r, labels);
        }
      });
    }
  });
  const pct = (v: number) => `${(v * 100).toFixed(2)}%`;
  const acc = overall(plain);
  process.stdout.write(`top-1 of ${a.model} on ${a.data} (${ds.labels.length} images): ${pct(acc)}\n`);
  const result: Record<string, unknown> = {
    model: a.model,
    data: a.data,
    dataSha256: ds.source.sha256,
    images: ds.labels.length,
    accuracy: acc,
    perClass: ds.classes.map((name, c) => ({ name, accuracy: plain.correct[c] / plain.total[c] })),
  };
  if (ae) {
    const racc = overall(recon);
    process.stdout.write(
      `on reconstructions by ${a.autoencoder}: ${pct(racc)} (${((racc - acc) * 100).toFixed(2)} points)\n`,
    );
    Object.assign(result, {
      autoencoder: a.autoencoder,
      reconstructedAccuracy: racc,
      reconstructedPerClass: ds.classes.map((name, c) => ({ name, accuracy: recon.correct[c] / recon.total[c] })),
    });
  }
  if (a.json) writeJsonAtomic(a.json, result);
  return 0;
}
