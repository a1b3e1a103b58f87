// A whole distillation run: check every input before anything is written, load the models, then distil the
// classes one by one (skipping those a previous run finished), and write the manifest last. This is the library
// entry point; `cao2 distill` is a thin layer of flags over it.
// Several processes may share one run (class shards, src/distill/shards.ts): each class is taken under its own lock
// (src/util/lock-file.ts) and finished by exactly one of them, and whichever process finishes the last class writes
// the class list and the manifest, from the class records on disk, so that they do not depend on how the work was
// spread.
import { existsSync, mkdirSync, readdirSync } from "node:fs";
import { hostname } from "node:os";
import { dirname, isAbsolute, join, relative, resolve, sep } from "node:path";
import { InputError } from "../errors.js";
import type { DatasetSource } from "../io/datasets/index.js";
import {
  checkDevice,
  checkInterrupt,
  checkPrecision,
  fromArray,
  type Generator,
  torchVersion,
} from "../torch/index.js";
import { createFileExclusive, isAtomicTemp, writeJsonAtomic } from "../util/atomic.js";
import { acquireLock, type HeldLock, type LockState, schedulerTask } from "../util/lock-file.js";
import { corruptState, isRecord, readStateJson } from "../util/state-file.js";
import type { Progress } from "../util/progress.js";
import { packageVersion } from "../util/version.js";
import { chooseCondition, type ConditionChoice } from "./condition.js";
import { loadModels, type LoadedModels, type ModelOverrides } from "./models.js";
import { type AuthorsRun, authorsRun, distillClass, type DistillOptions, ORDERS } from "./pipeline.js";
import { openReference, type Reference } from "./reference.js";
import { resolveStrategy } from "./select.js";
import { deriveSeed } from "../util/seed.js";
import { classFolder } from "../io/datasets/imagefolder.js";
import { type ClassSpec, type Condition, type Defaults, type PresetName, presetClasses } from "./presets.js";
import { type Shard, shardClasses, shardName } from "./shards.js";
import {
  type ClassRecord,
  type ClassWorker,
  classLockPath,
  locksDir,
  manifestLockPath,
  readClassRecord,
  readStreamState,
  runFile,
  type RunLayout,
  runLayout,
  streamPath,
  writeClassList,
} from "./write.js";

export interface DistillConfig extends Omit<DistillOptions, "condition"> {
  preset: PresetName;
  /** `--compat paper` runs: whether the flags not given took the preset's validated settings or the paper's. */
  defaults?: Defaults;
  condition: Condition;
  /** For condition "auto": refine with the true label when the selector's held-out accuracy reaches this. */
  autoConditionThreshold: number;
  out: string;
  /** The run's state folder (resume records, pre-refinement images, latents); default `<out>.cao2` beside `out`. */
  state?: string;
  models: { dit: string; vae: string; selector: string };
  modelOverrides?: Omit<ModelOverrides, "device">;
  threads: number;
  /** This process's part of the classes; the others are left to other processes sharing the output. */
  shard?: Shard;
  /** A class lock whose holder has not touched it for this long is taken over (src/util/lock-file.ts). */
  staleLockAfterS?: number;
}

/** How runDistill runs: resume or not, the preset's condition for "auto", progress and event callbacks. */
export interface RunOptions {
  resume?: boolean;
  presetCondition: "true" | "null";
  progress?: Progress;
  onEvent?: (e: DistillEvent) => void;
}

/** Default stale age of class locks: a holder touches its lock at every sampling and refinement step. */
export const DEFAULT_STALE_LOCK_S = 600;

export type DistillEvent =
  | { type: "models-loaded"; models: LoadedModels["files"] }
  | { type: "condition"; choice: ConditionChoice }
  /** The output is ready: a new run, or (--resume) the continued one. */
  | { type: "started"; out: string; resumed: boolean }
  | { type: "class-skipped"; label: number; name: string }
  | { type: "class-done"; label: number; name: string; record: ClassRecord }
  /** This process's shard and its classes. */
  | { type: "shard"; shard: Shard; classes: ClassSpec[] }
  /** A class of this process is being distilled by another; this one waits for it (or for its lock to go stale). */
  | { type: "class-busy"; label: number; name: string; lock: LockState }
  | { type: "lock-taken-over"; label: number | "manifest"; from: LockState; reason: string }
  /** This process's classes are done, others not yet: whoever finishes the last writes the manifest. */
  | { type: "shard-done"; state: string; missing: number[] }
  | { type: "done"; manifest: string; state: string };

