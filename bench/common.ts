// Side-by-side benchmark helpers: time our code and a PyTorch baseline (our script in tools/reference/, run with
// Debian's python3-torch under the same thread count and BLAS core type), report medians and ratios.
//
// The machine these run on is shared, and its load changes from second to second. So the baseline runs as a second
// process that stays up and times one call of a case whenever asked: every repeat times ours and then PyTorch's (or
// the other way round, alternating) back to back, and both sides see the same load.
import { type ChildProcessWithoutNullStreams, spawn, spawnSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { getNumThreads, normalInto, noGrad, type Tensor, torchVersion } from "../src/torch/index.js";
import { writeJsonAtomic } from "../src/util/atomic.js";

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

/** Wall-clock and CPU seconds (user + system, all threads) of one call. */
export interface Timing {
  wall: number;
  cpu: number;
}

export function timeOnce(fn: () => void): Timing {
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  fn();
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const c = process.cpuUsage(c0);
  return { wall, cpu: (c.user + c.system) / 1e6 };
}

export function makeCase(name: string, ours: number, pytorch: number): Case {
  return { name, ours_s: ours, pytorch_s: pytorch, ratio: pytorch / ours };
}

export interface BenchOptions {
  /** Untimed calls of each case, on each side, before the timed ones. */
  warmup: number;
  /** Timed calls of each case on each side; the result is the median. */
  repeats: number;
  /** Only these cases (default: all). */
  cases: string[];
  /** Results file name under bench/results (default: the bench's name), e.g. for a run with an experimental addon. */
  out?: string;
}

/** `--warmup N --repeats N --cases a,b --out name` over per-bench defaults. */
export function parseOptions(args: string[], defaults: Omit<BenchOptions, "cases">): BenchOptions {
  const o: BenchOptions = { ...defaults, cases: [] };
  for (let i = 0; i < args.length; i += 2) {
    const [k, v] = [args[i], args[i + 1]];
    if (v === undefined) throw new Error(`${k}: missing value`);
    if (k === "--cases") o.cases = v.split(",");
    else if (k === "--out") {
      if (!/^[\w.-]+$/.test(v)) throw new Error(`--out ${v}: expected a file name (letters, digits, . - _)`);
      o.out = v;
    } else if (k === "--warmup" || k === "--repeats") {
      const n = Number(v);
      const min = k === "--warmup" ? 0 : 1;
      if (!Number.isInteger(n) || n < min) throw new Error(`${k} ${v}: expected an integer >= ${min}`);
      o[k === "--warmup" ? "warmup" : "repeats"] = n;
    } else throw new Error(`unknown option ${k} (--warmup, --repeats, --cases, --out)`);
  }
  return o;
}

/**
 * A PyTorch baseline (tools/reference/<script>, see bench_common.serve) running beside us with our environment as it
 * is (so OPENBLAS_CORETYPE, which our process sets before libtorch loads, and any OMP_/OPENBLAS_NUM_THREADS reach
 * it unchanged) and our intra-op thread count (--threads: the script calls torch.set_num_threads with it, as
 * native.ts does at::set_num_threads).
 */
/**
 * Runs a one-shot PyTorch script from tools/reference (same environment and threads as this process); the script
 * prints one JSON object on its last stdout line. For baselines measured in their own process (peak memory).
 */
export function runPython<T>(script: string, args: string[] = []): T {
  const r = spawnSync(
    "/usr/bin/python3",
    [join("tools", "reference", script), "--threads", String(getNumThreads()), ...args],
    {
      env: process.env,
      encoding: "utf8",
      maxBuffer: 64 << 20,
    },
  );
  if (r.status !== 0) throw new Error(`${script} failed (exit ${r.status}):\n${r.stderr}`);
  const lines = r.stdout.trim().split("\n");
  return JSON.parse(lines[lines.length - 1]) as T;
}

export class PythonBaseline {
  private constructor(
    private readonly child: ChildProcessWithoutNullStreams,
    private readonly readLine: () => Promise<string>,
    /** What the Python side reported running with: torch version, threads, OPENBLAS_CORETYPE, ... */
    readonly env: Record<string, unknown>,
    readonly caseNames: string[],
  ) {}

  static async start(script: string, args: string[] = []): Promise<PythonBaseline> {
    const threads = String(getNumThreads());
    const child = spawn("/usr/bin/python3", [join("tools", "reference", script), "--threads", threads, ...args], {
      env: process.env,
    });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<never>((_, reject) =>
      child.on("exit", (code) => reject(new Error(`${script} exited (code ${code}):\n${stderr}`))),
    );
    exited.catch(() => {}); // observed only while we wait for a line
    const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    const readLine = async (): Promise<string> => {
      const r = await Promise.race([lines.next(), exited]);
      if (r.done) throw new Error(`${script} closed its output:\n${stderr}`);
      return r.value;
    };
    const ready = JSON.parse(await readLine()) as { ready: string[]; env: Record<string, unknown> };
    return new PythonBaseline(child, readLine, ready.env, ready.ready);
  }

  /** One call of the named case on the Python side. */
  async time(name: string): Promise<Timing> {
    this.child.stdin.write(`${name}\n`);
    const [wall, cpu] = JSON.parse(await this.readLine()) as [number, number];
    return { wall, cpu };
  }

  close(): void {
    this.child.stdin.end();
  }
}

export interface Samples {
  ours_s: number[];
  pytorch_s: number[];
  ours_cpu_s: number[];
  pytorch_cpu_s: number[];
}

export interface SideBySide {
  cases: Case[];
  /**
   * Every timed call, wall and CPU seconds, ours and PyTorch's in pairs (index i of each was timed back to back),
   * for judging the noise.
   */
  samples: Record<string, Samples>;
  /** Median CPU seconds per call (all threads): less sensitive than wall time to other jobs on the machine. */
  cpu: Record<string, { ours_s: number; pytorch_s: number; ratio: number }>;
  /**
   * Median over the pairs of pytorch_i / ours_i: the two calls of a pair ran back to back, so a change of the
   * machine's load between pairs cancels out of this ratio (it does not out of the ratio of medians).
   */
  paired_ratio: Record<string, number>;
  /** The Python side's environment as it reported it. */
  python_env: Record<string, unknown>;
}

/**
 * Times each case of ours against the same case of the baseline `script`, interleaved: for each case `warmup`
 * untimed calls on each side, then `repeats` pairs of timed calls, ours first in even pairs and PyTorch first in odd.
 */
export async function sideBySide(
  script: string,
  ours: Record<string, () => void>,
  o: BenchOptions,
  pyArgs: string[] = [],
): Promise<SideBySide> {
  const names = Object.keys(ours).filter((n) => o.cases.length === 0 || o.cases.includes(n));
  if (names.length === 0)
    throw new Error(`no case matches --cases ${o.cases.join(",")} (cases: ${Object.keys(ours).join(", ")})`);
  const py = await PythonBaseline.start(script, pyArgs);
  try {
    const missing = names.filter((n) => !py.caseNames.includes(n));
    if (missing.length) throw new Error(`${script} lacks the case(s) ${missing.join(", ")}`);
    const samples: SideBySide["samples"] = {};
    for (const n of names) {
      for (let i = 0; i < o.warmup; i++) {
        ours[n]();
        await py.time(n);
      }
      const s: Samples = (samples[n] = { ours_s: [], pytorch_s: [], ours_cpu_s: [], pytorch_cpu_s: [] });
      for (let i = 0; i < o.repeats; i++) {
        let mine: Timing;
        let theirs: Timing;
        if (i % 2 === 0) {
          mine = timeOnce(ours[n]);
          theirs = await py.time(n);
        } else {
          theirs = await py.time(n);
          mine = timeOnce(ours[n]);
        }
        s.ours_s.push(mine.wall);
        s.ours_cpu_s.push(mine.cpu);
        s.pytorch_s.push(theirs.wall);
        s.pytorch_cpu_s.push(theirs.cpu);
      }
      console.error(`${n}: ${o.repeats} pairs timed`);
    }
    const cases = names.map((n) => makeCase(n, median(samples[n].ours_s), median(samples[n].pytorch_s)));
    const cpu = Object.fromEntries(
      names.map((n) => {
        const [a, b] = [median(samples[n].ours_cpu_s), median(samples[n].pytorch_cpu_s)];
        return [n, { ours_s: a, pytorch_s: b, ratio: b / a }];
      }),
    );
    const paired = Object.fromEntries(
      names.map((n) => [n, median(samples[n].pytorch_s.map((t, i) => t / samples[n].ours_s[i]))]),
    );
    return { cases, samples, cpu, paired_ratio: paired, python_env: py.env };
  } finally {
    py.close();
  }
}

/** Every parameter ~ N(0, std), as bench_common.randomise_ does: adaLN-Zero would make every DiT block an identity. */
export function randomise(params: Tensor[], std = 0.02): void {
  noGrad(() => params.forEach((p) => normalInto(p, 0, std)));
}

/** Parameters stop requiring gradients: backward then runs to the input only (latent refinement). */
export function freeze(params: Tensor[]): void {
  params.forEach((p) => p.requiresGrad_(false));
}

/** The machine and its load, for the results file (the load average is sampled again when the report is written). */
export function machine(): Record<string, unknown> {
  return {
    cpu: cpus()[0]?.model ?? "unknown",
    cpus: cpus().length,
    torch: torchVersion(),
    node: process.version,
    native_addon: process.env.CAO2_NATIVE ?? "native/build/Release/cao2_torch.node",
    loadavg_before: loadavg(),
  };
}

/**
 * Each low-precision case (`<case>_bf16`) against PyTorch's fp32 `<case>`: what a user gains over the fp32 code
 * they run today (PyTorch's time for <case> over ours for <case>_bf16).
 */
function versusFp32(cases: Case[]): Record<string, { against: string; ratio: number }> {
  const byName = new Map(cases.map((c) => [c.name, c]));
  return Object.fromEntries(
    cases.flatMap((c) => {
      const base = byName.get(c.name.replace(/_bf16$/, ""));
      return c.name.endsWith("_bf16") && base
        ? [[c.name, { against: base.name, ratio: base.pytorch_s / c.ours_s }]]
        : [];
    }),
  );
}

/** Prints the table and writes bench/results/<name>.json as {"cases": [...]} plus the environment. */
export function report(
  name: string,
  cases: Case[],
  extra: Record<string, unknown> & { cpu?: SideBySide["cpu"]; paired_ratio?: SideBySide["paired_ratio"] } = {},
): void {
  const w = Math.max(...cases.map((c) => c.name.length), 4) + 2;
  console.log(
    `${"case".padEnd(w)}${"ours (ms)".padStart(12)}${"pytorch (ms)".padStart(14)}${"ratio".padStart(8)}${"paired".padStart(8)}${"cpu ratio".padStart(11)}`,
  );
  for (const c of cases) {
    const cpu = extra.cpu?.[c.name]?.ratio.toFixed(3) ?? "";
    const paired = extra.paired_ratio?.[c.name]?.toFixed(3) ?? "";
    console.log(
      `${c.name.padEnd(w)}${(c.ours_s * 1e3).toFixed(3).padStart(12)}${(c.pytorch_s * 1e3).toFixed(3).padStart(14)}${c.ratio.toFixed(3).padStart(8)}${paired.padStart(8)}${cpu.padStart(11)}`,
    );
  }
  const versus = versusFp32(cases);
  for (const [name, v] of Object.entries(versus))
    console.log(
      `${name}: ${v.ratio.toFixed(3)}x PyTorch fp32 ${v.against} (goal >= 1.5); against PyTorch's own bf16 autocast, the table's ratio (goal >= 1.0)`,
    );
  mkdirSync(join("bench", "results"), { recursive: true });
  const out = {
    cases,
    ...(Object.keys(versus).length > 0 && { versus_pytorch_fp32: versus }),
    threads: getNumThreads(),
    openblas_coretype: process.env.OPENBLAS_CORETYPE ?? null,
    omp_wait_policy: process.env.OMP_WAIT_POLICY ?? null,
    date: new Date().toISOString(),
    ...extra,
    loadavg_after: loadavg(),
  };
  writeJsonAtomic(join("bench", "results", `${name}.json`), out);
  console.log(`wrote bench/results/${name}.json`);
}
