"""Random-stream parity fixtures: PyTorch's CPU generator, which ours must reproduce exactly.

1. The noise bank of the authors' code: torch.manual_seed(42); torch.randn(1024, 4, 32, 32). Stored: the first HEAD
   values, every STRIDE-th value, the SHA-256 of all raw float32 bytes, and float64 checksums (exactly rounded sum and
   sum of squares): the 16 MB tensor itself stays out of the repository.
2. Streams: for each seed, torch.Generator().manual_seed(seed) and the DRAWS below in order, each output stored.
3. State: a generator's get_state() after a few draws, and the draws that follow it.

Writes test/fixtures/torch/rng.safetensors and rng.json. Run: /usr/bin/python3 tools/reference/rng_fixtures.py
"""
import hashlib
import math

import torch

from common import fixture_path, save_json, save_safetensors

BANK_SEED = 42
BANK_SHAPE = [1024, 4, 32, 32]
HEAD = 4096
STRIDE = 1021
SEEDS = ["0", "1", "42", "4294967297", "18446744073709551615"]  # strings: JSON numbers lose the large ones in JS
# One draw per row: [kind, *arguments]. Sizes below 16 and from 16 up take different paths in PyTorch's normal
# sampler (scalar vs vectorised), so both appear.
DRAWS = [
    ["randn", [7]],
    ["randn", [300]],
    ["rand", [5]],
    ["rand", [300]],
    ["randn_float64", [50]],
    ["rand_float64", [50]],
    ["randint", 0, 1000, [300]],
    ["randint", -5, 5, [17]],
    ["randperm", 100],
    ["randperm", 1000],
    ["normal", 3.0, 2.0, [40]],
    ["uniform", -2.0, 5.0, [40]],
    ["randn", [3, 5]],
]
STATE_SEED = 123


def draw(g, kind, *args):
    if kind == "randn":
        return torch.randn(args[0], generator=g)
    if kind == "rand":
        return torch.rand(args[0], generator=g)
    if kind == "randn_float64":
        return torch.randn(args[0], generator=g, dtype=torch.float64)
    if kind == "rand_float64":
        return torch.rand(args[0], generator=g, dtype=torch.float64)
    if kind == "randint":
        return torch.randint(args[0], args[1], args[2], generator=g)
    if kind == "randperm":
        return torch.randperm(args[0], generator=g)
    if kind == "normal":
        return torch.empty(args[2]).normal_(args[0], args[1], generator=g)
    if kind == "uniform":
        return torch.empty(args[2]).uniform_(args[0], args[1], generator=g)
    raise ValueError(kind)


def main():
    torch.manual_seed(BANK_SEED)
    bank = torch.randn(*BANK_SHAPE)
    flat = bank.reshape(-1)
    values = flat.double().tolist()
    tensors = {"bank/head": flat[:HEAD].clone(), "bank/strided": flat[::STRIDE].clone()}
    bank_info = {
        "seed": BANK_SEED, "shape": BANK_SHAPE, "head": HEAD, "stride": STRIDE,
        "sha256": hashlib.sha256(flat.numpy().tobytes()).hexdigest(),
        "sum": math.fsum(values), "sum_squares": math.fsum(v * v for v in values),
    }

    for seed in SEEDS:
        g = torch.Generator().manual_seed(int(seed))
        for i, d in enumerate(DRAWS):
            tensors[f"stream/{seed}/{i}"] = draw(g, *d)

    g = torch.Generator().manual_seed(STATE_SEED)
    draw(g, "randn", [5])  # leaves a cached normal sample in the state
    draw(g, "rand", [3])
    tensors["state/bytes"] = g.get_state()
    for i, d in enumerate(DRAWS[:4]):
        tensors[f"state/after/{i}"] = draw(g, *d)

    path = fixture_path("torch", "rng.safetensors")
    save_safetensors(path, tensors)
    save_json(fixture_path("torch", "rng.json"), {"bank": bank_info, "seeds": SEEDS, "draws": DRAWS,
                                                   "state": {"seed": STATE_SEED, "draws_after": 4}})
    print(f"{path}: {len(tensors)} tensors")


if __name__ == "__main__":
    main()
