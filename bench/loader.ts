// `npm run bench -- loader [--images 20000] [--batch 64] [--steps 5] [--precision fp32|bf16] [--keep]`: the ImageFolder streaming loader at
// ImageNet scale. Generates --images 500x375 JPEGs (10 classes; 100 distinct pictures written again and again, since
// only decoding cost matters) under /tmp, then in a fresh child process, so that its peak RSS is the evaluation's
// alone: opens the folder as `cao2 evaluate --preset imagenet` opens a test set (every image read, hashed and checked
// on the decode workers), streams one epoch of batches through the validation transform (Resize(256) ->
// CenterCrop(224)) with the training loop's prefetching, and times --steps training steps of a ResNet-18 student
// (ImageNet stem, SGD) at the same batch size, in fp32 or under autocast (--precision: bench/results/loader-bf16.json).
// Targets: peak RSS of opening and streaming the set under 2 GB (the student's own training memory comes on top:
// ResNet-18 at batch 64 and 224 px keeps about 2 GB of fp32 activations for its backward pass, in PyTorch too, and
// about half that in bf16); loader images/s at least the student's images/s (the student is never starved).
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import jpeg from "jpeg-js";
import { loadEvalSet } from "../src/io/datasets/sets.js";
import { PRESETS } from "../src/evaluate/presets.js";
import { prefetched } from "../src/evaluate/train-student.js";
import { toUnitFloat } from "../src/io/image.js";
import { channelsLastPays } from "../src/evaluate/run.js";
import { buildClassifier, type ClassifierSpec } from "../src/models/classifiers.js";
import {
  autocastToFloat,
  F,
  getNumThreads,
  type Precision,
  PRECISIONS,
  randint,
  SGD,
  tidy,
} from "../src/torch/index.js";
import { writeJsonAtomic } from "../src/util/atomic.js";
import { machine } from "./common.js";

const DIR = "/tmp/cao2-bench-loader";
const GB = 2 ** 30;

interface Options {
  images: number;
  batch: number;
  steps: number;
  keep: boolean;
  /** The student's arithmetic (cao2 evaluate --precision). */
  precision: Precision;
}

function parse(args: string[]): Options {
  const o: Options = { images: 20_000, batch: 64, steps: 5, keep: false, precision: "fp32" };
  for (let i = 0; i < args.length; i++) {
    if (args[i] === "--keep") {
      o.keep = true;
      continue;
    }
    if (args[i] === "--precision") {
      const p = args[++i] as Precision;
      if (!PRECISIONS.includes(p)) throw new Error(`loader: --precision takes ${PRECISIONS.join(", ")}, got ${p}`);
      o.precision = p;
      continue;
    }
    const k = args[i].replace(/^--/, "") as keyof Options;
    const v = Number(args[++i]);
    if (!["images", "batch", "steps"].includes(k) || !Number.isInteger(v) || v < 1)
      throw new Error(`loader: bad option ${args[i - 1]} ${args[i]} (--images, --batch, --steps, --precision, --keep)`);
    (o[k] as number) = v;
  }
  return o;
}

/** 10 class folders of `n` 500x375 JPEGs in all (quality 90, smooth pictures with edges, as photographs compress). */
function generate(root: string, n: number): void {
  const [w, h] = [500, 375];
  const distinct = Array.from({ length: 100 }, (_, s) => {
    const rgba = new Uint8Array(w * h * 4);
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) {
        const i = (y * w + x) * 4;
        rgba[i] = (128 + 100 * Math.sin((x + 13 * s) / (6 + (s % 7)))) | 0;
        rgba[i + 1] = ((255 * (x * y)) / (w * h) + s * 3) & 255;
        rgba[i + 2] = (((x >> 5) + (y >> 5) + s) % 2) * 180 + 30;
        rgba[i + 3] = 255;
      }
    return jpeg.encode({ width: w, height: h, data: rgba }, 90).data;
  });
  for (let i = 0; i < n; i++) {
    const cls = join(root, `n${String(i % 10).padStart(8, "0")}`);
    if (i < 10) mkdirSync(cls, { recursive: true });
    writeFileSync(join(cls, `${i}.JPEG`), distinct[i % distinct.length]);
  }
}

