"""ConvNet-D reference fixtures: our own PyTorch copy of the dataset-distillation evaluation net (DC/DSA/DM/MTT
`networks.ConvNet`), with that code's nn.Sequential key layout: features.{i} then classifier.

Run: /usr/bin/python3 tools/reference/models_convnet.py  -> test/fixtures/models/convnet/

Each case writes <case>.safetensors (weights under their state-dict keys, input, eval output, training-mode output and
the buffers after that training forward), <case>.pt (the same state dict as torch.save writes it, for checkpoint
readers) and <case>.json (settings and the key list with shapes).
"""
import torch
from torch import nn

from common import classifier_outputs, fixture_path, save_json, save_safetensors


class ConvNet(nn.Module):
    """depth x [conv3x3, norm, ReLU, AvgPool2d(2)] then Linear. A 1-channel input gets padding 3 on the first conv
    (28x28 MNIST-style images become 32x32 there), as in the DC code."""

    def __init__(self, channel, num_classes, width, depth, norm, im_size):
        super().__init__()
        layers = []
        size = 32 if im_size == 28 else im_size  # the DC code's feature-size bookkeeping, kept as it is written
        c, h, w = channel, size, size
        for d in range(depth):
            layers.append(nn.Conv2d(c, width, kernel_size=3, padding=3 if channel == 1 and d == 0 else 1))
            c = width
            if norm == "instance":
                layers.append(nn.GroupNorm(width, width, affine=True))
            elif norm == "batch":
                layers.append(nn.BatchNorm2d(width))
            layers.append(nn.ReLU(inplace=True))
            layers.append(nn.AvgPool2d(kernel_size=2, stride=2))
            h, w = h // 2, w // 2
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(c * h * w, num_classes)

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))


def case(name, seed, channel, num_classes, width, depth, norm, im_size, batch):
    torch.manual_seed(seed)
    model = ConvNet(channel, num_classes, width, depth, norm, im_size)
    with torch.no_grad():  # PyTorch's default init leaves norm layers at 1/0: randomise them so they matter
        for k, v in model.state_dict().items():
            if k.endswith("running_var"):
                v.uniform_(0.5, 1.5)
            elif k.endswith(("running_mean", "bias")) and v.dim() == 1:
                v.uniform_(-0.2, 0.2)
            elif v.dim() == 1 and v.is_floating_point():
                v.uniform_(0.7, 1.3)
    sd = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(batch, channel, im_size, im_size)
    out = {**sd, **classifier_outputs(model, x, torch.randn, ("features.0.weight", "classifier.weight"))}
    save_safetensors(fixture_path("models", "convnet", f"{name}.safetensors"), out)
    torch.save(sd, fixture_path("models", "convnet", f"{name}.pt"))
    meta = {
        "depth": depth,
        "width": width,
        "norm": norm,
        "inChannels": channel,
        "imageSize": im_size,
        "numClasses": num_classes,
        "keys": [[k, list(v.shape)] for k, v in sd.items()],
    }
    save_json(fixture_path("models", "convnet", f"{name}.json"), meta)
    print(name, [k for k in sd], "eval std", float(out["eval_output"].std()))


if __name__ == "__main__":
    case("convnet3_instance", 0, 3, 10, 128, 3, "instance", 32, 2)  # the standard ConvNet-3 for 32x32 data
    case("convnet3_batch_1ch28", 1, 1, 10, 16, 3, "batch", 28, 4)  # MNIST-style: padding 3 on the first conv
    case("convnet4_none", 2, 3, 7, 16, 4, "none", 64, 2)  # no norm layer: indices features.{0,3,6,9}
