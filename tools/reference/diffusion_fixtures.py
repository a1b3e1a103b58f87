"""Fixtures for src/diffusion: our own float64/float32 Python rendering of the Gaussian diffusion that DiT samples and
trains with (improved-diffusion semantics), written from the facts below, not from that code.

Facts (read from improved-diffusion / DiT's diffusion package):
- linear betas: numpy linspace(scale*1e-4, scale*0.02, T) in float64 with scale = 1000/T;
- tables in float64 (alphas_cumprod, _prev with 1 prepended, _next with 0 appended, sqrt / log forms, posterior
  variance beta*(1-abar_prev)/(1-abar), its log with entry 0 replaced by entry 1, posterior mean coefficients
  beta*sqrt(abar_prev)/(1-abar) and (1-abar_prev)*sqrt(alpha)/(1-abar));
- a table entry meets a tensor as float32: arr[t] -> float32 -> [B, 1, ..., 1];
- respacing (space_timesteps): per section of `size` steps, round(cur) with cur += (size-1)/(count-1) accumulated in
  float64 and Python's round (half to even); "ddimN": range(0, T, k) for the smallest k giving N steps; new betas
  1 - abar[t_i]/abar[t_{i-1}] (abar before the first = 1), and the model is called with the original t_i;
- learned range: out = [eps, v]; frac = (v+1)/2; log var = frac*log(beta) + (1-frac)*posterior log var clipped;
  fixed-large variance = [posterior_var[1], betas[1:]]; x0 = sqrt(1/abar) x_t - sqrt(1/abar - 1) eps; no clipping;
- p_sample: model call, then noise = randn_like(x) (drawn at every step), x = mean + [t != 0] exp(0.5 log var) noise;
- ddim_sample: eps re-derived from pred x0, sigma = eta sqrt((1-abar')/(1-abar)) sqrt(1 - abar/abar'), noise drawn
  at every step, x = pred_x0 sqrt(abar') + sqrt(1 - abar' - sigma^2) eps + [t != 0] sigma noise;
- CFG (DiT sample.py / forward_with_cfg): z = randn(n, ...); x = cat([z, z]); y = cat([labels, null]); the model runs
  on cat([x[:n], x[:n]]) and the first 3 output channels become uncond + s (cond - uncond) for both halves;
- hybrid loss: mse = mean_flat((noise - eps)^2); vb with the eps channels detached: KL(q posterior || p) / ln 2
  (mean over non-batch dims), decoder NLL (discretised Gaussian, tanh CDF approximation, bins of 1/255, floors
  1e-12, edges at +-0.999) / ln 2 at t == 0; times T/1000 for RESCALED_MSE.

Run: /usr/bin/python3 tools/reference/diffusion_fixtures.py
"""
import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import fixture_path, save_json, save_safetensors  # noqa: E402

F32 = torch.float32


# ------------------------------------------------------------------------------------------------------------------
# schedule (float64)
# ------------------------------------------------------------------------------------------------------------------

def linear_betas(T):
    s = 1000 / T
    return np.linspace(s * 0.0001, s * 0.02, T, dtype=np.float64)


def kept_steps(T, spacing):
    if isinstance(spacing, str) and spacing.startswith("ddim"):
        want = int(spacing[4:])
        k = next(k for k in range(1, T) if len(range(0, T, k)) == want)
        return list(range(0, T, k))
    counts = [int(c) for c in spacing.split(",")] if isinstance(spacing, str) else [spacing]
    base, extra = divmod(T, len(counts))
    steps, start = [], 0
    for i, count in enumerate(counts):
        size = base + (1 if i < extra else 0)
        stride = 1 if count <= 1 else (size - 1) / (count - 1)
        pos = 0.0
        for _ in range(count):
            steps.append(start + round(pos))
            pos += stride
        start += size
    return sorted(set(steps))


