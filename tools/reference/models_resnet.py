"""ResNet reference fixtures; torchvision 0.14's resnet18/resnet50 are the reference.

Run: /usr/bin/python3 tools/reference/models_resnet.py  -> test/fixtures/models/resnet/

Each case writes <case>.safetensors (input, eval output, training-mode output, every buffer after that one training
forward) and <case>.json (settings and the state-dict key list with shapes and the float64 sum of every weight).

The weights themselves are not stored: ResNet-18 alone is 45 MB in float32, over the fixture size limit. They are a
counter-based hash of (key, element index) that the TypeScript test computes the same way (see fixture_weights);
the per-key sums let the test check its copy of the weights before it compares outputs. BatchNorm running statistics
and affine parameters are randomised too, so eval mode is not the identity normalisation.
"""
import math

import torch
import torchvision

from common import classifier_outputs, fixture_path, save_json, save_safetensors

M32 = 0xFFFFFFFF


def _mul32(x, m):
    """(x * m) mod 2^32 for int64 tensors x < 2^32, split so that no product overflows int64."""
    return (x * (m & 0xFFFF) + (((x * (m >> 16)) & 0xFFFF) << 16)) & M32


def _lowbias32(x):
    x = x ^ (x >> 16)
    x = _mul32(x, 0x7FEB352D)
    x = x ^ (x >> 15)
    x = _mul32(x, 0x846CA68B)
    return x ^ (x >> 16)


def _fnv1a(key):
    h = 0x811C9DC5
    for b in key.encode("utf8"):
        h = ((h ^ b) * 0x01000193) & M32
    return h


def hashed_uniform(key, n):
    """n values in [-1, 1), exact in float32: 24 hash bits of lowbias32(lowbias32(i) ^ fnv1a(key))."""
    h = _lowbias32(_lowbias32(torch.arange(n, dtype=torch.int64)) ^ _fnv1a(key))
    return (h >> 8).double() / 2**23 - 1


def fixture_weight(key, shape):
    """The deterministic value of one state-dict entry (computed in float64, rounded once to float32)."""
    n = 1
    for d in shape:
        n *= d
    u = hashed_uniform(key, n).reshape(shape)
    leaf = key.rsplit(".", 1)[-1]
    if leaf == "running_var":
        v = 1 + 0.5 * u
    elif leaf == "running_mean":
        v = 0.2 * u
    elif leaf == "bias":
        v = 0.1 * u
    elif len(shape) == 1:  # norm weight
        v = 1 + 0.3 * u
    else:  # conv / linear weight: variance 2/fan_in for convs (keeps deep activations O(1)), 1/fan_in for fc
        fan_in = n // shape[0]
        v = u * math.sqrt((6.0 if len(shape) == 4 else 3.0) / fan_in)
    return v.float()


def fill_fixture_weights(model):
    with torch.no_grad():
        for k, t in model.state_dict().items():
            if k.endswith("num_batches_tracked"):
                continue
            t.copy_(fixture_weight(k, list(t.shape)))


def instance_norm(c):
    """The dataset-distillation evaluation codes' "instance norm": GroupNorm with one group per channel."""
    return torch.nn.GroupNorm(c, c, affine=True)


def build(depth, num_classes, norm, stem, in_ch):
    kw = {"num_classes": num_classes}
    if norm == "instance":
        kw["norm_layer"] = instance_norm
    model = getattr(torchvision.models, f"resnet{depth}")(**kw)
    if stem == "cifar":
        # What RDED / SRe2L do for 32x32 data: a 3x3 stride-1 first conv and no max pool.
        model.conv1 = torch.nn.Conv2d(in_ch, 64, kernel_size=3, stride=1, padding=1, bias=False)
        model.maxpool = torch.nn.Identity()
    elif in_ch != 3:
        model.conv1 = torch.nn.Conv2d(in_ch, 64, kernel_size=7, stride=2, padding=3, bias=False)
    return model


def key_list(model):
    return [[k, list(v.shape)] for k, v in model.state_dict().items()]


GRAD_KEYS = ("conv1.weight", "layer1.0.bn1.weight", "layer4.0.downsample.1.weight", "layer4.1.bn2.bias", "fc.weight")


def case(name, depth, norm, stem, in_ch, batch, size, num_classes=10, dtype=torch.float32):
    model = build(depth, num_classes, norm, stem, in_ch)
    fill_fixture_weights(model)
    sd = model.state_dict()
    meta = {
        "dtype": str(dtype).replace("torch.", ""),
        "depth": depth,
        "norm": norm,
        "stem": stem,
        "inChannels": in_ch,
        "numClasses": num_classes,
        "keys": key_list(model),
        "sums": {k: float(v.double().sum()) for k, v in sd.items() if not k.endswith("num_batches_tracked")},
    }
    g = torch.Generator().manual_seed(1234)
    x = torch.randn(batch, in_ch, size, size, generator=g).to(dtype)
    model.to(dtype)
    out = classifier_outputs(model, x, lambda shape: torch.randn(shape, generator=g).to(dtype), GRAD_KEYS)
    save_safetensors(fixture_path("models", "resnet", f"{name}.safetensors"), out)
    save_json(fixture_path("models", "resnet", f"{name}.json"), meta)
    print(name, "eval out", tuple(out["eval_output"].shape), "std", float(out["eval_output"].std()),
          "train std", float(out["train_output"].std()))


def counts():
    """Key lists of the 1000-class torchvision models; the state dict counts buffers as well as parameters."""
    lists = {}
    for depth in (18, 50, 101):
        m = getattr(torchvision.models, f"resnet{depth}")()
        lists[f"resnet{depth}"] = {
            "keys": key_list(m),
            "values": sum(v.numel() for v in m.state_dict().values()),
            "parameters": sum(p.numel() for p in m.parameters()),
        }
    # ResNet-18: 11,689,512 parameters + 9,600 running mean/var values + 20 num_batches_tracked counters.
    assert lists["resnet18"]["values"] == 11_699_132, lists["resnet18"]["values"]
    assert lists["resnet18"]["parameters"] == 11_689_512
    in18 = torchvision.models.resnet18(norm_layer=instance_norm)
    lists["resnet18_instance"] = {"keys": key_list(in18), "values": sum(v.numel() for v in in18.state_dict().values())}
    save_json(fixture_path("models", "resnet", "keys_1000.json"), lists)
    print({k: v["values"] for k, v in lists.items()})


if __name__ == "__main__":
    # Small inputs keep the tests fast. A 32x32 input with the ImageNet stem reaches layer4 at 1x1; batch 4 gives the
    # training-mode batch statistics a few values per channel there.
    case("resnet18_batch", 18, "batch", "imagenet", 3, 4, 32)
    # ResNet-50 in training mode is ill-conditioned at this size: layer4's batch norms see 4 values per channel, and
    # deep random-weight features are strongly correlated across samples, so the batch statistics cancel. PyTorch's
    # own float32 result is 7.5e-4 (rel) away from its float64 one at 32x32, so the case runs in float64 (the weights are
    # still the float32 fixture values), on 16x16 inputs to keep the slower float64 convolutions cheap (layer2 still
    # sees 4x4 maps, where stride placement on the 3x3 conv, torchvision v1.5, shows).
    case("resnet50_batch", 50, "batch", "imagenet", 3, 4, 16, dtype=torch.float64)
    case("resnet18_instance", 18, "instance", "imagenet", 3, 2, 32)
    case("resnet18_batch_cifar_1ch", 18, "batch", "cifar", 1, 2, 16)
    counts()
