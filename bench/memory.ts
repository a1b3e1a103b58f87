// `npm run bench -- memory [--iters N] [--tokens T] [--batch B] [--yield-every N] [--precision bf16] [--out name]`:
// does memory stay flat?
// 10,000 iterations of a DiT-block input-refinement step: a DiT-S block (hidden 384, 6 heads; by default 64 tokens,
// batch 4, so that the run takes minutes, not hours) with a fixed conditioning c, loss = MSE + 10 * max|out - target|,
// backward to the input, Adam on the input. Each step runs inside tidy(); resident memory (RSS) is sampled at fixed
// iterations. Requirement: RSS at the last iteration within 50 MB of RSS at iteration 500. Ours only (no baseline).
// `--precision bf16` runs the block under autocast (its output back in fp32), as refinement with --precision bf16
// does: the weight casts autocast caches are dropped when each step's autocast region ends (default file memory-bf16).
//
// By default the loop never yields to the event loop, as cao2's training, sampling and refinement loops do not
// (`--yield-every N` yields every N steps). That used to leak: the native object behind each JS tensor handle was
// deleted by an N-API finalizer that Node 20 defers to the event loop, so a synchronous loop piled them up and
// fragmented the heap (memory-no-yield.json: +2,961 MB in 500 steps). Tensor handles are now N-API Externals whose
// finalizers run inside garbage collection (docs/benchmarks.md).
import { memoryUsage } from "node:process";
import { mkdirSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { createDiT, ditConfig } from "../src/models/dit.js";
import {
  Adam,
  amax,
  autocastToFloat,
  F,
  getNumThreads,
  manualSeed,
  mean,
  type Precision,
  PRECISIONS,
  randn,
  tidy,
} from "../src/torch/index.js";
import { writeJsonAtomic } from "../src/util/atomic.js";
import { freeze, machine, randomise } from "./common.js";

const MB = 1024 * 1024;
const LIMIT_MB = 50;

const OPTIONS = { iters: "iters", tokens: "tokens", batch: "batch", "yield-every": "yieldEvery" } as const;

interface MemoryOptions {
  iters: number;
  tokens: number;
  batch: number;
  yieldEvery: number;
  /** Results file name under bench/results (default memory, memory-<precision> for a mixed precision). */
  out: string;
  precision: Precision;
}

function parse(args: string[]): MemoryOptions {
  const o: MemoryOptions = { iters: 10_000, tokens: 64, batch: 4, yieldEvery: 0, out: "", precision: "fp32" };
  for (let i = 0; i < args.length; i += 2) {
    if (args[i] === "--out" && /^[\w.-]+$/.test(args[i + 1] ?? "")) {
      o.out = args[i + 1];
      continue;
    }
    if (args[i] === "--precision" && PRECISIONS.includes(args[i + 1] as Precision)) {
      o.precision = args[i + 1] as Precision;
      continue;
    }
    const k = OPTIONS[args[i].replace(/^--/, "") as keyof typeof OPTIONS];
    const v = Number(args[i + 1]);
    if (!k || !Number.isInteger(v) || v < (k === "yieldEvery" ? 0 : 1)) {
      throw new Error(
        `memory: bad option ${args[i]} ${args[i + 1]} (--iters, --tokens, --batch, --yield-every, --precision, --out)`,
      );
    }
    o[k] = v;
  }
  o.out ||= o.precision === "fp32" ? "memory" : `memory-${o.precision}`;
  if (o.iters < 500) throw new Error("memory: --iters must be at least 500 (the reference sample)");
  if (!Number.isInteger(Math.sqrt(o.tokens)))
    throw new Error("memory: --tokens must be a square (a grid of 2x2 patches)");
  return o;
}

export async function run(args: string[]): Promise<void> {
  const o = parse(args);
  const env = machine();
  manualSeed(0);
  // A one-block DiT-S/2 whose input side is 2 * sqrt(tokens): its block sees `tokens` tokens.
  const dit = createDiT({ ...ditConfig("DiT-S/2"), depth: 1, inputSize: 2 * Math.sqrt(o.tokens) }, { init: "zeros" });
  const block = dit.blocks[0];
  randomise(dit.parameters());
  freeze(dit.parameters());
  const siluC = F.silu(randn([o.batch, 384]));
  const target = randn([o.batch, o.tokens, 384]);
  const x = randn([o.batch, o.tokens, 384]).requiresGrad_(true);
  const opt = new Adam([x], { lr: 1e-3 });

  const marks = new Set([
    1,
    100,
    250,
    o.iters,
    ...Array.from({ length: Math.floor(o.iters / 500) }, (_, i) => (i + 1) * 500),
  ]);
  const samples: {
    iter: number;
    rss_mb: number;
    heap_used_mb: number;
    external_mb: number;
    elapsed_s: number;
    loss: number;
  }[] = [];
  const t0 = process.hrtime.bigint();
  for (let it = 1; it <= o.iters; it++) {
    const loss = tidy(() => {
      const diff = autocastToFloat("cpu", o.precision, () => block.forward(x, siluC)).sub(target);
      const l = mean(diff.mul(diff)).add(amax(diff.abs()), 10);
      l.backward();
      return marks.has(it) ? l.item() : NaN;
    });
    opt.step();
    opt.zeroGrad();
    if (o.yieldEvery > 0 && it % o.yieldEvery === 0) await new Promise<void>((resolve) => setImmediate(resolve));
    if (marks.has(it)) {
      const m = memoryUsage();
      const s = {
        iter: it,
        rss_mb: m.rss / MB,
        heap_used_mb: m.heapUsed / MB,
        external_mb: m.external / MB,
        elapsed_s: Number(process.hrtime.bigint() - t0) / 1e9,
        loss,
      };
      samples.push(s);
      console.log(
        `iter ${String(it).padStart(6)}  rss ${s.rss_mb.toFixed(1).padStart(8)} MB  heap ${s.heap_used_mb.toFixed(1)} MB  external ${s.external_mb.toFixed(1)} MB  ${s.elapsed_s.toFixed(0)} s  loss ${loss.toFixed(4)}`,
      );
    }
  }
  const at500 = samples.find((s) => s.iter === 500)!.rss_mb;
  const last = samples[samples.length - 1].rss_mb;
  const growth = last - at500;
  const pass = growth <= LIMIT_MB;
  console.log(
    `RSS growth from iteration 500 to ${o.iters}: ${growth.toFixed(1)} MB (limit ${LIMIT_MB} MB): ${pass ? "ok" : "TOO MUCH"}`,
  );
  mkdirSync(join("bench", "results"), { recursive: true });
  const out = {
    setup: {
      model: "one DiT-S block (hidden 384, 6 heads, mlp 4x), weights N(0, 0.02), frozen",
      tokens: o.tokens,
      batch: o.batch,
      iters: o.iters,
      yieldEvery: o.yieldEvery,
      loss: "mean((out - target)^2) + 10 * max|out - target|",
      optimizer: "Adam lr 1e-3 on the input",
      precision: o.precision,
    },
    samples,
    rss_growth_mb: growth,
    limit_mb: LIMIT_MB,
    pass,
    seconds_per_iter: samples[samples.length - 1].elapsed_s / o.iters,
    threads: getNumThreads(),
    openblas_coretype: process.env.OPENBLAS_CORETYPE ?? null,
    omp_wait_policy: process.env.OMP_WAIT_POLICY ?? null,
    date: new Date().toISOString(),
    ...env,
    loadavg_after: loadavg(),
  };
  writeJsonAtomic(join("bench", "results", `${o.out}.json`), out);
  console.log(`wrote bench/results/${o.out}.json`);
  if (!pass) process.exitCode = 1;
}