def tables(betas):
    ab = np.cumprod(1.0 - betas)
    ab_prev = np.concatenate([[1.0], ab[:-1]])
    pv = betas * (1.0 - ab_prev) / (1.0 - ab)
    large = np.concatenate([[pv[1]], betas[1:]])
    return {
        "betas": betas,
        "logBetas": np.log(betas),
        "alphasCumprod": ab,
        "alphasCumprodPrev": ab_prev,
        "alphasCumprodNext": np.concatenate([ab[1:], [0.0]]),
        "sqrtAlphasCumprod": np.sqrt(ab),
        "sqrtOneMinusAlphasCumprod": np.sqrt(1.0 - ab),
        "logOneMinusAlphasCumprod": np.log(1.0 - ab),
        "sqrtRecipAlphasCumprod": np.sqrt(1.0 / ab),
        "sqrtRecipm1AlphasCumprod": np.sqrt(1.0 / ab - 1),
        "posteriorVariance": pv,
        "posteriorLogVarianceClipped": np.log(np.concatenate([[pv[1]], pv[1:]])),
        "posteriorMeanCoef1": betas * np.sqrt(ab_prev) / (1.0 - ab),
        "posteriorMeanCoef2": (1.0 - ab_prev) * np.sqrt(1.0 - betas) / (1.0 - ab),
        "fixedLargeVariance": large,
        "fixedLargeLogVariance": np.log(large),
    }


class Diffusion:
    def __init__(self, T=1000, spacing=None, variance="learned-range"):
        betas = linear_betas(T)
        self.map = list(range(T))
        if spacing is not None:
            self.map = kept_steps(T, spacing)
            ab = np.cumprod(1.0 - betas)
            prev = np.concatenate([[1.0], ab[self.map][:-1]])
            betas = 1.0 - ab[self.map] / prev
        self.tab = tables(betas)
        self.S = len(betas)
        self.variance = variance

    def at(self, name, t, like):
        """Table entry per row as float32 [B, 1, ..., 1]."""
        v = torch.from_numpy(self.tab[name])[t].to(F32)
        return v.reshape(-1, *([1] * (like.dim() - 1)))

    def model_t(self, t):
        return torch.tensor(self.map, dtype=torch.int64)[t]

    def q_sample(self, x0, t, noise):
        return self.at("sqrtAlphasCumprod", t, x0) * x0 + self.at("sqrtOneMinusAlphasCumprod", t, x0) * noise

    def posterior(self, x0, xt, t):
        mean = self.at("posteriorMeanCoef1", t, xt) * x0 + self.at("posteriorMeanCoef2", t, xt) * xt
        return mean, self.at("posteriorVariance", t, xt).expand_as(xt), self.at("posteriorLogVarianceClipped", t, xt).expand_as(xt)

    def x0_from_eps(self, xt, t, eps):
        return self.at("sqrtRecipAlphasCumprod", t, xt) * xt - self.at("sqrtRecipm1AlphasCumprod", t, xt) * eps

    def eps_from_x0(self, xt, t, x0):
        return (self.at("sqrtRecipAlphasCumprod", t, xt) * xt - x0) / self.at("sqrtRecipm1AlphasCumprod", t, xt)

    def p_mean_var(self, out, xt, t, clip=False):
        C = xt.shape[1]
        if self.variance == "learned-range":
            eps, v = out[:, :C], out[:, C:]
            lo = self.at("posteriorLogVarianceClipped", t, xt)
            hi = self.at("logBetas", t, xt)
            f = (v + 1) / 2
            logvar = f * hi + (1 - f) * lo
            var = torch.exp(logvar)
        else:
            eps = out
            names = ("posteriorVariance", "posteriorLogVarianceClipped") if self.variance == "fixed-small" else ("fixedLargeVariance", "fixedLargeLogVariance")
            var, logvar = (self.at(n, t, xt).expand_as(xt) for n in names)
        x0 = self.x0_from_eps(xt, t, eps)
        if clip:
            x0 = x0.clamp(-1, 1)
        mean = self.posterior(x0, xt, t)[0]
        return mean, var, logvar, x0


# ------------------------------------------------------------------------------------------------------------------
# models, guidance, loops
# ------------------------------------------------------------------------------------------------------------------

def standin(x, t, y):
    """A deterministic stand-in denoiser (same two lines in the TS tests): eps depends on x, t (original) and y."""
    tt = t.to(F32).reshape(-1, 1, 1, 1)
    yy = y.to(F32).reshape(-1, 1, 1, 1)
    return torch.cat([torch.tanh(x * 0.5 + tt * 0.001 + yy * 0.05), torch.tanh(x) * 0.5], 1)


def guided(model, x, t, y, scale, channels=3):
    n = x.shape[0] // 2
    out = model(torch.cat([x[:n], x[:n]]), t, y)
    cond, uncond = out[:n, :channels], out[n:, :channels]
    g = uncond + (cond - uncond) * scale
    return torch.cat([torch.cat([g, g]), out[:, channels:]], 1)