/** The measurement, in the child process: prints one JSON line. */
async function child(root: string, o: Options): Promise<void> {
  const t0 = performance.now();
  // memoryBudget 0: always the streaming path, whatever --images (20,000 images at 224 px would stream anyway)
  const set = await loadEvalSet(root, "test", PRESETS.imagenet, { memoryBudget: 0 });
  const opened = (performance.now() - t0) / 1000;
  const order = Array.from({ length: set.labels.length }, (_, i) => i);
  const t1 = performance.now();
  let seen = 0;
  let last = null;
  for await (const { images } of prefetched(set, order, o.batch)) {
    seen += images.size(0);
    if (images.size(0) === o.batch) {
      last?.dispose();
      last = images.clone();
    }
  }
  const streamed = (performance.now() - t1) / 1000;
  const loaderRss = process.resourceUsage().maxRSS * 1024;
  const spec: ClassifierSpec = {
    kind: "resnet",
    depth: 18,
    norm: "batch",
    stem: "imagenet",
    numClasses: 10,
    inChannels: 3,
  };
  const student = buildClassifier(spec);
  // As cao2 evaluate trains it: channels-last where that pays (batch-norm ResNets under a mixed precision).
  if (channelsLastPays(spec, { device: "cpu", precision: o.precision })) student.toChannelsLast();
  const opt = new SGD(student.parameters(), { lr: 0.1, momentum: 0.9, weightDecay: 1e-4 });
  const y = randint(0, 10, [o.batch]);
  const step = () => {
    opt.zeroGrad();
    const x = toUnitFloat(last!);
    tidy(() =>
      F.crossEntropy(
        autocastToFloat("cpu", o.precision, () => student.forward(x)),
        y,
      ).backward(),
    );
    opt.step();
  };
  step(); // warm-up
  const t2 = performance.now();
  for (let i = 0; i < o.steps; i++) step();
  const stepSeconds = (performance.now() - t2) / 1000 / o.steps;
  await set.close();
  const result = {
    images: seen,
    transform: set.transform,
    open_s: opened,
    open_images_per_s: seen / opened,
    loader_s: streamed,
    loader_images_per_s: seen / streamed,
    student_step_s: stepSeconds,
    student_images_per_s: o.batch / stepSeconds,
    loader_peak_rss_bytes: loaderRss,
    peak_rss_bytes: process.resourceUsage().maxRSS * 1024,
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

export async function run(args: string[]): Promise<void> {
  if (args[0] === "--child") return child(args[1], parse(args.slice(2)));
  const o = parse(args);
  const env = machine();
  const root = join(DIR, `${o.images}`);
  if (!existsSync(root)) {
    console.log(`generating ${o.images} 500x375 JPEGs in ${root} ...`);
    generate(root, o.images);
  }
  const r = spawnSync(process.execPath, [join("dist", "bench", "main.js"), "loader", "--child", root, ...args], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
  });
  if (r.status !== 0) throw new Error(`loader child failed with status ${r.status}`);
  const m = JSON.parse(r.stdout.trim().split("\n").at(-1)!) as Record<string, number | string>;
  if (!o.keep) rmSync(DIR, { recursive: true, force: true });
  const rss = (m.loader_peak_rss_bytes as number) / GB;
  const ratio = (m.loader_images_per_s as number) / (m.student_images_per_s as number);
  console.log(`images ${m.images} (${m.transform}), threads ${getNumThreads()}`);
  console.log(
    `open (read, hash, check every image): ${(m.open_s as number).toFixed(1)} s, ${(m.open_images_per_s as number).toFixed(1)} images/s`,
  );
  console.log(
    `loader: ${(m.loader_images_per_s as number).toFixed(1)} images/s; ResNet-18 student (${o.precision}) at batch ${o.batch}: ${(m.student_images_per_s as number).toFixed(1)} images/s; ratio ${ratio.toFixed(2)} (target >= 1)`,
  );
  console.log(
    `peak RSS of opening and streaming the set: ${rss.toFixed(2)} GB (target < 2 GB); with the student's training steps: ${((m.peak_rss_bytes as number) / GB).toFixed(2)} GB`,
  );
  mkdirSync(join("bench", "results"), { recursive: true });
  const name = o.precision === "fp32" ? "loader" : `loader-${o.precision}`;
  writeJsonAtomic(join("bench", "results", `${name}.json`), {
    ...env,
    options: o,
    ...m,
    loader_vs_student: ratio,
    targets: { peak_rss_gb: 2, loader_vs_student: 1 },
  });
  console.log(`wrote bench/results/${name}.json`);
}
