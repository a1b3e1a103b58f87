// Gaussian diffusion (Ho et al. 2020; Nichol & Dhariwal 2021 for the learned variance range), the maths DiT samples
// and trains with: q(x_t | x_0), the posterior q(x_{t-1} | x_t, x_0) and the model's p(x_{t-1} | x_t).
// Tables are float64 (schedule.ts); a table entry becomes float32 when it meets a tensor, as the reference's
// _extract_into_tensor does (arr[t] -> float32, shaped [B, 1, ..., 1]).
import { InputError } from "../errors.js";
import * as torch from "../torch/index.js";
import type { Tensor } from "../torch/index.js";
import { type DiffusionTables, diffusionTables, linearBetas, respacedBetas, spaceTimesteps } from "./schedule.js";

/**
 * How the model's output sets the variance of p(x_{t-1} | x_t):
 * - learned-range: the output has 2C channels [eps, v]; log var = f log(beta_t) + (1 - f) log(posterior var), f = (v+1)/2;
 * - fixed-small: the posterior variance; fixed-large: beta_t. Both take a C-channel eps output.
 */
export type VarianceType = "learned-range" | "fixed-small" | "fixed-large";

/** Timestep indices of this (possibly respaced) process, one per batch row: an int64 tensor or plain numbers. */
export type Timesteps = Tensor | readonly number[];

export interface DiffusionOptions {
  /** Steps of the trained process (default 1000, linear schedule). */
  numTimesteps?: number;
  /** Keep only some steps (see spaceTimesteps): a step count, section counts, or "ddimN". Default: all. */
  respacing?: number | readonly number[] | string;
  /** Default learned-range (DiT's learn_sigma). */
  variance?: VarianceType;
}

export interface PosteriorMeanVariance {
  mean: Tensor;
  variance: Tensor;
  logVariance: Tensor;
}

export interface PMeanVariance extends PosteriorMeanVariance {
  /** The model's prediction of x_0 (clipped to [-1, 1] only when asked). */
  predXstart: Tensor;
}

/** Timesteps as plain numbers (reads a tensor back once). */
export const timestepIndices = (t: Timesteps): number[] => (Array.isArray(t) ? [...t] : (t as Tensor).toNumbers());

/** f(arr[t]) per batch row as float32 [B, 1, ..., 1] on like's device, ready to broadcast against `like`. */
export function extract(arr: Float64Array, t: Timesteps, like: Tensor, f: (v: number) => number = (v) => v): Tensor {
  const idx = timestepIndices(t);
  if (idx.length !== like.size(0)) throw new Error(`${idx.length} timesteps for a batch of ${like.size(0)}`);
  const vals = Float32Array.from(idx, (i) => {
    if (!Number.isInteger(i) || i < 0 || i >= arr.length)
      throw new InputError(`timestep ${i} is outside [0, ${arr.length})`);
    return f(arr[i]);
  });
  return torch.fromArray(vals, [idx.length, ...like.shape.slice(1).map(() => 1)], { device: like.device });
}

/**
 * q(x_t | x_0) drawn with the given noise on a schedule's abar table: x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) noise,
 * one t per batch row. GaussianDiffusion.qSample is this on its own table; latent refinement (distill/refine.ts)
 * calls it on the table of the process it refines under.
 */
export function qSample(alphasCumprod: Float64Array, x0: Tensor, t: Timesteps, noise: Tensor): Tensor {
  return torch.tidy(() =>
    torch.add(
      torch.mul(extract(alphasCumprod, t, x0, Math.sqrt), x0),
      torch.mul(
        extract(alphasCumprod, t, x0, (abar) => Math.sqrt(1 - abar)),
        noise,
      ),
    ),
  );
}

/** The original timesteps map[t] (int64, on `device`) that a model receives for steps t of a respaced process. */
export function originalTimesteps(timestepMap: readonly number[], t: Timesteps, device = "cpu"): Tensor {
  const idx = timestepIndices(t).map((i) => {
    const m = timestepMap[i];
    if (m === undefined) throw new InputError(`timestep ${i} is outside [0, ${timestepMap.length})`);
    return BigInt(m);
  });
  return torch.fromArray(BigInt64Array.from(idx), [idx.length], { device });
}

export class GaussianDiffusion {
  readonly tables: DiffusionTables;
  /** Original timestep of each step of this process: what the model is called with (identity when not respaced). */
  readonly timestepMap: readonly number[];
  /** Steps of the process the model was trained on. */
  readonly originalNumTimesteps: number;

  constructor(
    betas: Float64Array,
    readonly variance: VarianceType = "learned-range",
    timestepMap?: readonly number[],
    originalNumTimesteps?: number,
  ) {
    this.tables = diffusionTables(betas);
    this.timestepMap = timestepMap ?? Array.from(betas, (_, i) => i);
    this.originalNumTimesteps = originalNumTimesteps ?? betas.length;
    if (this.timestepMap.length !== betas.length)
      throw new Error(`timestep map has ${this.timestepMap.length} entries for ${betas.length} steps`);
  }