export interface Manifest {
  tool: { name: "cao2"; version: string; libtorch: string };
  created: string;
  /** Settings; `config.state` is the run's state folder. */
  config: Record<string, unknown>;
  condition: ConditionChoice;
  /** The mmd strategy's real images: the data set read (digest included) and the sample's size and seed. */
  reference?: { data: string; perClass: number; seed: number; source: DatasetSource };
  models: LoadedModels["files"] & {
    selectorPreprocess: LoadedModels["selectorPreprocess"];
    scalingFactor: number;
    selectorAccuracy?: number;
  };
  seeds: { seed: number; derivation: string };
  classes: { label: number; folder: string; id: string; name: string; modelIndex: number }[];
  images: number;
  distillSeconds: number;
  /** How the work was spread (the classes each shard and host distilled); not part of the result. */
  execution?: { hosts: string[]; shards: { shard: string | null; classes: number[]; hosts: string[] }[] };
  records: ClassRecord[];
}

/** Settings that decide the output bytes; a resumed run must have the same. */
function runKey(cfg: DistillConfig, condition: "true" | "null"): Record<string, unknown> {
  const {
    out: _out,
    state: _state,
    threads: _threads,
    device: _device,
    shard: _shard,
    staleLockAfterS: _stale,
    modelOverrides,
    models,
    ...rest
  } = cfg;
  return {
    ...rest,
    precision: rest.precision ?? "fp32",
    condition,
    modelOverrides: modelOverrides ?? {},
    models: Object.fromEntries(Object.entries(models).map(([k, v]) => [k, resolve(v)])),
  };
}

/** Whether `path` is `folder` or lies below it. */
function isWithin(folder: string, path: string): boolean {
  const rel = relative(folder, path);
  return rel === "" || (rel !== ".." && !rel.startsWith(`..${sep}`) && !isAbsolute(rel));
}

function checkConfig(cfg: DistillConfig): void {
  const bad = (msg: string) => new InputError(msg);
  const posInt = (v: number, what: string) => {
    if (!Number.isInteger(v) || v < 1) throw bad(`${what} must be a positive integer, got ${v}`);
  };
  posInt(cfg.ipc, "--ipc");
  posInt(cfg.poolFactor, "--pool-factor");
  posInt(cfg.steps, "--steps");
  posInt(cfg.batchSize, "--batch-size");
  if (!Number.isInteger(cfg.refineIters) || cfg.refineIters < 0)
    throw bad(`--refine-iters must be a non-negative integer, got ${cfg.refineIters}`);
  if (cfg.steps < 2) throw bad(`--steps must be at least 2, got ${cfg.steps}`);
  if (cfg.refineIters > 0 && !(Number.isInteger(cfg.tMax) && cfg.tMax >= 1 && cfg.tMax < cfg.steps)) {
    throw bad(
      `--t-max must be an integer in 1..${cfg.steps - 1} (an index of the ${cfg.steps}-step schedule), got ${cfg.tMax}`,
    );
  }
  if (!(cfg.lr > 0)) throw bad(`--lr must be positive, got ${cfg.lr}`);
  if (!(cfg.lambda >= 0)) throw bad(`--lambda must be non-negative, got ${cfg.lambda}`);
  if (!(cfg.cfg >= 1)) throw bad(`--cfg must be at least 1 (1 = no guidance), got ${cfg.cfg}`);
  if (cfg.maxNorm !== undefined && !(cfg.maxNorm > 0)) throw bad(`--max-norm must be positive, got ${cfg.maxNorm}`);
  if (cfg.classes.length === 0) throw bad("no classes to distil");
  if (!(cfg.autoConditionThreshold >= 0 && cfg.autoConditionThreshold <= 1))
    throw bad(`--auto-threshold must be a top-1 accuracy in 0..1, got ${cfg.autoConditionThreshold}`);
  if (!ORDERS.includes(cfg.order)) throw bad(`--order must be one of ${ORDERS.join(", ")}, got ${cfg.order}`);
  if (cfg.shard && cfg.compat === "authors") {
    throw bad(
      "--compat authors draws every class from one random stream in class order, so its classes cannot be split into shards; drop the shard (--shard, --shards or the Slurm array) or use --compat paper",
    );
  }
  if (resolveStrategy(cfg.select, cfg.ipc, cfg.autoIpcThreshold) === "mmd" && !cfg.reference) {
    throw bad(
      "--select mmd matches the kept samples to real training images of each class: give them with --reference <data set> (fashion-mnist, fashion-mnist-fit or an ImageFolder)",
    );
  }
  if (cfg.reference) posInt(cfg.reference.perClass, "--reference-per-class");
  if (cfg.staleLockAfterS !== undefined && !(cfg.staleLockAfterS > 0))
    throw bad(`the stale lock age must be positive, got ${cfg.staleLockAfterS}`);
  if (cfg.state !== undefined && isWithin(resolve(cfg.out), resolve(cfg.state))) {
    throw bad(
      `--state ${cfg.state} lies inside --out ${cfg.out}; it must be outside (a folder in the output is read as a class)`,
    );
  }
  checkDevice(cfg.device);
  checkPrecision(cfg.precision ?? "fp32", cfg.device);
}

