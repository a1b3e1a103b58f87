#!/usr/bin/env node
// How varied is each training set of the results table, and how well does it cover the real test images of its
// classes? Measured in the penultimate feature space of a classifier (by default the shipped selector), with cosine
// distances between L2-normalised features:
//   spread   — mean pairwise distance between the training images of a class (higher: more varied);
//   coverage — mean distance from each test image to the nearest training image of its own class (lower: the class's
//              test images have a close training example);
//   1-NN     — test accuracy of labelling each test image with the class of its nearest training image.
// Averaged over classes (spread, coverage) or over test images (1-NN).
//
//   node tools/results/diversity.mjs --ipc 10 [--sets random-real,dit,select,refine,cao2] [--model <classifier>]
//     [--json docs/results/investigations/diversity-ipc10.json] [--threads N]
//
// The sets are the table's (.runs/<row>/ipc<N>, made by tools/results/table.mjs).
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
process.chdir(ROOT);
const { loadSelector } = await import(join(ROOT, "dist/src/distill/models.js"));
const { loadSavedModel, readModelMeta } = await import(join(ROOT, "dist/src/models/saved.js"));
const { selectorInput } = await import(join(ROOT, "dist/src/distill/score.js"));
const { batch, loadDataSpec } = await import(join(ROOT, "dist/src/io/datasets/index.js"));
const { noGrad, setNumThreads, tidy } = await import(join(ROOT, "dist/src/torch/index.js"));
const { writeJsonAtomic } = await import(join(ROOT, "dist/src/util/atomic.js"));

const { parseArgs } = await import(join(ROOT, "dist/src/cli/args.js"));
const args = parseArgs(process.argv.slice(2), {
  ipc: { type: "int", help: "Images per class of the table's sets", default: 10 },
  sets: { type: "string", help: "Comma-separated rows of the table", default: "random-real,dit,select,refine,cao2" },
  model: { type: "string", help: "The classifier whose features are compared", default: "assets/fashion-mnist/selector.safetensors" },
  json: { type: "string", help: "Write the result here (atomically)" },
  threads: { type: "int", help: "CPU threads" },
});
const ipc = args.ipc;
const sets = args.sets.split(",");
const modelPath = args.model;

if (args.threads !== undefined) setNumThreads(args.threads);
// The selector ranks samples in its own feature space; a ConvNet classifier (cao2 train classifier --arch convnet3) gives
// a second view that had no part in the selection.
const { selector, preprocess } =
  readModelMeta(modelPath)?.kind === "convnet"
    ? (({ model, meta }) => ({ selector: model, preprocess: meta.preprocess }))(loadSavedModel(modelPath, "convnet"))
    : loadSelector(modelPath, { device: "cpu" });
selector.eval();

/** L2-normalised penultimate features of a data set, one Float32Array per image, with its labels. */
function features(spec) {
  const ds = loadDataSpec(spec, "test");
  const rows = [];
  noGrad(() => {
    for (let lo = 0; lo < ds.labels.length; lo += 250) {
      const idx = Array.from({ length: Math.min(250, ds.labels.length - lo) }, (_, i) => lo + i);
      tidy(() => {
        const f = selector.features(selectorInput(batch(ds, idx).x, preprocess));
        const d = f.size(1);
        const flat = f.toFloat32Array();
        for (let i = 0; i < idx.length; i++) {
          const v = flat.slice(i * d, (i + 1) * d);
          const n = Math.hypot(...v) || 1;
          rows.push(v.map((x) => x / n));
        }
      });
    }
  });
  return { classes: ds.classes, labels: Array.from(ds.labels), rows };
}

const cosDist = (a, b) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return 1 - s;
};
const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;

const test = features("fashion-mnist:test");
const K = test.classes.length;
const result = { model: modelPath, ipc, test: "fashion-mnist:test", metric: "cosine distance of L2-normalised penultimate features", sets: {} };
for (const name of sets) {
  const train = features(`.runs/${name}/ipc${ipc}`);
  const byClass = Array.from({ length: K }, (_, c) => train.rows.filter((_, i) => train.labels[i] === c));
  const spread = byClass.map((rs) => {
    const d = [];
    for (let i = 0; i < rs.length; i++) for (let j = i + 1; j < rs.length; j++) d.push(cosDist(rs[i], rs[j]));
    return d.length ? mean(d) : 0;
  });
  const cover = Array.from({ length: K }, () => []);
  let nnCorrect = 0;
  test.rows.forEach((t, i) => {
    let best = Infinity;
    let bestLabel = -1;
    let own = Infinity;
    train.rows.forEach((r, j) => {
      const d = cosDist(t, r);
      if (d < best) [best, bestLabel] = [d, train.labels[j]];
      if (train.labels[j] === test.labels[i] && d < own) own = d;
    });
    cover[test.labels[i]].push(own);
    if (bestLabel === test.labels[i]) nnCorrect++;
  });
  const coverage = cover.map(mean);
  result.sets[name] = {
    spread: mean(spread),
    coverage: mean(coverage),
    nnAccuracy: nnCorrect / test.rows.length,
    perClass: Object.fromEntries(test.classes.map((c, k) => [c, { spread: spread[k], coverage: coverage[k] }])),
  };
  process.stdout.write(`${name.padEnd(12)} spread ${mean(spread).toFixed(4)}  coverage ${mean(coverage).toFixed(4)}  1-NN ${(100 * nnCorrect / test.rows.length).toFixed(2)}%\n`);
}
if (args.json) writeJsonAtomic(args.json, result);