  /** The linear schedule of `numTimesteps` steps, respaced if asked (DiT's create_diffusion). */
  static create(o: DiffusionOptions = {}): GaussianDiffusion {
    const T = o.numTimesteps ?? 1000;
    const betas = linearBetas(T);
    if (o.respacing === undefined || o.respacing === "") return new GaussianDiffusion(betas, o.variance);
    const kept = spaceTimesteps(T, o.respacing);
    return new GaussianDiffusion(respacedBetas(betas, kept), o.variance, kept, T);
  }

  get numTimesteps(): number {
    return this.tables.betas.length;
  }

  /** The original timesteps map[t] (int64, on `device`) that the model receives for steps t of this process. */
  modelTimesteps(t: Timesteps, device = "cpu"): Tensor {
    return originalTimesteps(this.timestepMap, t, device);
  }

  // ---------------------------------------------------------------------------------------------------------------
  // forward process
  // ---------------------------------------------------------------------------------------------------------------

  /** x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) noise. */
  qSample(x0: Tensor, t: Timesteps, noise: Tensor): Tensor {
    return qSample(this.tables.alphasCumprod, x0, t, noise);
  }

  /** q(x_{t-1} | x_t, x_0): mean coef1 x_0 + coef2 x_t, and the (clipped log) posterior variance. */
  qPosteriorMeanVariance(x0: Tensor, xt: Tensor, t: Timesteps): PosteriorMeanVariance {
    return torch.tidy(() => ({
      mean: torch.add(
        torch.mul(extract(this.tables.posteriorMeanCoef1, t, xt), x0),
        torch.mul(extract(this.tables.posteriorMeanCoef2, t, xt), xt),
      ),
      variance: torch.expandAs(extract(this.tables.posteriorVariance, t, xt), xt),
      logVariance: torch.expandAs(extract(this.tables.posteriorLogVarianceClipped, t, xt), xt),
    }));
  }

  // ---------------------------------------------------------------------------------------------------------------
  // reverse process
  // ---------------------------------------------------------------------------------------------------------------

  /** x_0 = sqrt(1/abar_t) x_t - sqrt(1/abar_t - 1) eps. */
  predictXstartFromEps(xt: Tensor, t: Timesteps, eps: Tensor): Tensor {
    return torch.tidy(() =>
      torch.sub(
        torch.mul(extract(this.tables.sqrtRecipAlphasCumprod, t, xt), xt),
        torch.mul(extract(this.tables.sqrtRecipm1AlphasCumprod, t, xt), eps),
      ),
    );
  }

  /** eps = (sqrt(1/abar_t) x_t - x_0) / sqrt(1/abar_t - 1). */
  predictEpsFromXstart(xt: Tensor, t: Timesteps, x0: Tensor): Tensor {
    return torch.tidy(() =>
      torch.div(
        torch.sub(torch.mul(extract(this.tables.sqrtRecipAlphasCumprod, t, xt), xt), x0),
        extract(this.tables.sqrtRecipm1AlphasCumprod, t, xt),
      ),
    );
  }

  /**
   * p(x_{t-1} | x_t) from a model output (eps, plus the variance channels v for learned-range): the mean is the
   * posterior mean at the predicted x_0. No clipping of x_0 unless `clipDenoised` (latents are not in [-1, 1]).
   */
  pMeanVariance(modelOutput: Tensor, xt: Tensor, t: Timesteps, o: { clipDenoised?: boolean } = {}): PMeanVariance {
    const C = xt.size(1);
    const want = this.variance === "learned-range" ? 2 * C : C;
    if (modelOutput.ndim !== xt.ndim || modelOutput.size(0) !== xt.size(0) || modelOutput.size(1) !== want) {
      throw new InputError(
        `model output [${modelOutput.shape}] does not fit x_t [${xt.shape}] with ${this.variance} variance (needs ${want} channels)`,
      );
    }
    return torch.tidy(() => {
      let eps = modelOutput;
      let variance: Tensor;
      let logVariance: Tensor;
      if (this.variance === "learned-range") {
        const [e, v] = torch.split(modelOutput, C, 1);
        eps = e;
        const minLog = extract(this.tables.posteriorLogVarianceClipped, t, xt);
        const maxLog = extract(this.tables.logBetas, t, xt);
        // v in [-1, 1] spans [posterior variance, beta] in log space.
        const frac = torch.div(torch.add(v, 1), 2);
        logVariance = torch.add(torch.mul(frac, maxLog), torch.mul(torch.rsub(1, frac), minLog));
        variance = torch.exp(logVariance);
      } else {
        const small = this.variance === "fixed-small";
        const tv = small ? this.tables.posteriorVariance : this.tables.fixedLargeVariance;
        const tlv = small ? this.tables.posteriorLogVarianceClipped : this.tables.fixedLargeLogVariance;
        variance = torch.expandAs(extract(tv, t, xt), xt);
        logVariance = torch.expandAs(extract(tlv, t, xt), xt);
      }
      let predXstart = this.predictXstartFromEps(xt, t, eps);
      if (o.clipDenoised) predXstart = torch.clamp(predXstart, -1, 1);
      const { mean } = this.qPosteriorMeanVariance(predXstart, xt, t);
      return { mean, variance, logVariance, predXstart };
    });
  }
}
