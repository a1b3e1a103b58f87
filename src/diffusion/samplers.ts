// Sampling loops over a (respaced) Gaussian diffusion: DDPM ancestral sampling and DDIM, with classifier-free
// guidance as DiT's sample.py runs it.
//
// Random draws, in order (so that a PyTorch loop drawing from one generator in the same order gives the same
// numbers): the requested labels are cut into batches of at most `batchSize`; for each batch, first its initial
// noise randn([n, C, H, W]) (unless `noise` is given), then at every step, after the model call, one
// randn(x.shape) of the loop's batch — with guidance that batch is the doubled [cond; null] batch of 2n rows,
// as in DiT's sample.py, where x = cat([z, z]). A step draws its noise even when it does not use it (the last
// DDPM step, DDIM with eta = 0), as the reference does.
import { InputError } from "../errors.js";
import * as torch from "../torch/index.js";
import type { Generator, Tensor } from "../torch/index.js";
import { extract, type GaussianDiffusion } from "./gaussian.js";
import { cfgForward, type DiffusionModel } from "./model.js";

export interface StepProgress {
  /** Batch index and count. */
  batch: number;
  batches: number;
  /** Steps done in this batch (1..steps) and the total per batch. */
  step: number;
  steps: number;
  /** Rows of images in this batch. */
  size: number;
}

export interface SampleOptions {
  /** "ddpm" (ancestral, default) or "ddim". */
  sampler?: "ddpm" | "ddim";
  /** DDIM stochasticity (0 = deterministic). */
  eta?: number;
  /** Classifier-free guidance scale; guidance runs only when > 1 (as DiT's sample.py). */
  cfgScale?: number;
  /** The null label (= num_classes for DiT); needed when cfgScale > 1. */
  nullClass?: number;
  /**
   * Guide only the steps whose ORIGINAL timestep lies in [lo, hi] (0..999); the other steps take the conditional
   * output alone (scale 1). Guidance at high noise is what narrows the samples' layout (Kynkaanniemi et al. 2024,
   * "Applying guidance in a limited interval"). Default: every step. The guided batch and its random draws do not
   * change, so the interval only changes the scale of each step.
   */
  guidanceInterval?: readonly [number, number];
  /** Channels guided when the model has no forwardWithCfg (default 3, the reference's; see cfgForward). */
  guidedChannels?: number;
  /** Source of all random draws (default: the default generator). */
  generator?: Generator;
  /** Most images per model batch (before doubling for guidance); default: all at once. */
  batchSize?: number;
  /** Initial noise [n, C, H, W] instead of drawing it (e.g. a fixed noise bank). */
  noise?: Tensor;
  /** Clip predicted x_0 to [-1, 1] (default false: latents are not bounded). */
  clipDenoised?: boolean;
  /** Device of the latents (default: the noise's, else cpu). Draws are made on the CPU generator and moved. */
  device?: string;
  onStep?: (p: StepProgress) => void;
}

/** The model's output at the respaced step `step` (t: its original timesteps). */
type Denoise = (x: Tensor, t: Tensor, step: number) => Tensor;

/**
 * Samples latents [n, C, H, W] for `labels` (n = labels.length) by running the reverse process of `diffusion`
 * (usually respaced, e.g. GaussianDiffusion.create({ respacing: 50 })). Runs without gradients; each step frees
 * what it made, so memory stays flat over the loop.
 */
