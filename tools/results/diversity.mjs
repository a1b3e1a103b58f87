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
//     [--reference fashion-mnist:test] [--json docs/results/investigations/diversity-ipc10.json] [--threads N]
//
// A set is a row of the table (.runs/<row>/ipc<N>, made by tools/results/table.mjs) or, when it contains a "/", the
// path of any ImageFolder. Settings are chosen against --reference fashion-mnist-val (the validation split).
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
process.chdir(ROOT);
const { loadSavedClassifier } = await import(join(ROOT, "dist/src/models/saved.js"));
const { selectorInput } = await import(join(ROOT, "dist/src/distill/score.js"));
const { batch, loadDataSpec } = await import(join(ROOT, "dist/src/io/datasets/index.js"));
const { cat, fromArray, noGrad, setNumThreads, tidy } = await import(join(ROOT, "dist/src/torch/index.js"));
const { writeJsonAtomic } = await import(join(ROOT, "dist/src/util/atomic.js"));

const { parseArgs } = await import(join(ROOT, "dist/src/cli/args.js"));
const args = parseArgs(process.argv.slice(2), {
  ipc: { type: "int", help: "Images per class of the table's sets", default: 10 },
  sets: { type: "string", help: "Comma-separated rows of the table", default: "random-real,dit,select,refine,cao2" },
  model: {
    type: "string",
    help: "The classifier whose features are compared",
    default: "assets/fashion-mnist/selector.safetensors",
  },
  reference: { type: "string", help: "The real images compared with (coverage, 1-NN)", default: "fashion-mnist:test" },
  json: { type: "string", help: "Write the result here (atomically)" },
  threads: { type: "int", help: "CPU threads" },
});
const ipc = args.ipc;
const sets = args.sets.split(",");
const modelPath = args.model;

if (args.threads !== undefined) setNumThreads(args.threads);
// The selector ranks samples in its own feature space; a ConvNet classifier (cao2 train classifier --arch convnet3) gives
// a second view that had no part in the selection.
const { net: selector, preprocess } = loadSavedClassifier(modelPath, `--model ${modelPath}`);
selector.eval();

/** L2-normalised penultimate features of a data set, [N, D], with its labels. */
function features(spec) {
  const ds = loadDataSpec(spec, "test");
  const parts = [];
  noGrad(() => {
    for (let lo = 0; lo < ds.labels.length; lo += 250) {
      const idx = Array.from({ length: Math.min(250, ds.labels.length - lo) }, (_, i) => lo + i);
      parts.push(
        tidy(() => {
          const f = selector.features(selectorInput(batch(ds, idx).x, preprocess));
          return f.div(f.norm(2, 1, true).clamp(1e-12));
        }),
      );
    }
  });
  const labels = Int32Array.from(ds.labels);
  return { classes: ds.classes, labels, f: cat(parts), l: fromArray(labels, [labels.length]) };
}

const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;

const test = features(args.reference);
const K = test.classes.length;
const result = {
  model: modelPath,
  ipc,
  test: args.reference,
  metric: "cosine distance of L2-normalised penultimate features",
  sets: {},
};
for (const name of sets) {
  const train = features(name.includes("/") ? name : `.runs/${name}/ipc${ipc}`);
  const { spread, own, nearest } = noGrad(() =>
    tidy(() => {
      // Mean over pairs i < j of 1 - <f_i, f_j>: the off-diagonal sum of the class's Gram matrix, halved by symmetry.
      const spread = Array.from({ length: K }, (_, c) => {
        const rows = [...train.labels.keys()].filter((i) => train.labels[i] === c);
        if (rows.length < 2) return 0;
        const fc = train.f.indexSelect(0, fromArray(Int32Array.from(rows), [rows.length]).long());
        const offDiagonal = fc.matmul(fc.transpose(0, 1)).sum().item() - fc.pow(2).sum().item();
        return 1 - offDiagonal / (rows.length * (rows.length - 1));
      });
      const sim = test.f.matmul(train.f.transpose(0, 1)); // [test, train]; cosine distance = 1 - sim
      const nearest = train.l.indexSelect(0, sim.argmax(1)).toNumbers();
      // Other classes' columns fall below any cosine similarity (>= -1), so the row maximum is the nearest own-class image.
      const otherClass = test.l.unsqueeze(1).ne(train.l.unsqueeze(0));
      const masked = sim.maskedFill(otherClass, -2);
      const own = masked.gather(1, masked.argmax(1, true)).toNumbers();
      return { spread, own, nearest };
    }),
  );
  const cover = Array.from({ length: K }, () => []);
  own.forEach((s, i) => cover[test.labels[i]].push(1 - s));
  const nnCorrect = nearest.filter((y, i) => y === test.labels[i]).length;
  const coverage = cover.map(mean);
  result.sets[name] = {
    spread: mean(spread),
    coverage: mean(coverage),
    nnAccuracy: nnCorrect / test.labels.length,
    perClass: Object.fromEntries(test.classes.map((c, k) => [c, { spread: spread[k], coverage: coverage[k] }])),
  };
  process.stdout.write(
    `${name.padEnd(12)} spread ${mean(spread).toFixed(4)}  coverage ${mean(coverage).toFixed(4)}  1-NN ${((100 * nnCorrect) / test.labels.length).toFixed(2)}%\n`,
  );
}
if (args.json) writeJsonAtomic(args.json, result);
