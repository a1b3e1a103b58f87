// Algorithm 1, per class c (classes are independent units of work: each is finished, recorded and never redone):
//   2   pool:   sample m x IPC latents conditioned on c with classifier-free guidance  (../diffusion/samplers.ts)
//   3   score:  decode them, run the selector, softmax                                 (score.ts)
//   4   select: keep IPC of them by the strategy                                      (select.ts)
//   5-9 refine: minimise the diffusion loss of each kept latent under c^ (Eq. 4)      (refine.ts)
//       write:  decode, PNG ImageFolder, per-class record; the manifest when all are done (write.ts)
// The appendix's stage-order ablation (Table 11, order "refine-select") refines the whole pool first (5-9), then
// scores and selects the refined latents (3-4).
// Every random draw comes from a generator seeded by the run seed and the class, so a class gives the same bytes
// whether it runs first or last, alone or after a resume. The pool draws from one generator in the sampler's batch
// order (as a PyTorch loop would, so it depends on the batch size); refinement draws per pool candidate, so neither
// its batching nor the stage order changes what a candidate becomes.
//
// `--compat authors` draws as the released code does (docs/compat.md): one torch stream for the whole run, seeded
// by the run seed, takes each class's pool latents, its sampler's draws (the whole pool as one batch) and its
// refinement's label-dropout decisions (image after image, iteration after iteration), then the next class's; each
// image's noise is a row of a fixed bank, the row drawn once per image.
import { GaussianDiffusion } from "../diffusion/gaussian.js";
import { sample } from "../diffusion/samplers.js";
import {
  cat,
  checkDevice,
  checkInterrupt,
  fromArray,
  Generator,
  keep,
  lt,
  rand,
  type Precision,
  randn,
  type Tensor,
  tidy,
} from "../torch/index.js";
import type { Progress } from "../util/progress.js";
import { deriveSeed, randomSource } from "../util/seed.js";
import type { LoadedModels } from "./models.js";
import type { ClassSpec, Compat } from "./presets.js";
import { refineLatents, type NormKind, type RefineSchedule } from "./refine.js";
import type { ReferenceSpec } from "./reference.js";
import { decodeLatents, imageFeatures, latentFeatures, pixelFeatures, scoreImages } from "./score.js";
import {
  type Candidate,
  resolveStrategy,
  scoreCandidates,
  type Selection,
  selectCandidates,
  type FillRule,
  type Strategy,
} from "./select.js";
import { type ClassRecord, type ClassWorker, type RunLayout, writeClass } from "./write.js";

export const ORDERS = ["select-refine", "refine-select"] as const;
/** select-refine: Algorithm 1; refine-select: refine the whole pool, then select on the refined latents (Table 11). */
export type StageOrder = (typeof ORDERS)[number];

export interface DistillOptions {
  classes: ClassSpec[];
  /** Size of the label space (the preset's class count), which sets the folder names' padding. */
  numClasses: number;
  ipc: number;
  poolFactor: number;
  select: Strategy;
  /** For the mmd strategy: the real images the kept set is matched to (reference.ts). */
  reference?: ReferenceSpec;
  fill: FillRule;
  autoIpcThreshold: number;
  refineIters: number;
  lr: number;
  lambda: number;
  norm: NormKind;
  tMax: number;
  maxNorm?: number;
  /** The condition c^ of refinement, resolved ("auto" decided before the run). */
  condition: "true" | "null";
  timestepMode: "original" | "index";
  refineTrainMode: boolean;
  compat: Compat;
  order: StageOrder;
  cfg: number;
  /** Original timesteps lo..hi where the pool's guidance applies (undefined: every step). */
  cfgInterval?: [number, number];
  guidedChannels: 3 | "all";
  steps: number;
  seed: number;
  batchSize: number;
  device: string;
  /**
   * The DiT's arithmetic in sampling and refinement (default fp32): bf16/fp16 run it under autocast and take its
   * output back to fp32 (torch/autocast.ts); the decoder and the selector stay fp32.
   */
  precision?: Precision;
  savePreRefine: boolean;
  saveLatents: boolean;
}

