// The training objective of DiT / improved-diffusion: eps MSE (Ho et al.'s simple loss), plus, for a learned
// variance, the variational-bound term L_vlb in bits per dimension with the mean frozen (the "hybrid" loss of
// Nichol & Dhariwal, so the VB term trains only the variance channels).
import { InputError } from "../errors.js";
import * as torch from "../torch/index.js";
import type { Tensor } from "../torch/index.js";
import { type GaussianDiffusion, type Timesteps, timestepIndices } from "./gaussian.js";
import type { DiffusionModel } from "./model.js";

const LN2 = Math.log(2);

/** Mean over every dimension but the batch. */
export const meanFlat = (x: Tensor): Tensor =>
  torch.mean(
    x,
    Array.from({ length: x.ndim - 1 }, (_, i) => i + 1),
  );

/** KL(N(mean1, exp logvar1) || N(mean2, exp logvar2)) elementwise, in nats. */
export function normalKl(mean1: Tensor, logvar1: Tensor, mean2: Tensor, logvar2: Tensor): Tensor {
  return torch.tidy(() => {
    const sq = torch.square(torch.sub(mean1, mean2));
    const s = torch.add(torch.sub(torch.add(logvar2, -1), logvar1), torch.exp(torch.sub(logvar1, logvar2)));
    return torch.mul(torch.add(s, torch.mul(sq, torch.exp(torch.neg(logvar2)))), 0.5);
  });
}

/** The standard normal CDF by the tanh approximation the reference uses. */
export function approxStandardNormalCdf(x: Tensor): Tensor {
  return torch.tidy(() => {
    const inner = torch.mul(torch.add(x, torch.mul(torch.pow(x, 3), 0.044715)), Math.sqrt(2 / Math.PI));
    return torch.mul(torch.add(torch.tanh(inner), 1), 0.5);
  });
}

/**
 * Log-likelihood (nats) of x under a Gaussian discretised to 256 bins on [-1, 1] (bin width 2/255); the outer bins
 * extend to +-infinity. Probabilities are floored at 1e-12 before the log.
 */
export function discretizedGaussianLogLikelihood(x: Tensor, means: Tensor, logScales: Tensor): Tensor {
  return torch.tidy(() => {
    const centered = torch.sub(x, means);
    const invStdv = torch.exp(torch.neg(logScales));
    const cdfPlus = approxStandardNormalCdf(torch.mul(invStdv, torch.add(centered, 1 / 255)));
    const cdfMin = approxStandardNormalCdf(torch.mul(invStdv, torch.sub(centered, 1 / 255)));
    const logCdfPlus = torch.log(torch.clamp(cdfPlus, 1e-12));
    const logOneMinusCdfMin = torch.log(torch.clamp(torch.rsub(1, cdfMin), 1e-12));
    const logCdfDelta = torch.log(torch.clamp(torch.sub(cdfPlus, cdfMin), 1e-12));
    return torch.where(
      torch.lt(x, -0.999),
      logCdfPlus,
      torch.where(torch.gt(x, 0.999), logOneMinusCdfMin, logCdfDelta),
    );
  });
}

/**
 * One term of the variational bound per batch row, in bits per dimension: KL(q(x_{t-1}|x_t,x_0) || p(x_{t-1}|x_t))
 * for t > 0 and the discretised decoder NLL of x_0 at t = 0. `modelOutput` is the full [eps, v] output.
 */
export function vbTermsBpd(
  diffusion: GaussianDiffusion,
  modelOutput: Tensor,
  x0: Tensor,
  xt: Tensor,
  t: Timesteps,
): Tensor {
  return torch.tidy(() => {
    const tIdx = timestepIndices(t);
    const q = diffusion.qPosteriorMeanVariance(x0, xt, tIdx);
    const p = diffusion.pMeanVariance(modelOutput, xt, tIdx, { clipDenoised: false });
    const kl = torch.div(meanFlat(normalKl(q.mean, q.logVariance, p.mean, p.logVariance)), LN2);
    const nll = torch.div(
      meanFlat(torch.neg(discretizedGaussianLogLikelihood(x0, p.mean, torch.mul(p.logVariance, 0.5)))),
      LN2,
    );
    const first = torch.fromArray(
      Uint8Array.from(tIdx, (i) => (i === 0 ? 1 : 0)),
      [tIdx.length],
      { dtype: "bool", device: x0.device },
    );
    return torch.where(first, nll, kl);
  });
}

export interface TrainingLossOptions {
  /** Scale the VB term by numTimesteps/1000 (improved-diffusion's RESCALED_MSE; DiT's default is false). */
  rescaleVb?: boolean;
}

export interface TrainingLosses {
  /** Per batch row: mse + vb (or mse alone for a fixed variance). */
  loss: Tensor;
  mse: Tensor;
  vb?: Tensor;
  /** The noised input x_t the model saw, and its eps prediction (the first C output channels, not detached). */
  xt: Tensor;
  eps: Tensor;
}

/**
 * Losses for x_0 noised to steps t with `noise` (the model sees x_t, the original timesteps map[t] and labels y).
 * Mean the `loss` over the batch for a training step.
 */
export function trainingLosses(
  diffusion: GaussianDiffusion,
  model: DiffusionModel,
  x0: Tensor,
  t: Timesteps,
  noise: Tensor,
  y: Tensor,
  options: TrainingLossOptions = {},
): TrainingLosses {
  if (noise.ndim !== x0.ndim || noise.shape.some((d, i) => d !== x0.size(i)))
    throw new InputError(`noise [${noise.shape}] does not match x_0 [${x0.shape}]`);
  return torch.tidy(() => {
    const tIdx = timestepIndices(t);
    const xt = diffusion.qSample(x0, tIdx, noise);
    const out = model.forward(xt, diffusion.modelTimesteps(tIdx, x0.device), y);
    const C = x0.size(1);
    let eps = out;
    let vb: Tensor | undefined;
    if (diffusion.variance === "learned-range") {
      if (out.size(1) !== 2 * C)
        throw new InputError(`a learned-variance model must output ${2 * C} channels, got ${out.size(1)}`);
      const [e, v] = torch.split(out, C, 1);
      eps = e;
      // The VB term sees the eps channels detached: it trains the variance only.
      vb = vbTermsBpd(diffusion, torch.cat([torch.detach(e), v], 1), x0, xt, tIdx);
      if (options.rescaleVb) vb = torch.mul(vb, diffusion.numTimesteps / 1000);
    }
    const mse = meanFlat(torch.square(torch.sub(noise, eps)));
    return vb ? { loss: torch.add(mse, vb), mse, vb, xt, eps } : { loss: mse, mse, xt, eps };
  });
}
