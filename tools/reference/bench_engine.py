"""PyTorch baseline of `npm run bench -- engine` (bench/engine.ts): the same cases with the same shapes.

  sgemm_1024            float32 matmul 1024x1024 @ 1024x1024
  dit_block_fwd         one DiT-S block (hidden 384, 6 heads, mlp 4x), 256 tokens, batch 8, with c; no_grad
  dit_block_fwd_bwd     the same forward, then backward of sum(out * g) to the input only (frozen weights)
  resnet_block_fwd_bwd  torchvision BasicBlock(64, 64), 32x64x56x56, training-mode batch norm, backward of
                        sum(out * g) to the input and the weights (gradients reset to None each call)
  dispatch_1000_adds    1000 calls of torch.add on two 4-element tensors (diagnostic: fixed cost per operator call)
"""
import torch
from torchvision.models.resnet import BasicBlock

from bench_common import freeze_, parse_args, randomise_, serve
from models_dit import DiTBlock

parse_args()
torch.manual_seed(0)

a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)

block = DiTBlock(384, 6, 4.0)
randomise_(block)
freeze_(block)
x, c, g = torch.randn(8, 256, 384), torch.randn(8, 384), torch.randn(8, 256, 384)


def dit_fwd():
    with torch.no_grad():
        block(x, c)


def dit_fwd_bwd():
    xi = x.detach().requires_grad_(True)
    block(xi, c).backward(g)


res = BasicBlock(64, 64).train()
rx, rg = torch.randn(32, 64, 56, 56), torch.randn(32, 64, 56, 56)


def res_fwd_bwd():
    for p in res.parameters():
        p.grad = None
    xi = rx.detach().requires_grad_(True)
    res(xi).backward(rg)


s1, s2 = torch.randn(4), torch.randn(4)


def adds():
    for _ in range(1000):
        torch.add(s1, s2)


serve({
    "sgemm_1024": lambda: torch.matmul(a, b),
    "dit_block_fwd": dit_fwd,
    "dit_block_fwd_bwd": dit_fwd_bwd,
    "resnet_block_fwd_bwd": res_fwd_bwd,
    "dispatch_1000_adds": adds,
})
