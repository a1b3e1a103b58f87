"""PyTorch baseline of `npm run bench -- distill` (bench/distill.ts): the same two steps as plain torch code over
models_dit.DiT (DiT-S/2, random weights, 4x32x32 latents, batch 8), written to do what our code does.

  ddpm_cfg_step  forward_with_cfg on the doubled batch (16), p_mean_variance with learned-range variance as
                 improved-diffusion's GaussianDiffusion computes it (tables indexed per row, float32 [B,1,1,1]),
                 fresh noise, x_{t-1} = mean + exp(0.5 log var) noise; no_grad
  refine_step    per image t in 1..11, x_t = sqrt(abar) x + sqrt(1 - abar) eps, the model at the original timestep,
                 mse + 10 ||eps_pred - eps||_inf per image, backward of the sum to the latents (frozen model),
                 torch.optim.Adam(lr 6e-4) step, zero_grad
  dit_forward    the refinement step's model call alone under no_grad (batch 8, t = 1..8)
  *_bf16         the same with the model's call under torch.autocast("cpu", dtype=torch.bfloat16) and its output
                 taken back to float32, as an autocast user writes it
"""
import contextlib
import random

import numpy as np
import torch

from bench_common import freeze_, parse_args, randomise_, serve
from models_dit import DiT

BATCH, CFG_SCALE, STEP, T_MAX, LAMBDA = 8, 2.7, 25, 11, 10.0

parse_args()
torch.manual_seed(0)

# ---- the 50-step respacing of the linear 1000-step schedule (improved-diffusion's space_timesteps / respace) ----
betas = np.linspace(1e-4, 0.02, 1000, dtype=np.float64)
stride = 999 / 49
kept, cur = [], 0.0
for _ in range(50):
    kept.append(round(cur))
    cur += stride
abar_full = np.cumprod(1.0 - betas)
last, new_betas = 1.0, []
for i in kept:
    new_betas.append(1 - abar_full[i] / last)
    last = abar_full[i]
betas = np.array(new_betas)
abar = np.cumprod(1.0 - betas)
abar_prev = np.append(1.0, abar[:-1])
post_var = betas * (1.0 - abar_prev) / (1.0 - abar)
post_log_var_clipped = np.log(np.append(post_var[1], post_var[1:]))
coef1 = betas * np.sqrt(abar_prev) / (1.0 - abar)
coef2 = (1.0 - abar_prev) * np.sqrt(1.0 - betas) / (1.0 - abar)
sqrt_recip, sqrt_recipm1 = np.sqrt(1.0 / abar), np.sqrt(1.0 / abar - 1)
timestep_map = torch.tensor(kept)


def extract(arr, t, shape):
    res = torch.from_numpy(arr)[t].float()
    return res.reshape(-1, *([1] * (len(shape) - 1))).expand(shape)


model = DiT(input_size=32, patch_size=2, hidden_size=384, depth=12, num_heads=6).eval()
randomise_(model)
freeze_(model)
gen = torch.Generator().manual_seed(1)

labels = torch.randint(0, 1000, (BATCH,))
z = torch.randn(BATCH, 4, 32, 32)
x = torch.cat([z, z])
y_cfg = torch.cat([labels, torch.full_like(labels, 1000)])


def at(bf16):
    return torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()


def ddpm_cfg_step(bf16=False):
    with torch.no_grad():
        t = torch.full((2 * BATCH,), STEP, dtype=torch.long)
        with at(bf16):
            out = model.forward_with_cfg(x, timestep_map[t], y_cfg, CFG_SCALE)
        out = out.float()
        eps, v = torch.split(out, 4, dim=1)
        min_log, max_log = extract(post_log_var_clipped, t, x.shape), extract(np.log(betas), t, x.shape)
        frac = (v + 1) / 2
        log_var = frac * max_log + (1 - frac) * min_log
        x0 = extract(sqrt_recip, t, x.shape) * x - extract(sqrt_recipm1, t, x.shape) * eps
        mean = extract(coef1, t, x.shape) * x0 + extract(coef2, t, x.shape) * x
        noise = torch.randn(x.shape, generator=gen)
        return mean + torch.exp(0.5 * log_var) * noise


latents = torch.randn(BATCH, 4, 32, 32).requires_grad_(True)
noise = torch.randn(BATCH, 4, 32, 32)
opt = torch.optim.Adam([latents], lr=6e-4)
draws = [random.Random(100 + i) for i in range(BATCH)]


def refine_step(bf16=False):
    ts = [1 + int(r.random() * T_MAX) for r in draws]
    a = torch.tensor([abar[t] ** 0.5 for t in ts], dtype=torch.float32).reshape(BATCH, 1, 1, 1)
    b = torch.tensor([(1 - abar[t]) ** 0.5 for t in ts], dtype=torch.float32).reshape(BATCH, 1, 1, 1)
    xt = latents * a + noise * b
    with at(bf16):
        out = model(xt, timestep_map[ts], labels)
    diff = out.float()[:, :4] - noise
    loss = (diff * diff).mean(dim=[1, 2, 3]) + LAMBDA * torch.linalg.vector_norm(diff, float("inf"), dim=[1, 2, 3])
    loss.sum().backward()
    opt.step()
    opt.zero_grad(set_to_none=True)


def dit_forward(bf16=False):
    ts = [1 + (i % T_MAX) for i in range(BATCH)]
    with torch.no_grad(), at(bf16):
        model(latents.detach(), timestep_map[ts], labels).float()


serve({
    "ddpm_cfg_step": ddpm_cfg_step,
    "refine_step": refine_step,
    "dit_forward": dit_forward,
    "ddpm_cfg_step_bf16": lambda: ddpm_cfg_step(True),
    "refine_step_bf16": lambda: refine_step(True),
    "dit_forward_bf16": lambda: dit_forward(True),
})
