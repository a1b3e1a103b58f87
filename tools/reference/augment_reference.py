"""Parity fixtures for src/evaluate/augment.ts: the augmentations whose draws follow torchvision's per-image order.

For each case: torch.manual_seed(seed), then the torchvision transform applied image by image (batch order). Our
batch functions, given a Generator seeded the same way, must draw the same numbers and give the same images.
Also Beta draws (torch.distributions.Beta.sample after manual_seed) for CutMix's lambda.

Run: /usr/bin/python3 tools/reference/augment_reference.py  ->  test/fixtures/data/augment.safetensors (+ .json)
"""
import torch
import torchvision.transforms as T
import torchvision.transforms.functional as F

from common import fixture_path, save_json, save_safetensors


def main():
    g = torch.Generator().manual_seed(2024)
    out = {}
    meta = {}

    # RandomResizedCrop: parameters and images. The third case cannot fit the ratio range in 10 attempts and takes
    # the centre-crop fallback.
    rrc_cases = [
        ("rrc_default", (6, 3, 20, 24), dict(size=(16, 16), scale=(0.08, 1.0), antialias=True), 11),
        ("rrc_protocol", (6, 3, 32, 32), dict(size=(32, 32), scale=(0.5, 1.0), antialias=False), 12),
        ("rrc_fallback", (2, 1, 6, 60), dict(size=(8, 8), scale=(0.9, 1.0), antialias=True), 13),
        ("rrc_downscale", (4, 3, 40, 36), dict(size=(12, 10), scale=(0.5, 1.0), antialias=True), 14),
    ]
    for name, shape, opts, seed in rrc_cases:
        x = torch.rand(*shape, generator=g)
        t = T.RandomResizedCrop(opts["size"], scale=opts["scale"], antialias=opts["antialias"])
        torch.manual_seed(seed)
        params, imgs = [], []
        for img in x:
            i, j, h, w = t.get_params(img, t.scale, t.ratio)
            params.append([i, j, h, w])
            imgs.append(F.resized_crop(img, i, j, h, w, list(opts["size"]), t.interpolation, antialias=opts["antialias"]))
        out[name + ".input"] = x
        out[name + ".params"] = torch.tensor(params, dtype=torch.int64)
        out[name + ".output"] = torch.stack(imgs)
        meta[name] = {"seed": seed, "size": list(opts["size"]), "scale": list(opts["scale"]), "antialias": opts["antialias"]}

    # RandomHorizontalFlip(0.5) image by image
    x = torch.rand(9, 2, 3, 5, generator=g)
    torch.manual_seed(21)
    flip = T.RandomHorizontalFlip(0.5)
    out["flip.input"] = x
    out["flip.output"] = torch.stack([flip(img) for img in x])
    meta["flip"] = {"seed": 21}

    # RandomCrop(size, padding=4) as in the CIFAR recipe
    x = torch.rand(5, 3, 8, 8, generator=g)
    torch.manual_seed(22)
    crop = T.RandomCrop(8, padding=4)
    out["crop.input"] = x
    out["crop.output"] = torch.stack([crop(img) for img in x])
    meta["crop"] = {"seed": 22, "padding": 4}

    # Beta(a, b) draws for CutMix's lambda
    for name, (a, b), seed in [("beta_1_1", (1.0, 1.0), 31), ("beta_05_2", (0.5, 2.0), 32)]:
        torch.manual_seed(seed)
        dist = torch.distributions.Beta(torch.tensor(a), torch.tensor(b))
        out[name] = torch.stack([dist.sample() for _ in range(6)])
        meta[name] = {"seed": seed, "a": a, "b": b}

    save_safetensors(fixture_path("data", "augment.safetensors"), out)
    save_json(fixture_path("data", "augment.json"), meta)


if __name__ == "__main__":
    main()
