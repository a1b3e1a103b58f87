// Noise schedules as plain float64 numbers: the linear beta schedule, timestep respacing and every table the Gaussian
// diffusion reads (improved-diffusion / DiT semantics). Nothing here touches tensors; gaussian.ts converts a table
// entry to float32 only where it multiplies a tensor, as the reference does.
import { InputError } from "../errors.js";

/** numpy.linspace(start, stop, num) bit for bit: i*step + start, and the last value set to stop exactly. */
function linspace(start: number, stop: number, num: number): Float64Array {
  const out = new Float64Array(num);
  const step = (stop - start) / (num - 1);
  for (let i = 0; i < num; i++) out[i] = i * step + start;
  if (num > 1) out[num - 1] = stop;
  return out;
}

/**
 * Ho et al.'s linear schedule extended to any number of steps: betas from 1e-4 to 0.02 for T = 1000, both ends
 * scaled by 1000/T otherwise, so that the total noise stays about the same.
 */
export function linearBetas(numTimesteps = 1000): Float64Array {
  if (!Number.isInteger(numTimesteps) || numTimesteps < 2)
    throw new InputError(`diffusion steps must be an integer >= 2, got ${numTimesteps}`);
  const scale = 1000 / numTimesteps;
  return linspace(scale * 0.0001, scale * 0.02, numTimesteps);
}

/** Python 3's round(): halves go to the even neighbour (round(166.5) = 166, which Math.round gets wrong). */
export function roundHalfEven(v: number): number {
  const f = Math.floor(v);
  const d = v - f;
  if (d !== 0.5) return d < 0.5 ? f : f + 1;
  return f % 2 === 0 ? f : f + 1;
}

/**
 * The timesteps of the original process that a respaced process keeps, ascending (improved-diffusion's
 * space_timesteps). `spacing` is a step count S, a list of per-section counts (the process is cut into equal
 * sections, each strided to its count), or a string: "50", "10,15,20", or "ddimN" for the DDIM paper's integer
 * stride. Within a section of `size` steps the kept offsets are round(cur) with cur advanced by (size-1)/(count-1)
 * in float64 (accumulated, not multiplied, and rounded half to even, as Python does), so the first and last step
 * of each section are always kept: for S = 50 over 1000 steps that is 0, 20, 41, 61, ..., 999.
 */
export function spaceTimesteps(numTimesteps: number, spacing: number | readonly number[] | string): number[] {
  let counts: number[];
  if (typeof spacing === "string") {
    const s = spacing.trim();
    if (s.startsWith("ddim")) return ddimTimesteps(numTimesteps, parseCount(s.slice(4), spacing));
    counts = s.split(",").map((p) => parseCount(p, spacing));
  } else {
    counts = typeof spacing === "number" ? [spacing] : [...spacing];
  }
  if (counts.length === 0) throw new InputError("timestep respacing needs at least one section");
  const sizePer = Math.floor(numTimesteps / counts.length);
  const extra = numTimesteps % counts.length;
  const kept = new Set<number>();
  let start = 0;
  counts.forEach((count, i) => {
    if (!Number.isInteger(count) || count < 1)
      throw new InputError(`timestep respacing: section counts must be positive integers, got ${count}`);
    const size = sizePer + (i < extra ? 1 : 0);
    if (size < count)
      throw new InputError(`timestep respacing: cannot divide a section of ${size} steps into ${count}`);
    const stride = count <= 1 ? 1 : (size - 1) / (count - 1);
    let cur = 0;
    for (let k = 0; k < count; k++) {
      kept.add(start + roundHalfEven(cur));
      cur += stride;
    }
    start += size;
  });
  return [...kept].sort((a, b) => a - b);
}

function parseCount(text: string, spacing: string): number {
  const n = Number(text.trim());
  if (text.trim() === "" || !Number.isInteger(n) || n < 1)
    throw new InputError(`timestep respacing '${spacing}': '${text}' is not a positive integer`);
  return n;
}

/** The DDIM paper's striding: 0, k, 2k, ... with the smallest integer stride k giving exactly `count` steps. */
function ddimTimesteps(numTimesteps: number, count: number): number[] {
  for (let k = 1; k < numTimesteps; k++) {
    if (Math.ceil(numTimesteps / k) === count) return Array.from({ length: count }, (_, i) => i * k);
  }
  throw new InputError(
    `timestep respacing 'ddim${count}': no integer stride gives exactly ${count} of ${numTimesteps} steps`,
  );
}

/**
 * Betas of the process that keeps only `timesteps` of a process with `betas`: each new beta is
 * 1 - abar[t_i] / abar[t_{i-1}] (abar before the first kept step being 1), so the kept steps have the original
 * cumulative products.
 */
