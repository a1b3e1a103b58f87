"""Diffusion parity with a real (small, random) DiT: p_mean_variance of its output and a 50-step CFG sampling loop.

Uses our reference DiT (models_dit.py) with the weights of test/fixtures/models/dit_small.pt and our reference
diffusion (diffusion_fixtures.py); the loop draws its noise in the order src/diffusion/samplers.ts documents.
Writes test/fixtures/diffusion/dit_loop.safetensors. Run with /usr/bin/python3.
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import fixture_path, save_json, save_safetensors  # noqa: E402
from diffusion_fixtures import Diffusion  # noqa: E402
from models_dit import SMALL, DiT  # noqa: E402


def main():
    torch.set_num_threads(1)
    model = DiT(**SMALL)
    model.load_state_dict(torch.load(fixture_path("models", "dit_small.pt")))
    model.eval()
    null = SMALL["num_classes"]
    shape = [SMALL["in_channels"], SMALL["input_size"], SMALL["input_size"]]
    diff = Diffusion(spacing=50)
    out = {}
    with torch.no_grad():
        gen = torch.Generator().manual_seed(11)
        xt = torch.randn([2, *shape], generator=gen)
        t = torch.tensor([10, 37], dtype=torch.int64)
        y = torch.tensor([3, 8], dtype=torch.int64)
        o = model(xt, diff.model_t(t), y)
        mean, _, logvar, x0 = diff.p_mean_var(o, xt, t)
        out.update({"pmv_xt": xt, "pmv_mean": mean, "pmv_logvar": logvar, "pmv_x0": x0})

        # DiT sample.py: z, x = cat([z, z]), y = cat([labels, null]); per step the model, then one randn of x's shape.
        labels, scale = [1, 7], 4.0
        gen = torch.Generator().manual_seed(5)
        z = torch.randn([len(labels), *shape], generator=gen)
        x = torch.cat([z, z])
        yy = torch.tensor(labels + [null] * len(labels), dtype=torch.int64)
        for i in reversed(range(diff.S)):
            ti = torch.full((x.shape[0],), i, dtype=torch.int64)
            o = model.forward_with_cfg(x, diff.model_t(ti), yy, scale)
            mean, _, logvar, _ = diff.p_mean_var(o, x, ti)
            noise = torch.randn(x.shape, generator=gen)
            x = mean + (0.0 if i == 0 else 1.0) * torch.exp(0.5 * logvar) * noise
        out["loop"] = x[: len(labels)]
    save_safetensors(fixture_path("diffusion", "dit_loop.safetensors"), out)
    save_json(fixture_path("diffusion", "dit_loop.json"), {"labels": labels, "scale": scale, "seed": 5, "steps": 50, "pmv_t": [10, 37], "pmv_y": [3, 8]})


if __name__ == "__main__":
    main()
