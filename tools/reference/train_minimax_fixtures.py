"""Minimax fine-tuning parity: two training steps of the Minimax recipe (docs/minimax.md) on a small random DiT with
gammas, written in plain PyTorch from the recipe's description: DiffFit trainable subset, the DiT loss (eps MSE + VB)
with fixed t, noise and label-dropout mask, the predicted x_0 as pseudo embeddings, the two terms against per-class
FIFO memories updated after the loss, AdamW (lr 1e-3, weight decay 0), EMA of every parameter.

Two cases share the model and the inputs: "paper" (lambda_pos 0.002, lambda_neg 0.008) and "strong" (0.5, 2.0), so
that a wrong gradient of the terms shows in the optimiser state. The memory size is 3, so the FIFO overflows.

Writes test/fixtures/train/minimax_steps.safetensors (initial weights "init.<key>", inputs "s<k>.<x0|noise|t|y|drop>",
and after step k of each case: "<case>.s<k>.<loss|mse|vb|pos|neg>", trainable parameters "param.<key>", their AdamW
moments "exp_avg.<key>" / "exp_avg_sq.<key>", memories "mem.<real|pseudo>.<class>"; after the last step the EMA of
every parameter "ema.<key>") and minimax_steps.json (config and settings).
Run with Debian's torch: /usr/bin/python3 tools/reference/make_all.py train_minimax
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import fixture_path, save_json, save_safetensors  # noqa: E402
from diffusion_fixtures import Diffusion, losses  # noqa: E402
from models_dit import SMALL, DiT  # noqa: E402

TRAINABLE = ("bias", "norm", "gamma", "y_embed")
CASES = {"paper": (0.002, 0.008), "strong": (0.5, 2.0)}
MEMORY = 3
LR = 1e-3
EMA_DECAY = 0.9
# The small DiT of models_dit.py at half its width (a smaller fixture); gammas in its first block.
CONFIG = {**SMALL, "hidden_size": 32, "num_heads": 2}
GAMMA_BLOCKS = CONFIG["depth"] // 2

# Labels per step: classes 3 and 5 overflow the memory, class 7 is new in step 2 (skipped, but counted in n_classes).
LABELS = [[3, 3, 5, 1, 3, 5, 3, 1], [3, 5, 7, 3, 1, 1, 5, 3]]
TIMESTEPS = [[999, 0, 500, 17, 250, 1, 730, 64], [3, 998, 120, 640, 455, 0, 871, 33]]
DROPS = [[0, 1, 0, 0, 0, 0, 1, 0], [1, 0, 0, 0, 0, 1, 0, 0]]


def cosine(a, b):
    return (a @ b.T) / (a.norm(dim=-1)[:, None] * b.norm(dim=-1)[None, :])


def make_model():
    torch.manual_seed(0)
    model = DiT(**CONFIG, use_gamma=[i < GAMMA_BLOCKS for i in range(CONFIG["depth"])])
    with torch.no_grad():
        for name, p in model.named_parameters():
            if not p.requires_grad:
                continue
            # Random values everywhere (zero-initialised layers would make outputs trivial); gammas away from 1.
            p.copy_(1 + 0.2 * torch.randn_like(p) if "gamma" in name else p + 0.02 * torch.randn_like(p))
    return model


def train_step(model, ema, opt, diff, memory, lambdas, x0, y, t, noise, drop):
    seen = {}

    def forward(xt, tt, yy):
        out = model(xt, tt, yy, force_drop_ids=drop)
        seen.update(xt=xt, out=out)
        return out

    loss, mse, vb = losses(diff, forward, x0, t, noise, y)
    loss = loss.mean()
    pseudo = diff.x0_from_eps(seen["xt"], t, seen["out"][:, : x0.shape[1]])
    pos = torch.tensor(0.0)
    neg = torch.tensor(0.0)
    classes = sorted(set(y.tolist()))
    for c in classes:
        rows = y == c
        real_mem, pseudo_mem = memory.setdefault(c, ([], []))
        if pseudo_mem:
            p = pseudo[rows].flatten(1)
            pos = pos + (1 - cosine(p, torch.cat(real_mem)).min()) * lambdas[0] / len(classes)
            neg = neg + cosine(p, torch.cat(pseudo_mem)).max() * lambdas[1] / len(classes)
        # The memories take this batch's items after the terms (FIFO of MEMORY items).
        real_mem.extend(x0[rows].detach().flatten(1).split(1))
        pseudo_mem.extend(pseudo[rows].detach().flatten(1).split(1))
        del real_mem[:-MEMORY], pseudo_mem[:-MEMORY]
    opt.zero_grad()
    (loss + pos + neg).backward()
    opt.step()
    with torch.no_grad():
        for (_, e), (_, p) in zip(ema.named_parameters(), model.named_parameters()):
            e.mul_(EMA_DECAY).add_(p, alpha=1 - EMA_DECAY)
    return {"loss": loss, "mse": mse.mean(), "vb": vb.mean(), "pos": pos, "neg": neg}


def main():
    torch.set_num_threads(1)
    init = make_model()
    init_sd = {k: v.detach().clone() for k, v in init.state_dict().items()}
    out = {f"init.{k}": v for k, v in init_sd.items()}
    gen = torch.Generator().manual_seed(3)
    shape = [CONFIG["in_channels"], CONFIG["input_size"], CONFIG["input_size"]]
    inputs = []
    for k, (y, t, drop) in enumerate(zip(LABELS, TIMESTEPS, DROPS), 1):
        step = {
            "x0": torch.randn([len(y), *shape], generator=gen),
            "noise": torch.randn([len(y), *shape], generator=gen),
            "t": torch.tensor(t, dtype=torch.int64),
            "y": torch.tensor(y, dtype=torch.int64),
            "drop": torch.tensor(drop, dtype=torch.int64),
        }
        inputs.append(step)
        out.update({f"s{k}.{n}": v for n, v in step.items()})
    diff = Diffusion()
    for case, lambdas in CASES.items():
        model = make_model()
        model.load_state_dict(init_sd)
        ema = make_model()
        ema.load_state_dict(init_sd)
        for name, p in model.named_parameters():
            p.requires_grad_(any(w in name for w in TRAINABLE))
        trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
        opt = torch.optim.AdamW(list(trainable.values()), lr=LR, weight_decay=0)
        model.train()
        memory = {}
        for k, s in enumerate(inputs, 1):
            terms = train_step(model, ema, opt, diff, memory, lambdas, s["x0"], s["y"], s["t"], s["noise"], s["drop"])
            pre = f"{case}.s{k}"
            out.update({f"{pre}.{n}": v.detach().reshape(1) for n, v in terms.items()})
            for n, p in trainable.items():
                st = opt.state[p]
                out.update({f"{pre}.param.{n}": p.detach().clone(), f"{pre}.exp_avg.{n}": st["exp_avg"].clone(), f"{pre}.exp_avg_sq.{n}": st["exp_avg_sq"].clone()})
            if k == len(inputs):
                out.update({f"{pre}.ema.{n}": p.detach().clone() for n, p in ema.named_parameters()})
            for c, (real_mem, pseudo_mem) in memory.items():
                out[f"{pre}.mem.real.{c}"] = torch.cat(real_mem)
                out[f"{pre}.mem.pseudo.{c}"] = torch.cat(pseudo_mem)
            print(f"{case} step {k}: " + ", ".join(f"{n} {v.item():.6f}" for n, v in terms.items()))
    save_safetensors(fixture_path("train", "minimax_steps.safetensors"), out)
    save_json(fixture_path("train", "minimax_steps.json"), {
        "config": {**CONFIG, "gamma_blocks": GAMMA_BLOCKS},
        "cases": {k: {"lambda_pos": v[0], "lambda_neg": v[1]} for k, v in CASES.items()},
        "memory_size": MEMORY, "lr": LR, "ema_decay": EMA_DECAY, "steps": len(inputs),
        "trainable": sorted(n for n, _ in init.named_parameters() if any(w in n for w in TRAINABLE)),
    })


if __name__ == "__main__":
    main()
