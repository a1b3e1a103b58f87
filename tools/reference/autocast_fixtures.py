"""Mixed-precision parity: forwards and gradients under torch.autocast("cpu", dtype=torch.bfloat16), the reference for
cao2's `autocast` (src/torch/autocast.ts) and `--precision bf16`.

Uses the small random DiT (test/fixtures/models/dit_small.pt, models_dit.py) and the 1-channel ConvNet-3 with batch
norm (test/fixtures/models/convnet/convnet3_batch_1ch28.safetensors, models_convnet.py), both with their fixture
weights. (torch 1.13's CPU autocast has no mixed-dtype kernels for affine layer/group norm, which then fail on bf16
input; the DiT's norms are not affine and batch norm takes bf16 input, so these two run as PyTorch runs them.)
  dit_out / dit_cfg_out   eval forward and forward_with_cfg (scale 4) of fixed inputs, under autocast
  dit_grad / dit_loss     refinement as cao2 does it: fp32 latents x0 (leaves), x_t = a x0 + b noise, the DiT's eps
                          under autocast, the loss in fp32 (eps cast back), d loss / d x0 (fp32)
  convnet_out             eval forward under autocast
  convnet_grad / _loss    training-mode cross entropy (fp32 of the logits) and d loss / d input
Each output is saved as float32 (the json records the dtype each had), and again without autocast (suffix _fp32): how
far PyTorch's own bf16 result is from fp32 is the scale the parity test measures our bf16 difference against.
Writes test/fixtures/torch/autocast_bf16.safetensors and autocast_bf16.json. Run with /usr/bin/python3.
"""
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import fixture_path, load_safetensors, save_json, save_safetensors  # noqa: E402
from models_convnet import ConvNet  # noqa: E402
from models_dit import SMALL, DiT  # noqa: E402


def main():
    torch.set_num_threads(1)
    out, dtypes = {}, {}
    dit = DiT(**SMALL)
    dit.load_state_dict(torch.load(fixture_path("models", "dit_small.pt")))
    dit.eval()
    gen = torch.Generator().manual_seed(21)
    c, s = SMALL["in_channels"], SMALL["input_size"]
    x = torch.randn([2, c, s, s], generator=gen)
    noise = torch.randn([2, c, s, s], generator=gen)
    t = torch.tensor([10.0, 500.0])
    y = torch.tensor([3, 8], dtype=torch.int64)
    out.update({"dit_x": x, "dit_noise": noise, "dit_t": t})
    for suffix, low in (("", True), ("_fp32", False)):
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=low):
            o = dit(x, t, y)
            cfg = dit.forward_with_cfg(torch.cat([x, x]), torch.cat([t, t]), torch.tensor([3, 8, 10, 10]), 4.0)
        out["dit_out" + suffix], dtypes["dit_out" + suffix] = o.float(), str(o.dtype)
        out["dit_cfg_out" + suffix] = cfg.float()

        x0 = x.clone().requires_grad_(True)
        a, b = 0.8, 0.6
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=low):
            eps = dit(a * x0 + b * noise, t, y)[:, :c]
        loss = ((eps.float() - noise) ** 2).mean()
        loss.backward()
        out["dit_loss" + suffix], out["dit_grad" + suffix] = loss.detach().reshape([1]), x0.grad
        dtypes["dit_grad" + suffix] = str(x0.grad.dtype)

    fx = load_safetensors(fixture_path("models", "convnet", "convnet3_batch_1ch28.safetensors"))
    net = ConvNet(1, 10, 16, 3, "batch", 28)
    net.load_state_dict({k: v for k, v in fx.items() if k in net.state_dict()})
    xi = torch.randn([4, 1, 28, 28], generator=gen)
    labels = torch.tensor([0, 3, 5, 9])
    out["convnet_x"] = xi
    state = {k: v.clone() for k, v in net.state_dict().items()}
    for suffix, low in (("", True), ("_fp32", False)):
        net.load_state_dict(state)  # the training forward below moves the running statistics
        net.eval()
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=low):
            co = net(xi)
        out["convnet_out" + suffix], dtypes["convnet_out" + suffix] = co.float(), str(co.dtype)
        net.train()
        xg = xi.clone().requires_grad_(True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=low):
            logits = net(xg)
        closs = F.cross_entropy(logits.float(), labels)
        closs.backward()
        out["convnet_loss" + suffix], out["convnet_grad" + suffix] = closs.detach().reshape([1]), xg.grad
    out["convnet_labels"] = labels
    save_safetensors(fixture_path("torch", "autocast_bf16.safetensors"), out)
    save_json(fixture_path("torch", "autocast_bf16.json"), {"dtypes": dtypes, "dit_y": [3, 8], "cfg_scale": 4.0, "a": a, "b": b})
    print("autocast_bf16:", dtypes)


if __name__ == "__main__":
    main()