/** Settings of runs recorded before they existed, as those runs had them. */
const RECORDED_BEFORE: Record<string, unknown> = { order: "select-refine", precision: "fp32" };

/**
 * Creates (or, resuming, re-opens) the output and state folders; refuses to mix a new run into an existing one. With
 * `resume`, a run that is there is continued (same settings only) and one that is not is started, so a scheduler's
 * retries use one command line; `resumed` says which. Of several processes starting one run together (shards), one
 * creates its settings file and the others check theirs against it.
 */
function prepareOutput(
  cfg: DistillConfig,
  resume: boolean,
  key: Record<string, unknown>,
): { layout: RunLayout; resumed: boolean } {
  const layout = runLayout(cfg.out, cfg.state);
  const runPath = runFile(layout);
  const continueRun = () => {
    const recover = `the run cannot be checked or continued: start it again in a new --out (or delete ${cfg.out} and ${layout.state})`;
    const saved = {
      ...RECORDED_BEFORE,
      ...readStateJson<Record<string, unknown>>(runPath, { what: "run settings", recover }, isRecord),
    };
    const diff = Object.keys({ ...saved, ...key }).filter((k) => JSON.stringify(saved[k]) !== JSON.stringify(key[k]));
    if (diff.length)
      throw new InputError(
        `${cfg.out} was started with other settings (${diff.join(", ")} differ); resume with the same flags or use a new --out`,
      );
    return { layout, resumed: true };
  };
  if (resume && existsSync(runPath)) return continueRun();
  // A write in progress (another process starting the same run) leaves only a hidden temporary file.
  const inUse = (dir: string) => existsSync(dir) && readdirSync(dir).some((f) => !isAtomicTemp(f));
  const refuse = (msg: string) => {
    if (resume && existsSync(runPath)) return continueRun(); // started by another process meanwhile
    throw new InputError(msg);
  };
  if (inUse(cfg.out)) {
    return refuse(
      resume
        ? `${cfg.out} is not empty but holds no cao2 run to resume (no run state in ${layout.state}); choose a new --out, or give the run's --state`
        : `${cfg.out} already exists and is not empty: pass --resume to continue that run, or choose a new --out`,
    );
  }
  if (inUse(layout.state)) {
    return refuse(
      resume
        ? `the state folder ${layout.state} is not empty but holds no run (no run.json): delete it, or choose another --state`
        : `the state folder ${layout.state} already holds a run: pass --resume to continue it, delete it to start afresh, or choose another --state`,
    );
  }
  for (const [dir, what, flag] of [
    [cfg.out, "output", "--out"],
    [layout.state, "state", "--state"],
  ]) {
    try {
      mkdirSync(dir, { recursive: true });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new InputError(
        `cannot create the ${what} folder ${dir} (${code ?? (e as Error).message}); choose a writable ${flag}`,
      );
    }
  }
  if (!createFileExclusive(runPath, JSON.stringify(key, null, 2) + "\n")) {
    return refuse(
      `${cfg.out}: another process started a run there meanwhile; pass --resume to join it, or choose a new --out`,
    );
  }
  return { layout, resumed: false };
}