export interface ClassTimings {
  pool_s: number;
  select_s: number;
  refine_s: number;
  write_s: number;
}

/** Rows of the released code's noise bank. */
export const BANK_ROWS = 1024;

/** What `--compat authors` carries from class to class: the noise bank and the run's one random stream. */
export interface AuthorsRun {
  bank: Tensor;
  stream: Generator;
}

/**
 * A run in the released code's mode: the bank is manualSeed(42); randn(1024, C, H, W) (on its own generator, as on
 * a GPU, where the bank's CPU generator is not the stream's), and the stream starts as torch.manual_seed(seed).
 */
export function authorsRun(seed: number, latentShape: readonly number[]): AuthorsRun {
  return {
    bank: keep(randn([BANK_ROWS, ...latentShape], { generator: new Generator(42) })),
    stream: new Generator(seed),
  };
}

/**
 * Refinement's per-image draws that the released code takes from NumPy's global stream, never seeded (its bank row,
 * once per image, and its t index at every iteration): ours come from seeds, and tests replace them here.
 */
export interface RefineDraws {
  /** The bank row of the image's fixed noise (`--compat authors`). */
  noiseRow(image: number, poolIndex: number): number;
  /** The source of the image's t indices in 1..tMax, one per iteration. */
  timesteps(image: number, poolIndex: number): () => number;
}

/** The draws of a class, seeded per pool candidate (so they do not depend on batching or order). */
export function seededRefineDraws(classSeed: number, tMax: number): RefineDraws {
  return {
    noiseRow: (_image, poolIndex) =>
      Math.floor(randomSource(deriveSeed(classSeed, "noise-row", poolIndex))() * BANK_ROWS),
    timesteps: (_image, poolIndex) => {
      const r = randomSource(deriveSeed(classSeed, "refine-t", poolIndex));
      return () => 1 + Math.floor(r() * tMax);
    },
  };
}

export interface ClassExtras {
  progress?: Progress;
  /** Required with `--compat authors`: the run's bank and stream, which this class advances. */
  authors?: AuthorsRun;
  /** Replaces the seeded refinement draws (tests that feed another implementation's draws). */
  draws?: Partial<RefineDraws>;
  /** Called at every sampling and refinement step (a class lock's heartbeat). */
  onStep?: () => void;
  /** Recorded with the class: the process that distilled it. */
  worker?: ClassWorker;
  /** For the mmd strategy: the class's reference images in pixelFeatures space (reference.ts). */
  reference?: Float32Array;
}

const seconds = (t0: number) => (performance.now() - t0) / 1000;

/** Refined latents of some pool candidates (a new tensor) with their objective before and after (NaN without refinement). */
interface Refined {
  latents: Tensor;
  lossBefore: number[];
  lossAfter: number[];
  /** `--compat authors`: the noise bank row of each. */
  noiseRows?: number[];
}

