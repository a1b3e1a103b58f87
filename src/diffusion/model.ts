// What the diffusion code needs from a denoiser (DiT implements it), and classifier-free guidance, the one
// implementation of it (DiT.forwardWithCfg is this function with the DiT's checks).
import * as torch from "../torch/index.js";
import type { Tensor } from "../torch/index.js";

/**
 * A class-conditional denoiser such as DiT. `t` holds ORIGINAL timesteps (int64, [B]) — a respaced sampler maps its
 * step indices first — and `y` class labels (int64, [B]); the output has C channels (eps) or 2C (eps, variance).
 * `forwardWithCfg`, when present, is used for guided sampling (DiT's forward_with_cfg: x and y are the doubled
 * batch [cond; null]); otherwise guidance is computed by `cfgForward` below from `forward`.
 */
export interface DiffusionModel {
  forward(x: Tensor, t: Tensor, y: Tensor): Tensor;
  forwardWithCfg?(x: Tensor, t: Tensor, y: Tensor, scale: number): Tensor;
}

/**
 * Classifier-free guidance with DiT's forward_with_cfg semantics. The batch is [cond rows; null rows]: only the
 * first half of x is used (fed twice, with y's conditional then null labels); on the first `guidedChannels`
 * output channels the guided eps = uncond + scale (cond - uncond) is returned for both halves, and the remaining
 * channels (the rest of eps, the variance channels) are the model's own outputs for each half. The reference
 * guides 3 channels (DiT's 4-channel latents); pass C to guide every eps channel.
 */
export function cfgForward<T = Tensor>(
  model: { forward(x: Tensor, t: T, y: Tensor): Tensor },
  x: Tensor,
  t: T,
  y: Tensor,
  scale: number,
  guidedChannels = 3,
): Tensor {
  return torch.tidy(() => {
    const n = x.size(0);
    if (n % 2 !== 0) throw new Error(`classifier-free guidance needs an even batch [cond; null], got ${n} rows`);
    const half = torch.narrow(x, 0, 0, n / 2);
    const out = model.forward(torch.cat([half, half], 0), t, y);
    const g = Math.min(guidedChannels, out.size(1));
    const [cond, uncond] = torch.chunk(torch.narrow(out, 1, 0, g), 2, 0);
    const guided = torch.add(uncond, torch.sub(cond, uncond), scale);
    const parts = [torch.cat([guided, guided], 0)];
    if (g < out.size(1)) parts.push(torch.narrow(out, 1, g, out.size(1) - g));
    return torch.cat(parts, 1);
  });
}
