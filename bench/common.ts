// Side-by-side benchmark helpers: time our code and a PyTorch baseline (our script in tools/reference/, run with
// Debian's python3-torch under the same thread count and BLAS core type), report medians and ratios.
import { spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { getNumThreads } from "../src/torch/index.js";

export interface Case {
  name: string;
  ours_s: number;
  pytorch_s: number;
  /** pytorch_s / ours_s: above 1 means we are faster. */
  ratio: number;
}

export const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/** Median seconds of `repeats` timed calls after `warmup` untimed ones. */
export function timeIt(fn: () => void, o: { warmup?: number; repeats?: number } = {}): number {
  for (let i = 0; i < (o.warmup ?? 3); i++) fn();
  const ts: number[] = [];
  for (let i = 0; i < (o.repeats ?? 10); i++) {
    const t0 = process.hrtime.bigint();
    fn();
    ts.push(Number(process.hrtime.bigint() - t0) / 1e9);
  }
  return median(ts);
}

/**
 * Runs a PyTorch baseline script from tools/reference with the same threads and OpenBLAS core type as this process;
 * the script prints one JSON object on its last stdout line.
 */
export function runPython<T>(script: string, args: string[] = []): T {
  const env = { ...process.env, OMP_NUM_THREADS: String(getNumThreads()) };
  const r = spawnSync("/usr/bin/python3", [join("tools", "reference", script), "--threads", String(getNumThreads()), ...args], {
    env,
    encoding: "utf8",
    maxBuffer: 64 << 20,
  });
  if (r.status !== 0) throw new Error(`${script} failed (exit ${r.status}):\n${r.stderr}`);
  const lines = r.stdout.trim().split("\n");
  return JSON.parse(lines[lines.length - 1]) as T;
}

export function makeCase(name: string, ours: number, pytorch: number): Case {
  return { name, ours_s: ours, pytorch_s: pytorch, ratio: pytorch / ours };
}

/** Prints the table and writes bench/results/<name>.json as {"cases": [...]} plus the environment. */
export function report(name: string, cases: Case[], extra: Record<string, unknown> = {}): void {
  const w = Math.max(...cases.map((c) => c.name.length), 4) + 2;
  console.log(`${"case".padEnd(w)}${"ours (ms)".padStart(12)}${"pytorch (ms)".padStart(14)}${"ratio".padStart(8)}`);
  for (const c of cases) {
    console.log(`${c.name.padEnd(w)}${(c.ours_s * 1e3).toFixed(3).padStart(12)}${(c.pytorch_s * 1e3).toFixed(3).padStart(14)}${c.ratio.toFixed(3).padStart(8)}`);
  }
  mkdirSync(join("bench", "results"), { recursive: true });
  const out = {
    cases,
    threads: getNumThreads(),
    openblas_coretype: process.env.OPENBLAS_CORETYPE ?? null,
    date: new Date().toISOString(),
    ...extra,
  };
  writeFileSync(join("bench", "results", `${name}.json`), JSON.stringify(out, null, 2) + "\n");
  console.log(`wrote bench/results/${name}.json`);
}
