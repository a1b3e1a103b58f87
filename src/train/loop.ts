// The resumable training loop the recipes share: steps, EMA, JSONL logs, periodic validation, checkpoints every N
// steps and on Ctrl-C/SIGTERM (then exits with Interrupted), and resumption that continues exactly where the last
// checkpoint left off (log lines after it are dropped so the log never holds a step twice).
import { appendFileSync, existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { InputError, Interrupted } from "../errors.js";
import type { Dataset } from "../io/datasets/index.js";
import { type Precision, stopRequested, tidy } from "../torch/index.js";
import { withPath, writeFileAtomic } from "../util/atomic.js";
import { isRecord, parseStateJson, type StateFileInfo } from "../util/state-file.js";
import type { Progress } from "../util/progress.js";
import { deriveSeed, randomSource, shuffled } from "../util/seed.js";
import { updateEma } from "./ema.js";
import { loadTrainingState, saveTrainingState, type TrainingParts } from "./state.js";

/** What every recipe's run is given besides its recipe settings. */
export interface TrainingRun {
  data: Dataset;
  /** The run folder: checkpoint, log and the finished model. */
  outDir: string;
  resume: boolean;
  /** Stop after this many steps (a partial run that --resume continues). */
  steps?: number;
  /** Where the model trains (default cpu); data stays on the CPU and moves batch by batch, and every random draw is
   * made on a CPU generator, so a seed gives the same run on any device up to the device's arithmetic. */
  device?: string;
  /** The model's arithmetic in the training forward (default fp32; bf16/fp16: autocast, the loss in fp32). */
  precision?: Precision;
  progress?: Progress;
}

export interface LoopOptions {
  /** Length of the schedule. */
  steps: number;
  /** Stop after this step (a partial run that --resume continues); default: the end of the schedule. */
  stopAt?: number;
  checkpointEvery: number;
  /** The run folder: checkpoint `state.safetensors` and JSONL log `log.jsonl` live there. */
  dir: string;
  logEvery: number;
  resume: boolean;
  /** Settings recorded in the checkpoint and compared on resume. */
  config: Record<string, unknown>;
  emaDecay?: number;
  validateEvery?: number;
  validate?: (step: number) => Record<string, number>;
  progress?: Progress;
  /** Called after restoring a checkpoint (e.g. to restore data order), with the step it resumes at. */
  onResume?: (step: number, extra: Record<string, unknown>) => void;
  /** State the recipe wants saved with each checkpoint. */
  extra?: () => Record<string, unknown>;
}

/** Runs `step(i)` for i from the resumed step to the stop; each call returns metrics such as {loss}. */
export function trainLoop(
  parts: TrainingParts,
  step: (i: number) => Record<string, number>,
  options: LoopOptions,
): { step: number } {
  const checkpointPath = join(options.dir, "state.safetensors");
  const logPath = join(options.dir, "log.jsonl");
  let start = 0;
  if (existsSync(checkpointPath)) {
    if (!options.resume)
      throw new InputError(
        `${checkpointPath} already exists: pass --resume to continue it, or choose a new output folder`,
      );
    const info = loadTrainingState(checkpointPath, parts, options.config);
    start = info.step;
    truncateLog(logPath, start);
    options.onResume?.(start, info.extra ?? {});
    options.progress?.log(`resumed at step ${start}`);
  } else {
    // --resume continues a run if there is one, else starts it: a scheduler's retries use one command line.
    if (options.resume) options.progress?.log(`nothing to resume (no ${checkpointPath}): starting a new run`);
    if (existsSync(logPath)) writeFileAtomic(logPath, "");
  }
  const appendLog = (line: Record<string, unknown>) => {
    try {
      appendFileSync(logPath, JSON.stringify(line) + "\n");
    } catch (e) {
      throw withPath(e, logPath);
    }
  };
  const save = (i: number) =>
    saveTrainingState(checkpointPath, parts, { step: i, config: options.config, extra: options.extra?.() });
  const sums: Record<string, number> = {};
  let count = 0;
  let t0 = performance.now();
  const end = Math.min(options.stopAt ?? options.steps, options.steps);
  options.progress?.stage("training", end, start);
  for (let i = start; i < end; i++) {
    const metrics = tidy(() => step(i));
    if (parts.ema && options.emaDecay !== undefined) updateEma(parts.ema, parts.model, options.emaDecay);
    for (const [k, v] of Object.entries(metrics)) sums[k] = (sums[k] ?? 0) + v;
    count++;
    const done = i + 1;
    options.progress?.tick();
    if (done % options.logEvery === 0 || done === end) {
      const avg = Object.fromEntries(Object.entries(sums).map(([k, v]) => [k, v / count]));
      const secs = (performance.now() - t0) / 1000;
      appendLog({ step: done, ...avg, steps_per_s: count / secs, time: new Date().toISOString() });
      for (const k of Object.keys(sums)) delete sums[k];
      count = 0;
      t0 = performance.now();
    }
    if (options.validate && options.validateEvery && (done % options.validateEvery === 0 || done === end)) {
      const v = options.validate(done);
      appendLog({ step: done, ...v, time: new Date().toISOString() });
      options.progress?.log(
        `step ${done}: ${Object.entries(v)
          .map(([k, x]) => `${k} ${x.toFixed(4)}`)
          .join(", ")}`,
      );
    }
    if (done % options.checkpointEvery === 0 || done === end) save(done);
    if (stopRequested()) {
      save(done);
      options.progress?.log(`stopped at step ${done}; checkpoint saved, continue with --resume`);
      throw new Interrupted(`training interrupted at step ${done}; resume with --resume`);
    }
  }
  options.progress?.end();
  return { step: Math.max(start, end) };
}

/** Drops log lines of steps after `step` (they belong to work the checkpoint does not hold). */
function truncateLog(path: string, step: number): void {
  if (!existsSync(path)) return;
  const log: StateFileInfo = {
    what: "training log",
    recover: "delete it or its broken lines to resume (the checkpoint holds the training state)",
  };
  const kept = readFileSync(path, "utf8")
    .split("\n")
    .filter(
      (l) =>
        l.trim() &&
        parseStateJson<{ step: number }>(path, l, log, (v) => isRecord(v) && typeof v.step === "number").step <= step,
    );
  writeFileAtomic(path, kept.map((l) => l + "\n").join(""));
}

/**
 * The loop options every recipe's run gives alike: the schedule's length, where to stop, the run folder, resume and
 * progress, and the settings recorded with the checkpoint: the recipe's and the data's (`config`), not how often
 * checkpoints are written, which does not decide the result.
 */
export function runOptions<T extends { checkpointEvery: number }>(
  r: TrainingRun,
  recipe: T,
  total: number,
  config: Record<string, unknown>,
): Pick<LoopOptions, "steps" | "stopAt" | "checkpointEvery" | "dir" | "resume" | "config" | "progress"> {
  const { checkpointEvery, ...settings } = recipe;
  return {
    steps: total,
    stopAt: r.steps,
    checkpointEvery,
    dir: r.outDir,
    resume: r.resume,
    config: {
      ...settings,
      steps: total,
      dataSha256: r.data.source.sha256,
      precision: r.precision ?? "fp32",
      ...config,
    },
    progress: r.progress,
  };
}

/**
 * The batches of an epoch-based recipe: each epoch visits the n examples in a fresh order drawn from
 * (seed, epoch), in full batches (the remainder of an epoch is dropped). Depends only on the step, so a resumed
 * run sees exactly the batches it would have seen.
 */
export function epochBatches(
  n: number,
  batchSize: number,
  seed: number,
): { perEpoch: number; batch(step: number): number[] } {
  const perEpoch = Math.floor(n / batchSize);
  if (perEpoch < 1) throw new InputError(`batch size ${batchSize} is larger than the ${n} training examples`);
  const all = Array.from({ length: n }, (_, i) => i);
  let epoch = -1;
  let order: number[] = [];
  return {
    perEpoch,
    batch(step: number): number[] {
      const e = Math.floor(step / perEpoch);
      if (e !== epoch) [order, epoch] = [shuffled(all, randomSource(deriveSeed(seed, "order", e))), e];
      const pos = (step % perEpoch) * batchSize;
      return order.slice(pos, pos + batchSize);
    },
  };
}
