"""Perceptual-distance reference fixture (src/train/perceptual.ts): a random-weight ConvNet-3 (our PyTorch copy of
the DD net, models_convnet.py), its input normalisation, and two image batches in [-1, 1]. The distance sums over the
blocks the squared difference of channel-wise unit-normalised feature maps, averaged over positions; the fixture holds
it and its gradient with respect to the reconstruction.

Run: /usr/bin/python3 tools/reference/perceptual_fixtures.py  -> test/fixtures/models/perceptual/
"""
import torch

from common import fixture_path, save_json, save_safetensors
from models_convnet import ConvNet


def unit(f):
    return f / (f.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)


def feature_maps(model, x, mean, std):
    h = ((x + 1) / 2 - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)
    maps = []
    for layer in model.features:
        h = layer(h)
        if isinstance(layer, torch.nn.AvgPool2d):
            maps.append(h)
    return maps


def main():
    torch.manual_seed(7)
    model = ConvNet(3, 10, 16, 3, "instance", 32).eval()
    with torch.no_grad():  # norm layers away from 1/0 so that they matter
        for k, v in model.state_dict().items():
            if v.dim() == 1:
                v.uniform_(-0.3, 0.3) if k.endswith("bias") else v.uniform_(0.7, 1.3)
    mean, std = torch.tensor([0.4, 0.5, 0.6]), torch.tensor([0.2, 0.25, 0.3])
    target = torch.rand(4, 3, 32, 32) * 2 - 1
    reconstruction = (target + 0.3 * torch.randn(target.shape)).clamp(-1, 1).requires_grad_(True)
    want = [unit(f).detach() for f in feature_maps(model, target, mean, std)]
    distance = sum((unit(f) - w).pow(2).sum(1).mean() for f, w in zip(feature_maps(model, reconstruction, mean, std), want))
    distance.backward()
    out = {k: v.clone() for k, v in model.state_dict().items()}
    out.update(target=target, reconstruction=reconstruction.detach(), distance=distance.detach(), grad=reconstruction.grad)
    save_safetensors(fixture_path("models", "perceptual", "convnet3_width16.safetensors"), out)
    save_json(fixture_path("models", "perceptual", "convnet3_width16.json"), {"mean": mean.tolist(), "std": std.tolist()})
    print("distance", float(distance))


if __name__ == "__main__":
    main()
