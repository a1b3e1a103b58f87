// Stage 2 of Algorithm 1, condition-aware latent optimisation (paper Eq. 4): each selected latent x is moved towards
// where the frozen diffusion model predicts its noise well under the condition c^:
//
//   min_x  E_t [ || eps_theta(x_t, c^, t) - eps ||_2^2 (mean)  +  lambda * || eps_theta(x_t, c^, t) - eps ||_p ]
//   x_t = sqrt(abar_t) x + sqrt(1 - abar_t) eps,   eps fixed per image,   t uniform in {1, ..., T^}
//   optionally subject to || x' - x ||_inf <= eta (projection after each step).
//
// t indexes the S-step respaced schedule; the model sees the original timestep map[t] (or t itself, as the released
// code does, with timestepMode "index"). The released code also refines in training mode, where the DiT replaces the
// label by the null class with probability 0.1 at every call; those decisions come in as `labelDrops`, drawn by the
// caller, so that the model stays deterministic here. Each image's loss is computed on its own and the losses are summed, so an
// image's trajectory is the same whatever batch it is optimised in (the model treats samples independently and
// Adam is elementwise).
import { originalTimesteps, qSample } from "../diffusion/gaussian.js";
import { Adam, grad, type Tensor, fromArray, keep, mean, noGrad, norm, sub, tidy } from "../torch/index.js";

export const NORMS = ["none", "1", "2", "inf"] as const;
export type NormKind = (typeof NORMS)[number];

/**
 * The model's noise prediction: output channels [0, C) are eps (a learned-sigma model has 2C channels). `dropIds`
 * ([n] bool), when given, replaces the labels of its true rows by the null class (the DiT's label dropout).
 */
export type NoiseModel = (x: Tensor, t: Tensor, y: Tensor, dropIds?: Tensor) => Tensor;

/** The diffusion process refinement runs under (its q_sample and timestep map are diffusion/gaussian.ts's). */
export interface RefineSchedule {
  /** abar of the respaced schedule (float64), index 0..S-1. */
  alphasCumprod: Float64Array;
  /** Original timestep of each respaced index. */
  timestepMap: readonly number[];
}

export interface RefineOptions {
  iters: number;
  lr: number;
  lambda: number;
  norm: NormKind;
  /** T^: t is drawn uniformly from 1..tMax (inclusive), indices of the respaced schedule. */
  tMax: number;
  /** eta of the optional max-norm bound ||x' - x||_inf <= eta. */
  maxNorm?: number;
  /** "original": the model receives map[t] (paper); "index": it receives t itself (released code). */
  timestepMode: "original" | "index";
}

export interface RefineBatch {
  /** [n, C, H, W] latents to refine (not modified). */
  latents: Tensor;
  /** [n, C, H, W] the fixed noise of each image. */
  noise: Tensor;
  /** [n] int64 condition labels given to the model (the class, or the null label). */
  labels: Tensor;
  /** Per image, the source of its t, one index in 1..T^ per iteration. */
  timesteps: readonly (() => number)[];
  /** [n, iters] bool: whether iteration i sees the null label instead of `labels` (training-mode label dropout). */
  labelDrops?: Tensor;
}

export interface RefineResult {
  latents: Tensor;
  /** Per image, the objective averaged over every t in 1..T^ with its fixed noise, before and after. */
  lossBefore: number[];
  lossAfter: number[];
}

const P: Record<Exclude<NormKind, "none">, number> = { "1": 1, "2": 2, inf: Infinity };

/** Per-image objective for noise predictions `eps` of targets `noise`: [n] = mse + lambda * ||eps - noise||_p. */
export function perImageObjective(eps: Tensor, noise: Tensor, lambda: number, p: NormKind): Tensor {
  const diff = sub(eps, noise);
  const mse = mean(diff.mul(diff), [1, 2, 3]);
  if (p === "none" || lambda === 0) return mse;
  return mse.add(norm(diff, P[p], [1, 2, 3]), lambda);
}

