"""DiT parity fixtures: our own PyTorch DiT (Peebles & Xie) with the official state_dict key names.

Writes under test/fixtures/models/:
  dit_small.safetensors        weights of a small random DiT (also dit_small.pt, a torch.save'd state dict)
  dit_small_diffusers.safetensors  the same weights under diffusers' Transformer2DModel names (no pos_embed: diffusers
                               does not persist it; the label/timestep embedders replicated per block)
  dit_small_io.safetensors     inputs and outputs: forward (eval), forward_with_cfg (3 and all channels), training mode
                               with forced label drops, gradients of an eps-matching loss
  dit_small.json               the small config
  dit_xl2_keys.json            names and shapes of DiT-XL/2 (input 32, 1000 classes, learn_sigma): 292 keys

Run with Debian's torch: /usr/bin/python3 tools/reference/models_dit.py
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from common import fixture_path, save_json, save_safetensors

# ---------------------------------------------------------------------------------------------------------------
# the model (official key names; torch 1.13, no timm)
# ---------------------------------------------------------------------------------------------------------------


def modulate(x, shift, scale):
    return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)


def sincos_1d(dim, pos):
    """[len(pos), dim]: sin of pos * omega for the first half, cos for the second (float64)."""
    omega = torch.arange(dim // 2, dtype=torch.float64) / (dim / 2.0)
    omega = 1.0 / 10000**omega
    out = pos.reshape(-1, 1).double() * omega.reshape(1, -1)
    return torch.cat([torch.sin(out), torch.cos(out)], dim=1)


def sincos_2d(dim, grid):
    """MAE-style fixed 2-D embedding of a grid x grid token map: first half of the channels from the column index."""
    rows, cols = torch.meshgrid(torch.arange(grid, dtype=torch.float64), torch.arange(grid, dtype=torch.float64), indexing="ij")
    return torch.cat([sincos_1d(dim // 2, cols), sincos_1d(dim // 2, rows)], dim=1)


class PatchEmbed(nn.Module):
    def __init__(self, patch, in_ch, dim):
        super().__init__()
        self.proj = nn.Conv2d(in_ch, dim, kernel_size=patch, stride=patch)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)


class TimestepEmbedder(nn.Module):
    def __init__(self, dim, freq_dim=256):
        super().__init__()
        self.freq_dim = freq_dim
        self.mlp = nn.Sequential(nn.Linear(freq_dim, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, t):
        half = self.freq_dim // 2
        freqs = torch.exp(-math.log(10000) * torch.arange(0, half, dtype=torch.float32) / half)
        args = t[:, None].float() * freqs[None]
        return self.mlp(torch.cat([torch.cos(args), torch.sin(args)], dim=-1))


class LabelEmbedder(nn.Module):
    def __init__(self, num_classes, dim, drop_prob):
        super().__init__()
        self.embedding_table = nn.Embedding(num_classes + (1 if drop_prob > 0 else 0), dim)
        self.num_classes = num_classes
        self.drop_prob = drop_prob

    def forward(self, y, train, force_drop_ids=None):
        if (train and self.drop_prob > 0) or force_drop_ids is not None:
            drop = torch.rand(y.shape[0]) < self.drop_prob if force_drop_ids is None else force_drop_ids == 1
            y = torch.where(drop, torch.full_like(y, self.num_classes), y)
        return self.embedding_table(y)


class Attention(nn.Module):
    """With gamma (Minimax / DiffFit): gamma1 [3 dim] scales the qkv output, gamma2 [dim] the output projection."""

    def __init__(self, dim, heads, gamma=False):
        super().__init__()
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.gamma = gamma
        if gamma:
            self.gamma1 = nn.Parameter(torch.ones(3 * dim))
            self.gamma2 = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        n, t, d = x.shape
        qkv = self.qkv(x) * self.gamma1 if self.gamma else self.qkv(x)
        q, k, v = qkv.reshape(n, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        a = torch.softmax((q * self.scale) @ k.transpose(-2, -1), dim=-1)
        out = self.proj((a @ v).transpose(1, 2).reshape(n, t, d))
        return out * self.gamma2 if self.gamma else out


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x), approximate="tanh"))


class DiTBlock(nn.Module):
    """With gamma (Minimax / DiffFit): gamma1 [dim] scales the gated attention branch, gamma2 [dim] the gated MLP one."""

    def __init__(self, dim, heads, mlp_ratio, gamma=False):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(dim, heads, gamma)
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 6 * dim))
        self.gamma = gamma
        if gamma:
            self.gamma1 = nn.Parameter(torch.ones(dim))
            self.gamma2 = nn.Parameter(torch.ones(dim))

    def forward(self, x, c):
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = self.adaLN_modulation(c).chunk(6, dim=1)
        g1, g2 = (self.gamma1, self.gamma2) if self.gamma else (1.0, 1.0)
        x = x + g1 * gate_msa.unsqueeze(1) * self.attn(modulate(self.norm1(x), shift_msa, scale_msa))
        return x + g2 * gate_mlp.unsqueeze(1) * self.mlp(modulate(self.norm2(x), shift_mlp, scale_mlp))


class FinalLayer(nn.Module):
    def __init__(self, dim, patch, out_ch):
        super().__init__()
        self.norm_final = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.linear = nn.Linear(dim, patch * patch * out_ch)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 2 * dim))

    def forward(self, x, c):
        shift, scale = self.adaLN_modulation(c).chunk(2, dim=1)
        return self.linear(modulate(self.norm_final(x), shift, scale))


class DiT(nn.Module):
    def __init__(self, input_size=32, patch_size=2, in_channels=4, hidden_size=1152, depth=28, num_heads=16,
                 mlp_ratio=4.0, class_dropout_prob=0.1, num_classes=1000, learn_sigma=True, use_gamma=None):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = in_channels * 2 if learn_sigma else in_channels
        self.patch = patch_size
        self.x_embedder = PatchEmbed(patch_size, in_channels, hidden_size)
        self.t_embedder = TimestepEmbedder(hidden_size)
        self.y_embedder = LabelEmbedder(num_classes, hidden_size, class_dropout_prob)
        grid = input_size // patch_size
        self.pos_embed = nn.Parameter(sincos_2d(hidden_size, grid).float().unsqueeze(0), requires_grad=False)
        # use_gamma[i]: block i carries DiffFit scales (Minimax: the first half of the blocks); none by default.
        use_gamma = use_gamma or [False] * depth
        self.blocks = nn.ModuleList([DiTBlock(hidden_size, num_heads, mlp_ratio, use_gamma[i]) for i in range(depth)])
        self.final_layer = FinalLayer(hidden_size, patch_size, self.out_channels)

    def unpatchify(self, x):
        n, t, _ = x.shape
        p, c, h = self.patch, self.out_channels, int(t**0.5)
        return x.reshape(n, h, h, p, p, c).permute(0, 5, 1, 3, 2, 4).reshape(n, c, h * p, h * p)

    def forward(self, x, t, y, force_drop_ids=None):
        x = self.x_embedder(x) + self.pos_embed
        c = self.t_embedder(t) + self.y_embedder(y, self.training, force_drop_ids)
        for block in self.blocks:
            x = block(x, c)
        return self.unpatchify(self.final_layer(x, c))

    def forward_with_cfg(self, x, t, y, scale, guided=3):
        half = x[: len(x) // 2]
        out = self.forward(torch.cat([half, half], dim=0), t, y)
        eps, rest = out[:, :guided], out[:, guided:]
        cond, uncond = torch.split(eps, len(eps) // 2, dim=0)
        half_eps = uncond + scale * (cond - uncond)
        return torch.cat([torch.cat([half_eps, half_eps], dim=0), rest], dim=1)


# ---------------------------------------------------------------------------------------------------------------
# diffusers naming (facts from diffusers' scripts/convert_dit_to_diffusers.py and Transformer2DModel): weights are
# copied unchanged except qkv, which diffusers splits into to_q/to_k/to_v along dim 0.
# ---------------------------------------------------------------------------------------------------------------


def to_diffusers(sd, depth):
    out = {}
    emb = {
        "norm1.emb.timestep_embedder.linear_1": "t_embedder.mlp.0",
        "norm1.emb.timestep_embedder.linear_2": "t_embedder.mlp.2",
    }
    out["pos_embed.proj.weight"] = sd["x_embedder.proj.weight"]
    out["pos_embed.proj.bias"] = sd["x_embedder.proj.bias"]
    for i in range(depth):
        b, o = f"blocks.{i}.", f"transformer_blocks.{i}."
        for new, old in emb.items():
            for s in ("weight", "bias"):
                out[f"{o}{new}.{s}"] = sd[f"{old}.{s}"]
        out[f"{o}norm1.emb.class_embedder.embedding_table.weight"] = sd["y_embedder.embedding_table.weight"]
        for s in ("weight", "bias"):
            q, k, v = sd[f"{b}attn.qkv.{s}"].chunk(3, dim=0)
            out[f"{o}attn1.to_q.{s}"], out[f"{o}attn1.to_k.{s}"], out[f"{o}attn1.to_v.{s}"] = q, k, v
            out[f"{o}attn1.to_out.0.{s}"] = sd[f"{b}attn.proj.{s}"]
            out[f"{o}ff.net.0.proj.{s}"] = sd[f"{b}mlp.fc1.{s}"]
            out[f"{o}ff.net.2.{s}"] = sd[f"{b}mlp.fc2.{s}"]
            out[f"{o}norm1.linear.{s}"] = sd[f"{b}adaLN_modulation.1.{s}"]
    for s in ("weight", "bias"):
        out[f"proj_out_1.{s}"] = sd[f"final_layer.adaLN_modulation.1.{s}"]
        out[f"proj_out_2.{s}"] = sd[f"final_layer.linear.{s}"]
    return out


# ---------------------------------------------------------------------------------------------------------------
# fixtures
# ---------------------------------------------------------------------------------------------------------------

SMALL = dict(input_size=8, patch_size=2, in_channels=4, hidden_size=64, depth=2, num_heads=4, mlp_ratio=4.0,
             class_dropout_prob=0.1, num_classes=10, learn_sigma=True)


def main():
    torch.manual_seed(0)
    model = DiT(**SMALL)
    with torch.no_grad():
        # Random values everywhere: the reference's zero init of adaLN and the final layer would make outputs trivial.
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * 0.02)
    sd = {k: v.detach().clone() for k, v in model.state_dict().items()}
    save_safetensors(fixture_path("models", "dit_small.safetensors"), sd)
    torch.save(sd, fixture_path("models", "dit_small.pt"))
    save_safetensors(fixture_path("models", "dit_small_diffusers.safetensors"), to_diffusers(sd, SMALL["depth"]))
    save_json(fixture_path("models", "dit_small.json"), SMALL)

    n, null = 4, SMALL["num_classes"]
    x = torch.randn(n, 4, 8, 8)
    t = torch.tensor([999, 0, 500, 17], dtype=torch.int64)
    y = torch.tensor([3, 7, 0, 9], dtype=torch.int64)
    # CFG input as the sampler builds it: z twice, labels then null labels.
    y_cfg = torch.tensor([3, 7, null, null], dtype=torch.int64)
    t_cfg = torch.tensor([250, 40, 250, 40], dtype=torch.int64)
    drop = torch.tensor([1, 0, 1, 0], dtype=torch.int64)
    io = {"x": x, "t": t, "y": y, "y_cfg": y_cfg, "t_cfg": t_cfg, "force_drop_ids": drop}
    with torch.no_grad():
        model.eval()
        io["out"] = model(x, t, y)
        io["cfg3"] = model.forward_with_cfg(x, t_cfg, y_cfg, 4.0, guided=3)
        io["cfg_all"] = model.forward_with_cfg(x, t_cfg, y_cfg, 4.0, guided=SMALL["in_channels"])
        model.train()
        io["train_drop"] = model(x, t, y, force_drop_ids=drop)
    # Gradients of an eps-matching loss (as latent refinement uses) with respect to the input and to two weights.
    model.eval()
    target = torch.randn(n, 4, 8, 8)
    xg = x.clone().requires_grad_(True)
    loss = (model(xg, t, y)[:, :4] - target).square().mean()
    loss.backward()
    io.update(target=target, loss=loss.detach().reshape(1), grad_x=xg.grad,
              grad_qkv=model.blocks[1].attn.qkv.weight.grad, grad_table=model.y_embedder.embedding_table.weight.grad)
    save_safetensors(fixture_path("models", "dit_small_io.safetensors"), io)

    # DiT-XL/2 at 256x256 (latent 4x32x32): the official checkpoint's keys.
    xl = DiT(input_size=32, depth=28, hidden_size=1152, patch_size=2, num_heads=16)
    keys = {k: list(v.shape) for k, v in xl.state_dict().items()}
    total = sum(v.numel() for v in xl.state_dict().values())
    assert len(keys) == 292, len(keys)
    assert total == 675_129_632, total
    save_json(fixture_path("models", "dit_xl2_keys.json"), {"keys": keys, "numel": total})
    print(f"wrote DiT fixtures; XL/2: {len(keys)} keys, {total} values")


if __name__ == "__main__":
    main()