/** `--compat authors` classes share one stream: a resumed run continues it from where the last finished class left it. */
function resumeStream(layout: RunLayout, label: number, stream: Generator): void {
  const bytes = readStreamState(layout, label);
  if (!bytes)
    throw new InputError(
      `${layout.out}: class ${label} is finished but its random stream was not saved; --compat authors cannot resume this run, start it again`,
    );
  const state = fromArray(bytes, [bytes.length], { dtype: "uint8" });
  try {
    stream.setState(state);
  } catch (e) {
    const file = {
      what: `random stream saved after class ${label}`,
      recover: "--compat authors cannot resume this run: start it again in a new --out",
    };
    throw corruptState(streamPath(layout, label), file, (e as Error).message.split("\n")[0]);
  } finally {
    state.dispose();
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** How often a process waiting for a class that another holds looks again. */
const POLL_MS = 2000;

/** The output folders must be usable before the (slow) model loading; nothing is written until the models load. */
function checkFolders(cfg: DistillConfig): void {
  for (const [dir, flag] of [
    [cfg.out, "--out"],
    [cfg.state, "--state"],
  ]) {
    const parent = dir === undefined ? undefined : dirname(resolve(dir));
    if (dir !== undefined && !existsSync(dir) && !existsSync(parent!))
      throw new InputError(`the folder that would hold ${flag} does not exist: ${parent}`);
  }
}

/** Every class must be one the DiT and the selector know. */
function checkClassIndices(classes: readonly ClassSpec[], m: LoadedModels): void {
  for (const c of classes) {
    if (c.modelIndex >= m.dit.config.numClasses)
      throw new InputError(
        `class ${c.id} has index ${c.modelIndex}, but the DiT knows ${m.dit.config.numClasses} classes`,
      );
    if (c.modelIndex >= m.selector.config.numClasses)
      throw new InputError(
        `class ${c.id} has index ${c.modelIndex}, but the selector knows ${m.selector.config.numClasses} classes`,
      );
  }
}

/**
 * Runs (or resumes) a distillation, or this process's shard of it. Finished classes are never recomputed; an
 * interrupted class is redone from its start and gives the same bytes. Returns the manifest's path, or undefined
 * when other processes still have classes to finish (the last of them writes the manifest).
 */
export async function runDistill(cfg: DistillConfig, options: RunOptions): Promise<string | undefined> {
  checkConfig(cfg);
  checkFolders(cfg);
  const m = await loadModels(cfg.models, { ...cfg.modelOverrides, device: cfg.device });
  options.onEvent?.({ type: "models-loaded", models: m.files });
  checkClassIndices(cfg.classes, m);
  const choice = chooseCondition(
    { ...cfg, presetClasses: presetClasses(cfg.preset), presetCondition: options.presetCondition },
    m,
  );
  options.onEvent?.({ type: "condition", choice });
  // The mmd strategy's real images, sampled per class from a seed of the run (the same sample in every shard); a bad
  // reference is refused before anything is written.
  const reference = cfg.reference && (await openReference(cfg.reference, cfg.preset, m, referenceSeed(cfg.seed)));
  try {
    return await distillOpened(cfg, options, { m, choice, reference });
  } finally {
    await reference?.close();
  }
}

/** runDistill once the models and the reference are open. */
async function distillOpened(
  cfg: DistillConfig,
  o: RunOptions,
  { m, choice, reference }: { m: LoadedModels; choice: ConditionChoice; reference?: Reference },
): Promise<string | undefined> {
  const condition = choice.chosen;
  // A shard always starts or continues the run: its siblings start at the same time, and its retries continue it.
  const { layout, resumed } = prepareOutput(
    cfg,
    (o.resume ?? false) || cfg.shard !== undefined,
    runKey(cfg, condition),
  );
  o.onEvent?.({ type: "started", out: cfg.out, resumed });
  mkdirSync(locksDir(layout), { recursive: true });
  const mine = cfg.shard ? shardClasses(cfg.classes, cfg.shard) : cfg.classes;
  if (cfg.shard) o.onEvent?.({ type: "shard", shard: cfg.shard, classes: mine });
  const worker: ClassWorker = {
    host: hostname(),
    pid: process.pid,
    shard: cfg.shard ? shardName(cfg.shard) : null,
    task: schedulerTask(),
  };
  const role = cfg.shard ? `shard ${shardName(cfg.shard)}` : "whole run";
  const staleAfterS = cfg.staleLockAfterS ?? DEFAULT_STALE_LOCK_S;
  const takeLock: TakeLock = (label, path) => {
    const got = acquireLock(path, { staleAfterS, role });
    if ("busy" in got) return got.busy;
    if (got.tookOver)
      o.onEvent?.({ type: "lock-taken-over", label, from: got.tookOver.from, reason: got.tookOver.reason });
    return got.held;
  };
  const latentShape = [m.dit.config.inChannels, m.dit.config.inputSize, m.dit.config.inputSize];
  const authors = cfg.compat === "authors" ? authorsRun(cfg.seed, latentShape) : undefined;
  try {
    await distillClasses(mine, { m, opts: { ...cfg, condition }, layout, o, authors, reference, takeLock, worker });
  } finally {
    authors?.bank.dispose();
  }
  const records = cfg.classes.map((c) => readClassRecord(layout, c.label));
  const missing = cfg.classes.filter((_, i) => records[i] === undefined).map((c) => c.label);
  if (missing.length > 0) {
    o.onEvent?.({ type: "shard-done", state: resolve(layout.state), missing });
    return undefined;
  }
  const lock = takeLock("manifest", manifestLockPath(layout));
  if (!("release" in lock)) {
    // Two processes finished the last classes together; the other one writes the manifest.
    o.onEvent?.({ type: "shard-done", state: resolve(layout.state), missing: [] });
    return undefined;
  }
  try {
    const path = writeManifest(cfg, layout, { choice, m, records: records as ClassRecord[], reference });
    o.onEvent?.({ type: "done", manifest: path, state: resolve(layout.state) });
    return path;
  } finally {
    lock.release();
  }
}

/** Takes a class's or the manifest's lock: held, or the state of the lock another process holds. */
type TakeLock = (label: number | "manifest", path: string) => HeldLock | LockState;

/** What the class loop of one process shares. */
interface ClassLoop {
  m: LoadedModels;
  opts: DistillOptions;
  layout: RunLayout;
  o: RunOptions;
  authors?: AuthorsRun;
  reference?: Reference;
  takeLock: TakeLock;
  worker: ClassWorker;
}

/**
 * Distils this process's classes that no record holds yet, each under its lock; a class another process holds is
 * waited for, and skipped once that process has written it.
 */
async function distillClasses(mine: readonly ClassSpec[], x: ClassLoop): Promise<void> {
  const { m, opts, layout, o, authors, reference, takeLock, worker } = x;
  /** Whether the class is done already (its record is there); `--compat authors` continues the stream after it. */
  const done = (c: ClassSpec) => {
    if (!readClassRecord(layout, c.label)) return false;
    if (authors) resumeStream(layout, c.label, authors.stream);
    o.onEvent?.({ type: "class-skipped", label: c.label, name: c.name });
    return true;
  };
  let pending = mine.slice();
  const waitedFor = new Set<string>();
  while (pending.length > 0) {
    const left: ClassSpec[] = [];
    for (const c of pending) {
      // `--compat authors` classes continue one stream: a class waits for those before it.
      if (authors && left.length > 0) {
        left.push(c);
        continue;
      }
      if (done(c)) continue;
      const lock = takeLock(c.label, classLockPath(layout, c.label));
      if (!("release" in lock)) {
        const key = `${c.label} ${lock.holder?.token}`;
        if (!waitedFor.has(key)) o.onEvent?.({ type: "class-busy", label: c.label, name: c.name, lock });
        waitedFor.add(key);
        left.push(c);
        continue;
      }
      try {
        // Finished by another process between the check above and the lock: never redone.
        if (done(c)) continue;
        const classReference = await reference?.features(c);
        const record = distillClass(m, opts, c, layout, {
          progress: o.progress,
          authors,
          worker,
          onStep: () => lock.heartbeat(),
          reference: classReference,
        });
        o.onEvent?.({ type: "class-done", label: c.label, name: c.name, record });
      } finally {
        lock.release();
      }
      checkInterrupt("stopped after a finished class; continue with --resume");
    }
    pending = left;
    if (pending.length > 0) {
      await sleep(POLL_MS);
      checkInterrupt("stopped while waiting for a class another process holds; continue with --resume");
    }
  }
}

/** The seed of the reference sample (the stratified draw of io/datasets/split.ts) of a run seed. */
const referenceSeed = (seed: number) => deriveSeed(seed, "reference");

/** The class list and the manifest of a run whose classes are all done, from their records. */
function writeManifest(
  cfg: DistillConfig,
  layout: RunLayout,
  r: { choice: ConditionChoice; m: LoadedModels; records: ClassRecord[]; reference?: Reference },
): string {
  const { choice, m, records } = r;
  writeClassList(layout, cfg.classes, cfg.numClasses);
  const manifest: Manifest = {
    tool: { name: "cao2", version: packageVersion(), libtorch: torchVersion() },
    created: new Date().toISOString(),
    config: {
      ...runKey(cfg, choice.chosen),
      out: resolve(cfg.out),
      state: resolve(layout.state),
      device: cfg.device,
      threads: cfg.threads,
    },
    condition: choice,
    ...(r.reference && { reference: { ...cfg.reference!, seed: referenceSeed(cfg.seed), source: r.reference.source } }),
    models: {
      ...m.files,
      selectorPreprocess: m.selectorPreprocess,
      scalingFactor: m.scalingFactor,
      selectorAccuracy: m.selectorAccuracy,
    },
    seeds: {
      seed: cfg.seed,
      derivation:
        cfg.compat === "authors"
          ? "one stream Generator(seed) over the classes in order: pool latents, sampler draws (the pool as one batch), " +
            "label-dropout draws rand([IPC (the whole pool with --order refine-select), iterations]); noise bank Generator(42).randn(1024, C, H, W); class seed = " +
            "deriveSeed(seed, 'class', modelIndex); bank row of pool candidate i = deriveSeed(class, 'noise-row', i); its t " +
            "draws = deriveSeed(class, 'refine-t', i)"
          : "class seed = deriveSeed(seed, 'class', modelIndex); pool = Generator(deriveSeed(class, 'pool')); refinement noise of pool " +
            "candidate i = Generator(deriveSeed(class, 'refine-noise', i)); its t draws = deriveSeed(class, 'refine-t', i)",
    },
    classes: cfg.classes.map((c) => ({
      label: c.label,
      folder: classFolder(c, cfg.numClasses),
      id: c.id,
      name: c.name,
      modelIndex: c.modelIndex,
    })),
    images: records.reduce((n, r) => n + r.items.length, 0),
    distillSeconds: records.reduce(
      (s, r) => s + r.timings.pool_s + r.timings.select_s + r.timings.refine_s + r.timings.write_s,
      0,
    ),
    execution: executionOf(records),
    records,
  };
  const path = join(cfg.out, "manifest.json");
  writeJsonAtomic(path, manifest);
  return path;
}

/** Which shard and host distilled which classes (records written before cao2 recorded it count as a whole run's). */
function executionOf(records: readonly ClassRecord[]): NonNullable<Manifest["execution"]> {
  const sorted = (xs: Iterable<string>) => [...new Set(xs)].sort();
  const shards = new Map<string | null, ClassRecord[]>();
  for (const r of records) shards.set(r.worker?.shard ?? null, [...(shards.get(r.worker?.shard ?? null) ?? []), r]);
  const hostsOf = (rs: readonly ClassRecord[]) => sorted(rs.flatMap((r) => (r.worker ? [r.worker.host] : [])));
  return {
    hosts: hostsOf(records),
    shards: [...shards].map(([shard, rs]) => ({ shard, classes: rs.map((r) => r.label), hosts: hostsOf(rs) })),
  };
}
