"""Optimiser parity fixtures: SGD, Adam and AdamW trajectories on a tiny MLP, run by PyTorch.

The problem: y_hat = fc2(tanh(fc1(x))), loss = mse(y_hat, y) on fixed data. For each configuration in CONFIGS
(hyperparameters per parameter group, in torch.optim's names) the optimiser takes STEPS steps from the same initial
parameters. Writes test/fixtures/torch/optim.safetensors:
  data/x, data/y, init/<param>            the problem,
  <config>/step<k>/<param>                the parameters after step k = 1..STEPS,
  <config>/state<SAVE_AT>/<i>/<key>       the optimiser state of parameter i after SAVE_AT steps (None omitted),
and test/fixtures/torch/optim.json: {steps, save_at, params, configs}.

Run: /usr/bin/python3 tools/reference/optim_fixtures.py
"""
import torch
import torch.nn.functional as F

from common import fixture_path, save_json, save_safetensors

STEPS = 20
SAVE_AT = 10
PARAMS = ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]
W1, B1, W2, B2 = PARAMS

CONFIGS = {
    "sgd": ("sgd", [dict(params=PARAMS, lr=0.1)]),
    "sgd_weight_decay": ("sgd", [dict(params=PARAMS, lr=0.1, weight_decay=0.05)]),
    "sgd_momentum": ("sgd", [dict(params=PARAMS, lr=0.05, momentum=0.9)]),
    "sgd_momentum_dampening": ("sgd", [dict(params=PARAMS, lr=0.05, momentum=0.8, dampening=0.3, weight_decay=0.01)]),
    "sgd_nesterov": ("sgd", [dict(params=PARAMS, lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)]),
    "adam": ("adam", [dict(params=PARAMS, lr=0.01)]),
    "adam_weight_decay": ("adam", [dict(params=PARAMS, lr=0.02, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.01)]),
    "adam_amsgrad": ("adam", [dict(params=PARAMS, lr=0.01, amsgrad=True)]),
    "adamw": ("adamw", [dict(params=PARAMS, lr=0.01, weight_decay=0.1)]),
    "adamw_groups": ("adamw", [dict(params=[W1, W2], lr=0.02, weight_decay=0.1),
                               dict(params=[B1, B2], lr=0.005, weight_decay=0.0)]),
    "adamw_amsgrad": ("adamw", [dict(params=PARAMS, lr=0.01, weight_decay=0.05, amsgrad=True, betas=(0.85, 0.995))]),
}
CLASSES = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}

torch.set_num_threads(1)
gen = torch.Generator().manual_seed(777)
DATA = {"x": torch.randn(16, 4, generator=gen), "y": torch.randn(16, 3, generator=gen)}
INIT = {W1: torch.randn(8, 4, generator=gen) * 0.5, B1: torch.randn(8, generator=gen) * 0.1,
        W2: torch.randn(3, 8, generator=gen) * 0.5, B2: torch.randn(3, generator=gen) * 0.1}


def loss_fn(p):
    h = torch.tanh(F.linear(DATA["x"], p[W1], p[B1]))
    return F.mse_loss(F.linear(h, p[W2], p[B2]), DATA["y"])


def trajectory(kind, groups):
    p = {k: v.clone().requires_grad_(True) for k, v in INIT.items()}
    extra = {} if kind == "sgd" else {"foreach": False}  # the single-tensor implementation, as ours
    opt = CLASSES[kind]([{**g, "params": [p[k] for k in g["params"]]} for g in groups], **extra)
    out = {}
    for step in range(1, STEPS + 1):
        opt.zero_grad()
        loss_fn(p).backward()
        opt.step()
        out.update({f"step{step}/{k}": v.detach().clone() for k, v in p.items()})
        if step == SAVE_AT:
            for i, st in opt.state_dict()["state"].items():
                out.update({f"state{SAVE_AT}/{i}/{key}": torch.as_tensor(v).clone() for key, v in st.items() if v is not None})
    return out


def main():
    tensors = {f"data/{k}": v for k, v in DATA.items()}
    tensors.update({f"init/{k}": v for k, v in INIT.items()})
    for name, (kind, groups) in CONFIGS.items():
        tensors.update({f"{name}/{k}": v for k, v in trajectory(kind, groups).items()})
    configs = {name: {"kind": kind, "groups": groups} for name, (kind, groups) in CONFIGS.items()}
    path = fixture_path("torch", "optim.safetensors")
    save_safetensors(path, tensors)
    save_json(fixture_path("torch", "optim.json"), {"steps": STEPS, "save_at": SAVE_AT, "params": PARAMS,
                                                     "configs": configs})
    print(f"{path}: {len(CONFIGS)} configurations, {len(tensors)} tensors")


if __name__ == "__main__":
    main()