def sample(diff, labels, shape, gen, batch, scale=1.0, null=None, sampler="ddpm", eta=0.0):
    results = []
    for lo in range(0, len(labels), batch):
        rows = labels[lo:lo + batch]
        z = torch.randn([len(rows), *shape], generator=gen)
        cfg = scale > 1
        x = torch.cat([z, z]) if cfg else z
        y = torch.tensor(rows + [null] * len(rows) if cfg else rows, dtype=torch.int64)
        for i in reversed(range(diff.S)):
            t = torch.full((x.shape[0],), i, dtype=torch.int64)
            out = guided(standin, x, diff.model_t(t), y, scale) if cfg else standin(x, diff.model_t(t), y)
            mean, _, logvar, x0 = diff.p_mean_var(out, x, t)
            noise = torch.randn(x.shape, generator=gen)
            keep = 0.0 if i == 0 else 1.0
            if sampler == "ddpm":
                x = mean + keep * torch.exp(0.5 * logvar) * noise
            else:
                eps = diff.eps_from_x0(x, t, x0)
                ab, abp = diff.at("alphasCumprod", t, x), diff.at("alphasCumprodPrev", t, x)
                sigma = eta * torch.sqrt((1 - abp) / (1 - ab)) * torch.sqrt(1 - ab / abp)
                x = x0 * torch.sqrt(abp) + torch.sqrt(1 - abp - sigma ** 2) * eps + keep * sigma * noise
        results.append(x[:len(rows)])
    return torch.cat(results)


# ------------------------------------------------------------------------------------------------------------------
# hybrid training loss
# ------------------------------------------------------------------------------------------------------------------

def cdf(x):
    return 0.5 * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def decoder_loglik(x, mean, log_scale):
    c = x - mean
    inv = torch.exp(-log_scale)
    up, down = cdf(inv * (c + 1 / 255)), cdf(inv * (c - 1 / 255))
    return torch.where(x < -0.999, torch.log(up.clamp(min=1e-12)),
                       torch.where(x > 0.999, torch.log((1 - down).clamp(min=1e-12)), torch.log((up - down).clamp(min=1e-12))))


def kl(m1, lv1, m2, lv2):
    return 0.5 * (-1.0 + lv2 - lv1 + torch.exp(lv1 - lv2) + (m1 - m2) ** 2 * torch.exp(-lv2))


def flat_mean(x):
    return x.mean(dim=list(range(1, x.dim())))


def losses(diff, model, x0, t, noise, y, rescale=False):
    xt = diff.q_sample(x0, t, noise)
    out = model(xt, diff.model_t(t), y)
    C = x0.shape[1]
    eps = out[:, :C]
    frozen = torch.cat([eps.detach(), out[:, C:]], 1)
    qm, _, qlv = diff.posterior(x0, xt, t)
    pm, _, plv, _ = diff.p_mean_var(frozen, xt, t)
    vb = torch.where(t == 0, flat_mean(-decoder_loglik(x0, pm, 0.5 * plv)) / math.log(2.0), flat_mean(kl(qm, qlv, pm, plv)) / math.log(2.0))
    if rescale:
        vb = vb * (diff.S / 1000)
    mse = flat_mean((noise - eps) ** 2)
    return mse + vb, mse, vb


# ------------------------------------------------------------------------------------------------------------------