export function sample(
  diffusion: GaussianDiffusion,
  model: DiffusionModel,
  labels: readonly number[],
  latentShape: readonly number[],
  options: SampleOptions = {},
): Tensor {
  const n = labels.length;
  const cfg = (options.cfgScale ?? 1) > 1;
  if (n === 0) throw new InputError("sample: no labels given");
  if (cfg && options.nullClass === undefined)
    throw new InputError("sample: classifier-free guidance needs the null class label (nullClass)");
  if (
    options.noise &&
    (options.noise.size(0) !== n ||
      options.noise.ndim !== latentShape.length + 1 ||
      latentShape.some((d, i) => options.noise!.size(i + 1) !== d))
  ) {
    throw new InputError(`sample: noise [${options.noise.shape}] does not match [${n}, ${latentShape}]`);
  }
  if (options.sampler !== undefined && options.sampler !== "ddpm" && options.sampler !== "ddim")
    throw new InputError(`unknown sampler '${options.sampler}' (ddpm, ddim)`);
  const interval = options.guidanceInterval;
  if (interval && !(interval[0] >= 0 && interval[0] <= interval[1]))
    throw new InputError(`sample: guidance interval [${interval}] must be [lo, hi] with 0 <= lo <= hi`);
  const scale = options.cfgScale ?? 1;
  const scaleAt = (step: number) => {
    const t = diffusion.timestepMap[step];
    return !interval || (t >= interval[0] && t <= interval[1]) ? scale : 1;
  };
  const batchSize = options.batchSize ?? n;
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new InputError(`sample: batch size must be a positive integer, got ${batchSize}`);
  const device = options.device ?? options.noise?.device ?? "cpu";
  const batches = Math.ceil(n / batchSize);
  return torch.noGrad(() => {
    const outs: Tensor[] = [];
    try {
      for (let b = 0; b < batches; b++) {
        const lo = b * batchSize;
        const rows = labels.slice(lo, lo + batchSize);
        outs.push(
          torch.tidy(() => {
            const z = options.noise
              ? torch.narrow(options.noise, 0, lo, rows.length).to(device)
              : torch.randn([rows.length, ...latentShape], { generator: options.generator, device });
            const yRows = cfg ? [...rows, ...rows.map(() => options.nullClass!)] : rows;
            const y = torch.fromArray(
              BigInt64Array.from(yRows, (v) => BigInt(v)),
              [yRows.length],
              { device },
            );
            const denoise: Denoise = cfg
              ? (x, t, step) =>
                  model.forwardWithCfg
                    ? model.forwardWithCfg(x, t, y, scaleAt(step))
                    : cfgForward(model, x, t, y, scaleAt(step), options.guidedChannels)
              : (x, t) => model.forward(x, t, y);
            const x = reverseProcess(diffusion, denoise, cfg ? torch.cat([z, z], 0) : z, options, (step) =>
              options.onStep?.({ batch: b, batches, step, steps: diffusion.numTimesteps, size: rows.length }),
            );
            // The null half of a guided batch only fed the unconditional branch.
            return cfg ? torch.narrow(x, 0, 0, rows.length).contiguous() : x;
          }),
        );
      }
      return outs.length === 1 ? outs.pop()! : torch.cat(outs, 0);
    } finally {
      outs.forEach((t) => t.dispose());
    }
  });
}

/** Runs steps T-1 .. 0 from x_T; returns x_0. The initial x is left to its owner. */
function reverseProcess(
  diffusion: GaussianDiffusion,
  denoise: Denoise,
  xT: Tensor,
  o: SampleOptions,
  onStep: (step: number) => void,
): Tensor {
  const eta = o.eta ?? 0;
  const ddim = o.sampler === "ddim";
  const B = xT.size(0);
  let x = xT;
  for (let i = diffusion.numTimesteps - 1; i >= 0; i--) {
    const t = new Array<number>(B).fill(i);
    const next = torch.tidy(() => {
      const out = denoise(x, diffusion.modelTimesteps(t, x.device), i);
      const p = diffusion.pMeanVariance(out, x, t, { clipDenoised: o.clipDenoised });
      const noise = torch.randn(x.shape, { generator: o.generator, dtype: x.dtype, device: x.device });
      if (i === 0) return ddim ? ddimMean(diffusion, x, t, p.predXstart, eta).mean : p.mean;
      if (!ddim) return torch.add(p.mean, torch.mul(torch.exp(torch.mul(p.logVariance, 0.5)), noise));
      const { mean, sigma } = ddimMean(diffusion, x, t, p.predXstart, eta);
      return torch.add(mean, torch.mul(sigma, noise));
    });
    if (x !== xT) x.dispose();
    x = next;
    onStep(diffusion.numTimesteps - i);
  }
  return x;
}

/**
 * DDIM (Song et al. eq. 12): eps re-derived from the predicted x_0, sigma = eta sqrt((1-abar')/(1-abar))
 * sqrt(1 - abar/abar'), mean = x_0 sqrt(abar') + sqrt(1 - abar' - sigma^2) eps, with abar' the previous step's.
 */
function ddimMean(
  diffusion: GaussianDiffusion,
  x: Tensor,
  t: number[],
  predXstart: Tensor,
  eta: number,
): { mean: Tensor; sigma: Tensor } {
  const eps = diffusion.predictEpsFromXstart(x, t, predXstart);
  const ab = extract(diffusion.tables.alphasCumprod, t, x);
  const abPrev = extract(diffusion.tables.alphasCumprodPrev, t, x);
  const sigma = torch.mul(
    torch.mul(torch.sqrt(torch.div(torch.rsub(1, abPrev), torch.rsub(1, ab))), eta),
    torch.sqrt(torch.rsub(1, torch.div(ab, abPrev))),
  );
  const mean = torch.add(
    torch.mul(predXstart, torch.sqrt(abPrev)),
    torch.mul(torch.sqrt(torch.sub(torch.rsub(1, abPrev), torch.square(sigma))), eps),
  );
  return { mean, sigma };
}