/** Runs one class through Algorithm 1 and writes its images and record. */
export function distillClass(
  models: LoadedModels,
  options: DistillOptions,
  c: ClassSpec,
  layout: RunLayout,
  extras: ClassExtras = {},
): ClassRecord {
  checkDevice(options.device);
  const { authors } = extras;
  if ((options.compat === "authors") !== (authors !== undefined))
    throw new Error(`distillClass: compat ${options.compat} ${authors ? "with" : "without"} an authors-mode stream`);
  const seed = deriveSeed(options.seed, "class", c.modelIndex);
  const diffusion = GaussianDiffusion.create({ numTimesteps: 1000, respacing: options.steps });
  const n = options.ipc * options.poolFactor;
  const stage = `class ${options.classes.indexOf(c) + 1}/${options.classes.length}`;
  const condLabel = options.condition === "true" ? c.modelIndex : models.dit.config.numClasses;
  const ctx: ClassContext = { m: models, o: options, seed, condLabel, diffusion, extras, stage };
  const times: ClassTimings = { pool_s: 0, select_s: 0, refine_s: 0, write_s: 0 };
  const timed = <T>(key: keyof ClassTimings, work: () => T): T => {
    const t0 = performance.now();
    const out = work();
    times[key] += seconds(t0);
    return out;
  };
  const score = (latents: Tensor) =>
    timed("select_s", () =>
      scoreCandidates(scoreImages(models, latents, options), models.selector.config.numClasses, c.modelIndex),
    );
  const select = (view: Candidate[], latents: Tensor) =>
    timed("select_s", () =>
      selectCandidates(view, c.modelIndex, {
        strategy: options.select,
        ipc: options.ipc,
        fill: options.fill,
        autoIpcThreshold: options.autoIpcThreshold,
        rankBy: authors ? "max" : "class",
        random: randomSource(deriveSeed(seed, "select")),
        features: FEATURES[resolveStrategy(options.select, options.ipc, options.autoIpcThreshold)]?.(
          models,
          latents,
          options.batchSize,
        ),
        reference: extras.reference,
      }),
    );
  const refine = (latents: Tensor, candidates: readonly number[]) =>
    timed("refine_s", () => refineCandidates(ctx, latents, candidates));
  const rows = (t: Tensor, idx: readonly number[]) => takeRows(t, idx, options.device);

  // 2. pool
  const pool = timed("pool_s", () => samplePool(ctx, c.modelIndex, n));
  checkInterrupt();

  // 3. score: the selector's view of every candidate as sampled
  const cands = score(pool);
  let selection: Selection;
  let refined: Refined;
  /** With order refine-select: the selector's view of every refined candidate, which selection ranked. */
  let refinedPool: Candidate[] | undefined;
  if (options.order === "select-refine") {
    // 4. select
    selection = select(cands, pool);
    checkInterrupt();
    // 5-9. refine the selected
    const chosen = rows(pool, selection.selected);
    refined = refine(chosen, selection.selected);
    chosen.dispose();
  } else {
    // Table 11's reverse order: 5-9. refine the whole pool, then 3-4. score and select the refined candidates
    const all = refine(
      pool,
      Array.from({ length: n }, (_, i) => i),
    );
    checkInterrupt();
    refinedPool = score(all.latents);
    selection = select(refinedPool, all.latents);
    const kept = selection.selected;
    const pick = <T>(xs: readonly T[]) => kept.map((i) => xs[i]);
    refined = {
      latents: rows(all.latents, kept),
      lossBefore: pick(all.lossBefore),
      lossAfter: pick(all.lossAfter),
      noiseRows: all.noiseRows && pick(all.noiseRows),
    };
    all.latents.dispose();
  }

  return writeResult(ctx, c, layout, { pool, cands, selection, refined, refinedPool }, times);
}

/** Rows `idx` of `t`, as a new tensor. */
const takeRows = (t: Tensor, idx: readonly number[], device: string) =>
  keep(t.indexSelect(0, fromArray(BigInt64Array.from(idx, BigInt), [idx.length], { device })));

/** What Algorithm 1 made of a class: the pool, the selector's view of it, the selection and its refined latents. */
interface ClassResult {
  pool: Tensor;
  cands: Candidate[];
  selection: Selection;
  refined: Refined;
  /** With order refine-select: the selector's view of every refined candidate, which selection ranked. */
  refinedPool?: Candidate[];
}