def main():
    out = {}
    spacings = {"50": 50, "25": 25, "10": 10, "ddim50": "ddim50", "ddim25": "ddim25"}
    maps = {k: kept_steps(1000, v) for k, v in spacings.items()}
    maps["T300_10,15,20"] = kept_steps(300, "10,15,20")
    maps["T1000_3,2"] = kept_steps(1000, "3,2")
    save_json(fixture_path("diffusion", "timestep_maps.json"), maps)

    for key in ("50", "25", "10"):
        d = Diffusion(1000, spacings[key])
        out.update({f"S{key}.{k}": torch.from_numpy(v) for k, v in d.tab.items()})
    full = Diffusion(1000)
    out.update({f"T1000.{k}": torch.from_numpy(v) for k, v in full.tab.items()})
    out["T250.betas"] = torch.from_numpy(linear_betas(250))
    save_safetensors(fixture_path("diffusion", "tables.safetensors"), out)

    # q_sample, posterior and p_mean_variance on the 50-step respaced process.
    g = torch.Generator().manual_seed(1234)
    d = Diffusion(1000, 50)
    x0 = torch.randn(3, 4, 4, 4, generator=g)
    noise = torch.randn(3, 4, 4, 4, generator=g)
    xt_in = torch.randn(3, 4, 4, 4, generator=g) * 2
    model_out = torch.cat([torch.randn(3, 4, 4, 4, generator=g), torch.rand(3, 4, 4, 4, generator=g) * 2 - 1], 1)
    t = torch.tensor([0, 17, 49])
    ops = {"x0": x0, "noise": noise, "xt": xt_in, "model_out": model_out, "t": t, "q_sample": d.q_sample(x0, t, noise)}
    pm, pv, plv = d.posterior(x0, xt_in, t)
    ops.update({"posterior.mean": pm, "posterior.variance": pv, "posterior.log_variance": plv})
    for var in ("learned-range", "fixed-small", "fixed-large"):
        dv = Diffusion(1000, 50, var)
        o = model_out if var == "learned-range" else model_out[:, :4].contiguous()
        for clip in (False, True):
            m, v, lv, px = dv.p_mean_var(o, xt_in, t, clip)
            tag = f"{var}{'.clip' if clip else ''}"
            ops.update({f"{tag}.mean": m, f"{tag}.variance": v, f"{tag}.log_variance": lv, f"{tag}.pred_xstart": px})
    save_safetensors(fixture_path("diffusion", "gaussian_ops.safetensors"), ops)

    # Hybrid loss on the 1000-step process, through a stand-in model with two scalar parameters (gradients show the
    # eps channels get only the MSE and the variance channels only the VB term).
    g = torch.Generator().manual_seed(99)
    x0 = (torch.rand(4, 4, 4, 4, generator=g) * 2.4 - 1.2)  # some values beyond +-0.999: every decoder branch
    noise = torch.randn(4, 4, 4, 4, generator=g)
    t = torch.tensor([0, 1, 500, 999])
    y = torch.tensor([3, 0, 9, 10])
    loss_fx = {"x0": x0, "noise": noise, "t": t, "y": y}
    for T, rescale in ((1000, False), (500, True)):
        a = torch.tensor(0.7, requires_grad=True)
        b = torch.tensor(0.3, requires_grad=True)

        def model(x, tm, yy):
            tt = tm.to(F32).reshape(-1, 1, 1, 1)
            yv = yy.to(F32).reshape(-1, 1, 1, 1)
            return torch.cat([torch.tanh(x * a + tt * 0.001 + yv * 0.05), torch.tanh(x * b)], 1)

        loss, mse, vb = losses(Diffusion(T), model, x0, t if T == 1000 else t // 2, noise, y, rescale)
        loss.mean().backward()
        loss_fx.update({f"T{T}.loss": loss.detach(), f"T{T}.mse": mse.detach(), f"T{T}.vb": vb.detach(),
                        f"T{T}.grad_a": a.grad.reshape(1), f"T{T}.grad_b": b.grad.reshape(1)})
    save_safetensors(fixture_path("diffusion", "losses.safetensors"), loss_fx)

    # Sampling loops with the stand-in model.
    labels = [1, 7, 3]
    shape = [4, 4, 4]
    runs = {
        "ddpm50_cfg": dict(S=50, seed=0, batch=2, scale=2.7, null=10, sampler="ddpm"),
        "ddpm10_nocfg": dict(S=10, seed=5, batch=3, scale=1.0, null=None, sampler="ddpm"),
        "ddim25_eta0_cfg": dict(S=25, seed=1, batch=2, scale=2.7, null=10, sampler="ddim", eta=0.0),
        "ddim25_eta1_cfg": dict(S=25, seed=2, batch=1, scale=2.7, null=10, sampler="ddim", eta=1.0),
    }
    loops = {}
    for name, r in runs.items():
        gen = torch.Generator().manual_seed(r["seed"])
        with torch.no_grad():
            loops[name] = sample(Diffusion(1000, r["S"]), labels, shape, gen, r["batch"], r["scale"], r["null"], r["sampler"], r.get("eta", 0.0))
    save_safetensors(fixture_path("diffusion", "loops.safetensors"), loops)
    save_json(fixture_path("diffusion", "loops.json"), {"labels": labels, "shape": shape, "runs": runs})
    print("wrote test/fixtures/diffusion/*")


if __name__ == "__main__":
    main()