function modelTimesteps(
  sched: RefineSchedule,
  ts: readonly number[],
  mode: RefineOptions["timestepMode"],
  device: string,
): Tensor {
  return mode === "original"
    ? originalTimesteps(sched.timestepMap, ts, device)
    : fromArray(BigInt64Array.from(ts, BigInt), [ts.length], { device });
}

function objectiveAt(
  model: NoiseModel,
  x: Tensor,
  b: RefineBatch,
  sched: RefineSchedule,
  ts: readonly number[],
  o: RefineOptions,
  dropIds?: Tensor,
): Tensor {
  const c = x.size(1);
  const out = model(
    qSample(sched.alphasCumprod, x, ts, b.noise),
    modelTimesteps(sched, ts, o.timestepMode, x.device),
    b.labels,
    dropIds,
  );
  return perImageObjective(out.narrow(1, 0, c), b.noise, o.lambda, o.norm);
}

/** The objective of each image averaged over every t in 1..T^ (deterministic, for before/after reports). */
export function sweepLoss(
  model: NoiseModel,
  x: Tensor,
  b: RefineBatch,
  sched: RefineSchedule,
  options: RefineOptions,
): number[] {
  const n = x.size(0);
  const total = new Float64Array(n);
  noGrad(() => {
    for (let t = 1; t <= options.tMax; t++) {
      const l = tidy(() => objectiveAt(model, x, b, sched, new Array<number>(n).fill(t), options).toFloat64Array());
      for (let i = 0; i < n; i++) total[i] += l[i] / options.tMax;
    }
  });
  return Array.from(total);
}

export function refineLatents(
  model: NoiseModel,
  sched: RefineSchedule,
  b: RefineBatch,
  options: RefineOptions,
  onIter?: (i: number) => void,
): RefineResult {
  const n = b.latents.size(0);
  if (b.timesteps.length !== n) throw new Error(`refine: ${b.timesteps.length} t sources for ${n} latents`);
  if (b.labelDrops && (b.labelDrops.size(0) !== n || b.labelDrops.size(1) < options.iters)) {
    throw new Error(
      `refine: label drops [${b.labelDrops.shape}] do not cover ${n} latents x ${options.iters} iterations`,
    );
  }
  if (!(options.tMax >= 1 && options.tMax < sched.alphasCumprod.length)) {
    throw new Error(
      `refine: T^ = ${options.tMax} must lie in 1..${sched.alphasCumprod.length - 1} (steps of the respaced schedule)`,
    );
  }
  const lossBefore = sweepLoss(model, b.latents, b, sched, options);
  const x = keep(b.latents.detach().clone().requiresGrad_(true));
  const opt = new Adam([x], { lr: options.lr });
  for (let it = 0; it < options.iters; it++) {
    const ts = b.timesteps.map((next) => {
      const t = next();
      if (!(Number.isInteger(t) && t >= 1 && t <= options.tMax))
        throw new Error(`refine: drawn t = ${t} is not in 1..${options.tMax}`);
      return t;
    });
    // Gradients to the latents only: the model's weights stay frozen (no work or memory spent on their gradients).
    tidy(() => {
      const drops = b.labelDrops?.select(1, it);
      const [g] = grad(objectiveAt(model, x, b, sched, ts, options, drops).sum(), x);
      x.grad = g;
    });
    opt.step();
    opt.zeroGrad();
    if (options.maxNorm !== undefined) {
      const eta = options.maxNorm;
      noGrad(() => tidy(() => x.copy_(b.latents.add(sub(x, b.latents).clamp(-eta, eta)))));
    }
    onIter?.(it + 1);
  }
  const latents = keep(x.detach().clone());
  x.dispose();
  opt.dispose();
  const lossAfter = sweepLoss(model, latents, b, sched, options);
  return { latents, lossBefore, lossAfter };
}