/** Decodes a class's result and writes its images and record (the pool and latents are disposed). */
function writeResult(
  ctx: ClassContext,
  c: ClassSpec,
  layout: RunLayout,
  r: ClassResult,
  times: ClassTimings,
): ClassRecord {
  const { m, o, extras } = ctx;
  const { pool, cands, selection, refined, refinedPool } = r;
  const t0 = performance.now();
  const selected = takeRows(pool, selection.selected, o.device);
  const images = decodeLatents(m, refined.latents);
  const after = refinedPool
    ? selection.selected.map((i) => refinedPool[i])
    : scoreCandidates(scoreImages(m, refined.latents, o), m.selector.config.numClasses, c.modelIndex);
  const pre = o.savePreRefine ? decodeLatents(m, selected) : undefined;
  const record = writeClass(layout, c, o.numClasses, {
    images,
    preRefine: pre,
    latents: o.saveLatents ? { pool, selected, refined: refined.latents } : undefined,
    stream: extras.authors ? streamBytes(extras.authors.stream) : undefined,
    items: selection.selected.map((poolIndex, i) => ({
      poolIndex,
      prediction: cands[poolIndex].prediction,
      confidence: cands[poolIndex].confidence,
      el2n: cands[poolIndex].el2n,
      lossBefore: refined.lossBefore[i],
      lossAfter: refined.lossAfter[i],
      noiseRow: refined.noiseRows?.[i],
      refinedPrediction: after[i].prediction,
      refinedConfidence: after[i].confidence,
    })),
    pool: cands.map((x) => ({ prediction: x.prediction, confidence: x.confidence })),
    refinedPool: refinedPool?.map((x) => ({ prediction: x.prediction, confidence: x.confidence })),
    strategy: selection.strategy,
    filled: selection.filled,
    condition: { kind: o.condition, label: ctx.condLabel },
    // write_s covers decoding and scoring the final images; the file writes follow.
    timings: { ...times, write_s: seconds(t0) },
    worker: extras.worker,
  });
  for (const t of [pool, selected, refined.latents, images, ...(pre ? [pre] : [])]) t.dispose();
  return record;
}

/** The candidates' features that a strategy compares (selector features or pixels); the others need none. */
const FEATURES: Partial<
  Record<Strategy, (m: LoadedModels, latents: Tensor, batchSize: number) => { data: Float32Array; dim: number }>
> = {
  representative: (m, latents, batchSize) => latentFeatures(m, latents, batchSize, (x) => imageFeatures(m, x)),
  mmd: (m, latents, batchSize) => latentFeatures(m, latents, batchSize, (x) => pixelFeatures(m, x)),
};

/** What the steps of one class share. */
interface ClassContext {
  m: LoadedModels;
  o: DistillOptions;
  /** The class's seed. */
  seed: number;
  /** The label c^ given to the model. */
  condLabel: number;
  diffusion: GaussianDiffusion;
  extras: ClassExtras;
  /** The progress label of the class. */
  stage: string;
}

/** Line 2: n samples of the class from the DiT with classifier-free guidance (scale o.cfg), as latents. */
function samplePool(ctx: ClassContext, modelIndex: number, n: number): Tensor {
  const { m, o, seed, diffusion, stage } = ctx;
  const { authors } = ctx.extras;
  const progress = stepsOf(ctx.extras);
  const dit = m.dit;
  const latentShape = [dit.config.inChannels, dit.config.inputSize, dit.config.inputSize];
  const model = dit.atPrecision(o.device, o.precision ?? "fp32", { guidedChannels: o.guidedChannels });
  // The released code samples the whole pool as one batch; its draws follow that batch.
  const poolBatch = authors ? n : o.batchSize;
  progress.stage(`${stage} [pool]`, Math.ceil(n / poolBatch) * o.steps);
  return keep(
    sample(diffusion, model, new Array<number>(n).fill(modelIndex), latentShape, {
      cfgScale: o.cfg,
      guidanceInterval: o.cfgInterval,
      nullClass: dit.config.numClasses,
      generator: authors?.stream ?? new Generator(deriveSeed(seed, "pool")),
      batchSize: poolBatch,
      device: o.device,
      onStep: () => progress.tick(),
    }),
  );
}

/**
 * Steps 5-9 for the given pool candidates (their latents in `latents`, in that order): one fixed noise per candidate
 * (line 5), then Adam on Eq. 4 under the condition c^, in batches. Without iterations: a copy of the latents.
 */
