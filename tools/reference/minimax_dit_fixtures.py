"""Minimax DiT fixtures: a small DiT with DiffFit scales (gammas) in the first half of its blocks, as the Minimax
fine-tuning release lays them out (docs/minimax.md), saved the way its training script saves a checkpoint.

Writes under test/fixtures/models/:
  minimax_small.pt               torch.save({"model", "ema", "opt", "args"}): two different state dicts with gammas at
                                 random values (not ones), an AdamW state over the trainable subset, an
                                 argparse.Namespace
  minimax_small_io.safetensors   fixed inputs and the outputs of both entries: forward (eval) and forward_with_cfg
  minimax_small.json             the config

Run with Debian's torch: /usr/bin/python3 tools/reference/minimax_dit_fixtures.py
"""
import argparse

import torch

from common import fixture_path, save_json, save_safetensors
from models_dit import DiT

# Small enough for a fixture of a few hundred KB with two state dicts; gammas in blocks 0-1 of 4.
CONFIG = dict(input_size=8, patch_size=2, in_channels=4, hidden_size=16, depth=4, num_heads=2, mlp_ratio=4.0,
              class_dropout_prob=0.1, num_classes=10, learn_sigma=True)
USE_GAMMA = [True, True, False, False]


def randomize(model, gen):
    """Random values everywhere (the zero init of adaLN and the final layer would hide most of the network); gammas
    spread around 1 with both signs of deviation, so a model that ignored or misplaced one would be far off."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if not p.requires_grad:
                continue
            if "gamma" in name:
                p.copy_(1 + 0.5 * torch.randn(p.shape, generator=gen))
            else:
                p.add_(0.1 * torch.randn(p.shape, generator=gen))


def trainable(name):
    return any(s in name for s in ("bias", "norm", "gamma", "y_embed"))


def main():
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(17)
    model = DiT(**CONFIG, use_gamma=USE_GAMMA)
    randomize(model, gen)
    ema = DiT(**CONFIG, use_gamma=USE_GAMMA)
    ema.load_state_dict(model.state_dict())
    randomize(ema, gen)

    n, null = 4, CONFIG["num_classes"]
    x = torch.randn(n, 4, 8, 8, generator=gen)
    t = torch.tensor([999, 0, 500, 17], dtype=torch.int64)
    y = torch.tensor([3, 7, 0, 9], dtype=torch.int64)
    y_cfg = torch.tensor([3, 7, null, null], dtype=torch.int64)
    t_cfg = torch.tensor([250, 40, 250, 40], dtype=torch.int64)
    io = {"x": x, "t": t, "y": y, "y_cfg": y_cfg, "t_cfg": t_cfg}
    with torch.no_grad():
        for name, m in (("ema", ema), ("model", model)):
            m.eval()
            io[f"{name}_out"] = m(x, t, y)
            io[f"{name}_cfg"] = m.forward_with_cfg(x, t_cfg, y_cfg, 4.0, guided=3)
        # The gammas must matter: the same weights with every gamma at 1 give clearly different outputs.
        plain = DiT(**CONFIG, use_gamma=USE_GAMMA).eval()
        plain.load_state_dict({k: (torch.ones_like(v) if "gamma" in k else v) for k, v in ema.state_dict().items()})
        out_plain = plain(x, t, y)
        change = ((out_plain - io["ema_out"]).norm() / io["ema_out"].norm()).item()
        assert change > 0.05, change

    # An optimiser state like the release's (AdamW over the trainable subset, after one step).
    opt = torch.optim.AdamW([p for k, p in model.named_parameters() if trainable(k)], lr=1e-3, weight_decay=0)
    model.train()
    model(x, t, y).square().mean().backward()
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    opt.step()
    # Restore the weights the outputs were computed with: only the optimiser's moments are of interest.
    model.load_state_dict(state)
    args = argparse.Namespace(model="DiT-tiny", image_size=32, lambda_pos=0.002, lambda_neg=0.008, memory_size=64)
    ckpt = {"model": model.state_dict(), "ema": ema.state_dict(), "opt": opt.state_dict(), "args": args}
    torch.save(ckpt, fixture_path("models", "minimax_small.pt"))
    save_safetensors(fixture_path("models", "minimax_small_io.safetensors"), io)
    save_json(fixture_path("models", "minimax_small.json"), {**CONFIG, "use_gamma": USE_GAMMA})
    print(f"wrote Minimax DiT fixtures; gammas change the ema output by {change:.2f} (relative)")


if __name__ == "__main__":
    main()
