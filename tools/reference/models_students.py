"""Reference fixtures for the students and selectors beyond ResNet / ConvNet: torchvision 0.14's mobilenet_v2 and
efficientnet_b0, and IDC's ResNet-AP (written out below from IDC's models/resnet_ap.py description, since that code is
not a package; Minimax evaluates with it).

Run: /usr/bin/python3 tools/reference/models_students.py  -> test/fixtures/models/students/

Each case writes <case>.safetensors (input, eval output, training-mode output, a few gradients, every buffer after
that training forward) and <case>.json (settings, key list with shapes, float64 sum of every weight). The weights are
models_resnet.py's hashed fixture values (BatchNorm running statistics and affine parameters randomised too), which
the TypeScript test computes itself. Dropout and stochastic depth are set to 0 so that the training-mode forward is
deterministic; they are tested on their own.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

from common import classifier_outputs, fixture_path, save_json, save_safetensors
from models_resnet import fill_fixture_weights, instance_norm, key_list


def norm(kind, c):
    return instance_norm(c) if kind == "instance" else nn.BatchNorm2d(c)


class BasicBlockAP(nn.Module):
    """Basic block with stride-1 convs; a stride-2 block average-pools after its first ReLU and in its shortcut."""

    def __init__(self, inplanes, planes, norm_kind, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, padding=1, bias=False)
        self.bn1 = norm(norm_kind, planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = norm(norm_kind, planes)
        self.stride = stride
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(
                nn.Conv2d(inplanes, planes, 1, bias=False), nn.AvgPool2d(stride, stride), norm(norm_kind, planes)
            )

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        if self.stride != 1:
            out = F.avg_pool2d(out, self.stride, self.stride)
        out = self.bn2(self.conv2(out))
        return F.relu(out + (self.downsample(x) if self.downsample is not None else x))


class IntroBlock(nn.Module):
    def __init__(self, stem, planes, norm_kind, nch):
        super().__init__()
        k = 7 if stem == "large" else 3
        self.conv1 = nn.Conv2d(nch, planes, k, padding=k // 2, bias=False)
        self.bn1 = norm(norm_kind, planes)
        self.pool = {"large": 4, "mid": 2, "small": None}[stem]

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        return F.avg_pool2d(x, self.pool, self.pool) if self.pool else x


class ResNetAP(nn.Module):
    def __init__(self, layers, num_classes, norm_kind, stem, nch=3):
        super().__init__()
        self.layer0 = IntroBlock(stem, 64, norm_kind, nch)
        inplanes = 64
        for s, n in enumerate(layers):
            planes = 64 << s
            blocks = []
            for i in range(n):
                blocks.append(BasicBlockAP(inplanes, planes, norm_kind, 2 if i == 0 and s > 0 else 1))
                inplanes = planes
            setattr(self, f"layer{s + 1}", nn.Sequential(*blocks))
        self.fc = nn.Linear(inplanes, num_classes)

    def forward(self, x):
        x = self.layer0(x)
        for s in range(1, 5):
            x = getattr(self, f"layer{s}")(x)
        return self.fc(F.avg_pool2d(x, x.shape[-1]).flatten(1))


def mobilenet_v2(num_classes):
    return torchvision.models.mobilenet_v2(num_classes=num_classes, dropout=0.0)


def efficientnet_b0(num_classes):
    m = torchvision.models.efficientnet_b0(num_classes=num_classes, stochastic_depth_prob=0.0)
    m.classifier[0].p = 0.0  # B0's dropout is fixed at 0.2 by the builder
    return m


GRAD_KEYS = {
    "mobilenet_v2": ("features.0.0.weight", "features.2.conv.1.0.weight", "features.17.conv.1.1.bias", "features.18.1.weight", "classifier.1.weight"),
    "efficientnet_b0": ("features.0.0.weight", "features.1.0.block.1.fc1.weight", "features.6.3.block.2.fc2.bias", "features.8.1.bias", "classifier.1.weight"),
    "resnetap": ("layer0.conv1.weight", "layer1.0.bn1.weight", "layer2.0.downsample.0.weight", "layer4.0.bn2.bias", "fc.weight"),
}


def case(name, arch, model, batch, size, config, dtype=torch.float32):
    fill_fixture_weights(model)
    sd = model.state_dict()
    meta = {
        "arch": arch,
        "dtype": str(dtype).replace("torch.", ""),
        "config": config,
        "keys": key_list(model),
        "sums": {k: float(v.double().sum()) for k, v in sd.items() if not k.endswith("num_batches_tracked")},
    }
    g = torch.Generator().manual_seed(4321)
    x = torch.randn(batch, config.get("inChannels", 3), size, size, generator=g).to(dtype)
    model.to(dtype)
    out = classifier_outputs(model, x, lambda shape: torch.randn(shape, generator=g).to(dtype), GRAD_KEYS[arch])
    save_safetensors(fixture_path("models", "students", f"{name}.safetensors"), out)
    save_json(fixture_path("models", "students", f"{name}.json"), meta)
    print(name, "eval std", float(out["eval_output"].std()), "train std", float(out["train_output"].std()),
          "grad std", {k: float(out[f"grad.{k}"].std()) for k in GRAD_KEYS[arch]})


if __name__ == "__main__":
    # 64x64 inputs end at 2x2 in both torchvision nets: batch 4 gives the last batch norms 16 values per channel.
    case("mobilenet_v2", "mobilenet_v2", mobilenet_v2(10), 4, 64, {"numClasses": 10})
    case("efficientnet_b0", "efficientnet_b0", efficientnet_b0(10), 4, 64, {"numClasses": 10})
    # ResNet-AP-10 as Minimax runs it (instance norm, large stem: 64 -> 16 after the stem, 2x2 at layer4), and with
    # batch norm and the mid stem on 1-channel 32x32 input.
    case("resnetap10_instance", "resnetap", ResNetAP([1, 1, 1, 1], 10, "instance", "large"), 2, 64,
         {"depth": 10, "numClasses": 10, "norm": "instance", "stem": "large"})
    case("resnetap10_batch_mid_1ch", "resnetap", ResNetAP([1, 1, 1, 1], 7, "batch", "mid", nch=1), 4, 32,
         {"depth": 10, "numClasses": 7, "norm": "batch", "stem": "mid", "inChannels": 1})