function refineCandidates(ctx: ClassContext, latents: Tensor, candidates: readonly number[]): Refined {
  const { m, o, seed, condLabel, diffusion } = ctx;
  const { authors } = ctx.extras;
  const progress = stepsOf(ctx.extras);
  const count = candidates.length;
  const nan = new Array<number>(count).fill(NaN);
  if (o.refineIters === 0) return { latents: keep(latents.clone()), lossBefore: nan, lossAfter: nan };
  const dit = m.dit;
  const model = dit.atPrecision(o.device, o.precision ?? "fp32");
  const latentShape = [dit.config.inChannels, dit.config.inputSize, dit.config.inputSize];
  const sched: RefineSchedule = { alphasCumprod: diffusion.tables.alphasCumprod, timestepMap: diffusion.timestepMap };
  const draws = { ...seededRefineDraws(seed, o.tMax), ...ctx.extras.draws };
  const noiseRows = authors ? candidates.map((p, i) => draws.noiseRow(i, p)) : undefined;
  const noise = keep(
    tidy(() =>
      authors
        ? bankRows(authors.bank, noiseRows!).to(o.device)
        : randnRows(
            candidates.map((i) => deriveSeed(seed, "refine-noise", i)),
            latentShape,
            o.device,
          ),
    ),
  );
  // Training mode's label dropout, decided up front in the order the released code's loop makes the draws (image
  // after image, each iteration one rand(1) < p), so that the refinement's batching cannot change them.
  const dropProb = dit.config.classDropoutProb;
  const labelDrops =
    o.refineTrainMode && dropProb > 0
      ? keep(
          tidy(() =>
            lt(
              rand([count, o.refineIters], {
                generator: authors?.stream ?? new Generator(deriveSeed(seed, "label-dropout")),
              }),
              dropProb,
            ).to(o.device),
          ),
        )
      : undefined;
  progress.stage(`${ctx.stage} [refine]`, o.refineIters * Math.ceil(count / o.batchSize));
  const parts: Tensor[] = [];
  const lossBefore: number[] = [];
  const lossAfter: number[] = [];
  try {
    for (let lo = 0; lo < count; lo += o.batchSize) {
      const b = Math.min(o.batchSize, count - lo);
      const r = refineLatents(
        (x, t, y, dropIds) => model.forward(x, t, y, { forceDropIds: dropIds }),
        sched,
        {
          latents: latents.narrow(0, lo, b),
          noise: noise.narrow(0, lo, b),
          labels: fromArray(
            BigInt64Array.from({ length: b }, () => BigInt(condLabel)),
            [b],
            { device: o.device },
          ),
          timesteps: candidates.slice(lo, lo + b).map((p, i) => draws.timesteps(lo + i, p)),
          labelDrops: labelDrops?.narrow(0, lo, b),
        },
        {
          iters: o.refineIters,
          lr: o.lr,
          lambda: o.lambda,
          norm: o.norm,
          tMax: o.tMax,
          maxNorm: o.maxNorm,
          timestepMode: o.timestepMode,
        },
        () => progress.tick(),
      );
      parts.push(r.latents);
      lossBefore.push(...r.lossBefore);
      lossAfter.push(...r.lossAfter);
    }
    return { latents: keep(tidy(() => cat(parts, 0))), lossBefore, lossAfter, noiseRows };
  } finally {
    for (const p of parts) p.dispose();
    noise.dispose();
    labelDrops?.dispose();
  }
}

/** The steps of a class reported to its progress line and its step callback. */
function stepsOf(extras: ClassExtras): { stage(label: string, total: number): void; tick(): void } {
  return {
    stage: (label, total) => extras.progress?.stage(label, total),
    tick: () => {
      extras.progress?.tick();
      extras.onStep?.();
    },
  };
}

function streamBytes(g: Generator): Uint8Array {
  const state = g.getState();
  const bytes = state.toBytes();
  state.dispose();
  return bytes;
}

function bankRows(bank: Tensor, rows: readonly number[]): Tensor {
  for (const r of rows)
    if (!(Number.isInteger(r) && r >= 0 && r < bank.size(0)))
      throw new Error(`noise bank row ${r} is not in 0..${bank.size(0) - 1}`);
  return bank.indexSelect(0, fromArray(BigInt64Array.from(rows, BigInt), [rows.length]));
}

/** One standard-normal draw of `shape` per seed, stacked: each row depends only on its own seed. */
function randnRows(seeds: readonly number[], shape: readonly number[], device: string): Tensor {
  return cat(
    seeds.map((s) => randn([1, ...shape], { generator: new Generator(s), device })),
    0,
  );
}