export function respacedBetas(betas: Float64Array, timesteps: readonly number[]): Float64Array {
  const abar = cumprodOneMinus(betas);
  const out = new Float64Array(timesteps.length);
  let last = 1;
  timesteps.forEach((t, i) => {
    if (!Number.isInteger(t) || t < 0 || t >= betas.length || (i > 0 && t <= timesteps[i - 1])) {
      throw new InputError(
        `respaced timesteps must be increasing integers in [0, ${betas.length}), got ${t} at position ${i}`,
      );
    }
    out[i] = 1 - abar[t] / last;
    last = abar[t];
  });
  return out;
}

function cumprodOneMinus(betas: Float64Array): Float64Array {
  const out = new Float64Array(betas.length);
  let p = 1;
  betas.forEach((b, i) => (out[i] = p *= 1 - b));
  return out;
}

/** Every per-step constant of a Gaussian diffusion with the given betas (all float64, one entry per step). */
export interface DiffusionTables {
  betas: Float64Array;
  logBetas: Float64Array;
  alphasCumprod: Float64Array;
  alphasCumprodPrev: Float64Array;
  alphasCumprodNext: Float64Array;
  sqrtAlphasCumprod: Float64Array;
  sqrtOneMinusAlphasCumprod: Float64Array;
  logOneMinusAlphasCumprod: Float64Array;
  sqrtRecipAlphasCumprod: Float64Array;
  sqrtRecipm1AlphasCumprod: Float64Array;
  /** Variance of q(x_{t-1} | x_t, x_0): beta_t (1 - abar_{t-1}) / (1 - abar_t); 0 at t = 0. */
  posteriorVariance: Float64Array;
  /** Its log, with the t = 0 entry (log 0) replaced by the t = 1 entry. */
  posteriorLogVarianceClipped: Float64Array;
  /** Mean of q(x_{t-1} | x_t, x_0) = coef1 * x_0 + coef2 * x_t. */
  posteriorMeanCoef1: Float64Array;
  posteriorMeanCoef2: Float64Array;
  /** The "fixed large" variance: beta_t, with the t = 0 entry replaced by the posterior variance at t = 1. */
  fixedLargeVariance: Float64Array;
  fixedLargeLogVariance: Float64Array;
}

/** The tables, computed in the reference's order of float64 operations. */
export function diffusionTables(betas: Float64Array): DiffusionTables {
  const T = betas.length;
  if (T < 2) throw new InputError(`a diffusion needs at least 2 steps, got ${T}`);
  betas.forEach((b, i) => {
    if (!(b > 0 && b <= 1)) throw new InputError(`beta ${i} = ${b} is outside (0, 1]`);
  });
  const map = (f: (i: number) => number) => Float64Array.from({ length: T }, (_, i) => f(i));
  const ac = cumprodOneMinus(betas);
  const acPrev = map((i) => (i === 0 ? 1 : ac[i - 1]));
  const posteriorVariance = map((i) => (betas[i] * (1 - acPrev[i])) / (1 - ac[i]));
  const fixedLargeVariance = map((i) => (i === 0 ? posteriorVariance[1] : betas[i]));
  return {
    betas: Float64Array.from(betas),
    logBetas: map((i) => Math.log(betas[i])),
    alphasCumprod: ac,
    alphasCumprodPrev: acPrev,
    alphasCumprodNext: map((i) => (i === T - 1 ? 0 : ac[i + 1])),
    sqrtAlphasCumprod: map((i) => Math.sqrt(ac[i])),
    sqrtOneMinusAlphasCumprod: map((i) => Math.sqrt(1 - ac[i])),
    logOneMinusAlphasCumprod: map((i) => Math.log(1 - ac[i])),
    sqrtRecipAlphasCumprod: map((i) => Math.sqrt(1 / ac[i])),
    sqrtRecipm1AlphasCumprod: map((i) => Math.sqrt(1 / ac[i] - 1)),
    posteriorVariance,
    posteriorLogVarianceClipped: map((i) => Math.log(posteriorVariance[i === 0 ? 1 : i])),
    posteriorMeanCoef1: map((i) => (betas[i] * Math.sqrt(acPrev[i])) / (1 - ac[i])),
    posteriorMeanCoef2: map((i) => ((1 - acPrev[i]) * Math.sqrt(1 - betas[i])) / (1 - ac[i])),
    fixedLargeVariance,
    fixedLargeLogVariance: map((i) => Math.log(fixedLargeVariance[i])),
  };
}
