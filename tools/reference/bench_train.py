"""PyTorch baseline of `npm run bench -- train` (bench/train.ts): one training step, batch 64 of 3x32x32, 10 classes.

  resnet18_step  torchvision resnet18(num_classes=10) with the DD codes' small-image stem: conv1 replaced by a 3x3
                 stride-1 conv (nn.Conv2d's default init, as theirs), max pool replaced by Identity; batch norm
  convnet3_step  models_convnet.ConvNet (width 128, depth 3, instance norm = GroupNorm(128, 128))
  mobilenet_v2_step     torchvision mobilenet_v2(num_classes=10) as built (dropout 0.2), batch norm
  efficientnet_b0_step  torchvision efficientnet_b0(num_classes=10) as built (dropout 0.2, stochastic depth 0.2)
  resnet18_step_bf16, convnet3_step_bf16  the same with the forward under torch.autocast("cpu", torch.bfloat16) and
                 the logits back in float32; the ConvNet's GroupNorms take float32 input (torch 1.13's CPU autocast
                 has no bf16-input kernel for an affine group norm; cao2 runs them in fp32 the same way)
A step: zero_grad (to None), forward, F.cross_entropy, backward, SGD(lr 0.01, momentum 0.9, weight_decay 5e-4).
"""
import contextlib

import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from bench_common import parse_args, serve
from models_convnet import ConvNet

BATCH = 64

parse_args()
torch.manual_seed(0)
x = torch.randn(BATCH, 3, 32, 32)
y = torch.randint(0, 10, (BATCH,))



def resnet18():
    m = torchvision.models.resnet18(num_classes=10)
    m.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
    m.maxpool = nn.Identity()
    return m


class Fp32GroupNorm(nn.GroupNorm):
    def forward(self, x):
        return super().forward(x.float())


def convnet3(fp32_norms=False):
    m = ConvNet(3, 10, 128, 3, "instance", 32)
    if fp32_norms:
        for i, layer in enumerate(m.features):
            if isinstance(layer, nn.GroupNorm):
                m.features[i] = Fp32GroupNorm(layer.num_groups, layer.num_channels)
    return m


mobilenet = torchvision.models.mobilenet_v2(num_classes=10)
efficientnet = torchvision.models.efficientnet_b0(num_classes=10)


def train_step(model, bf16=False):
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext():
            logits = model(x)
        F.cross_entropy(logits.float(), y).backward()
        opt.step()

    return step


serve({
    "resnet18_step": train_step(resnet18()),
    "convnet3_step": train_step(convnet3()),
    "resnet18_step_bf16": train_step(resnet18(), True),
    "convnet3_step_bf16": train_step(convnet3(fp32_norms=True), True),
    "mobilenet_v2_step": train_step(mobilenet),
    "efficientnet_b0_step": train_step(efficientnet),
})
