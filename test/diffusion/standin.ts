// The deterministic stand-in denoiser of tools/reference/diffusion_fixtures.py (the same two lines there).
import type { DiffusionModel } from "../../src/diffusion/index.js";
import * as torch from "../../src/torch/index.js";
import type { Tensor } from "../../src/torch/index.js";

/** eps = tanh(0.5 x + 0.001 t + 0.05 y), variance channels = 0.5 tanh(x) (or tanh(b x) with parameters). */
export function standinOutput(x: Tensor, t: Tensor, y: Tensor, a: Tensor | number = 0.5, b?: Tensor): Tensor {
  return torch.tidy(() => {
    const tt = t.to("float32").reshape(-1, 1, 1, 1);
    const yy = y.to("float32").reshape(-1, 1, 1, 1);
    const eps = torch.tanh(torch.add(torch.add(torch.mul(x, a), torch.mul(tt, 0.001)), torch.mul(yy, 0.05)));
    const v = b ? torch.tanh(torch.mul(x, b)) : torch.mul(torch.tanh(x), 0.5);
    return torch.cat([eps, v], 1);
  });
}

export const standin: DiffusionModel = { forward: (x, t, y) => standinOutput(x, t, y) };
