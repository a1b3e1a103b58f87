"""Reference fixtures for src/models/autoencoder.ts (the Stable Diffusion VAE, diffusers AutoencoderKL key names).

diffusers is not in Debian, so this is our own PyTorch implementation of the same architecture with the same
state_dict keys (facts read from diffusers' vae.py, resnet.py, unet_2d_blocks.py, attention_processor.py):
  - ResnetBlock2D: norm1 -> SiLU -> conv1 -> norm2 -> SiLU -> conv2, plus the input (through a 1x1 conv_shortcut
    when the channel count changes); GroupNorm eps 1e-6 everywhere.
  - Downsample2D (encoder, padding 0): pad (0, 1, 0, 1) = one zero column right and one zero row below, then a
    stride-2 3x3 conv without padding.
  - Upsample2D (decoder): nearest x2, then a 3x3 conv.
  - Mid block: resnet, single-head self-attention over H*W (group_norm, to_q/to_k/to_v, to_out.0, scale C^-0.5,
    residual), resnet.
  - Decoder up_blocks[0] is the lowest resolution (reversed channel list) with layers_per_block + 1 resnets each.
  - Posterior: mean, logvar = chunk(quant_conv(h), 2); logvar clamped to [-30, 20]; std = exp(0.5 logvar).

Writes test/fixtures/models/:
  autoencoder_small.safetensors      weights of a small random model (new attention names)
  autoencoder_small_old.safetensors  the same weights under the old names (query/key/value/proj_attn)
  autoencoder_small_io.safetensors   inputs and outputs: x, mean, logvar, sample (seeded noise), kl, z, decoded,
                                     and gradients of weighted sums of them (grad_x, grad_z, grad_dec_to_q)
  autoencoder_small.json             the small config and the seed of the sample noise
  autoencoder_sd_keys.json           key -> shape of the full SD VAE (sd-vae-ft-mse layout) and its parameter count

Run: /usr/bin/python3 tools/reference/models_autoencoder.py
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

from common import fixture_path, save_json, save_safetensors

EPS = 1e-6


class ResnetBlock2D(nn.Module):
    def __init__(self, cin, cout, groups):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, cin, eps=EPS)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.norm2 = nn.GroupNorm(groups, cout, eps=EPS)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.conv_shortcut = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x):
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return (self.conv_shortcut(x) if self.conv_shortcut is not None else x) + h


class Attention(nn.Module):
    """Single-head self-attention over the H*W positions, in the token layout diffusers uses."""

    def __init__(self, c, groups):
        super().__init__()
        self.group_norm = nn.GroupNorm(groups, c, eps=EPS)
        self.to_q = nn.Linear(c, c)
        self.to_k = nn.Linear(c, c)
        self.to_v = nn.Linear(c, c)
        self.to_out = nn.ModuleList([nn.Linear(c, c)])

    def forward(self, x):
        b, c, h, w = x.shape
        t = self.group_norm(x.view(b, c, h * w)).transpose(1, 2)  # [B, HW, C]
        q, k, v = self.to_q(t), self.to_k(t), self.to_v(t)
        p = torch.baddbmm(torch.empty(b, h * w, h * w), q, k.transpose(1, 2), beta=0, alpha=c ** -0.5).softmax(-1)
        o = self.to_out[0](torch.bmm(p, v))
        return o.transpose(1, 2).reshape(b, c, h, w) + x


class MidBlock(nn.Module):
    def __init__(self, c, groups):
        super().__init__()
        self.resnets = nn.ModuleList([ResnetBlock2D(c, c, groups), ResnetBlock2D(c, c, groups)])
        self.attentions = nn.ModuleList([Attention(c, groups)])

    def forward(self, x):
        return self.resnets[1](self.attentions[0](self.resnets[0](x)))


class Downsample2D(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, stride=2, padding=0)

    def forward(self, x):
        return self.conv(F.pad(x, (0, 1, 0, 1)))


class Upsample2D(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class Block(nn.Module):
    """DownEncoderBlock2D / UpDecoderBlock2D: resnets, then an optional resampler."""

    def __init__(self, cin, cout, n, groups, resample):
        super().__init__()
        self.resnets = nn.ModuleList([ResnetBlock2D(cin if j == 0 else cout, cout, groups) for j in range(n)])
        if resample == "down":
            self.downsamplers = nn.ModuleList([Downsample2D(cout)])
        if resample == "up":
            self.upsamplers = nn.ModuleList([Upsample2D(cout)])

    def forward(self, x):
        for r in self.resnets:
            x = r(x)
        for s in getattr(self, "downsamplers", []):
            x = s(x)
        for s in getattr(self, "upsamplers", []):
            x = s(x)
        return x


class Encoder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        ch, g, n = cfg["block_out_channels"], cfg["norm_num_groups"], cfg["layers_per_block"]
        self.conv_in = nn.Conv2d(cfg["in_channels"], ch[0], 3, padding=1)
        self.down_blocks = nn.ModuleList(
            [Block(ch[max(i - 1, 0)], ch[i], n, g, "down" if i < len(ch) - 1 else None) for i in range(len(ch))]
        )
        self.mid_block = MidBlock(ch[-1], g)
        self.conv_norm_out = nn.GroupNorm(g, ch[-1], eps=EPS)
        self.conv_out = nn.Conv2d(ch[-1], 2 * cfg["latent_channels"], 3, padding=1)

    def forward(self, x):
        x = self.conv_in(x)
        for b in self.down_blocks:
            x = b(x)
        return self.conv_out(F.silu(self.conv_norm_out(self.mid_block(x))))


class Decoder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        ch, g, n = cfg["block_out_channels"][::-1], cfg["norm_num_groups"], cfg["layers_per_block"]
        self.conv_in = nn.Conv2d(cfg["latent_channels"], ch[0], 3, padding=1)
        self.mid_block = MidBlock(ch[0], g)
        self.up_blocks = nn.ModuleList(
            [Block(ch[max(i - 1, 0)], ch[i], n + 1, g, "up" if i < len(ch) - 1 else None) for i in range(len(ch))]
        )
        self.conv_norm_out = nn.GroupNorm(g, ch[-1], eps=EPS)
        self.conv_out = nn.Conv2d(ch[-1], cfg["out_channels"], 3, padding=1)

    def forward(self, z):
        x = self.mid_block(self.conv_in(z))
        for b in self.up_blocks:
            x = b(x)
        return self.conv_out(F.silu(self.conv_norm_out(x)))


class AutoencoderKL(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        lat = cfg["latent_channels"]
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)
        self.quant_conv = nn.Conv2d(2 * lat, 2 * lat, 1)
        self.post_quant_conv = nn.Conv2d(lat, lat, 1)

    def encode(self, x):
        mean, logvar = self.quant_conv(self.encoder(x)).chunk(2, dim=1)
        return mean, logvar.clamp(-30.0, 20.0)

    def decode(self, z):
        return self.decoder(self.post_quant_conv(z))


OLD_NAMES = {"to_q": "query", "to_k": "key", "to_v": "value", "to_out.0": "proj_attn"}


def old_name(key):
    """diffusers' pre-0.14 names of the mid-block attention weights (group_norm kept its name)."""
    for new, old in OLD_NAMES.items():
        key = key.replace(f".attentions.0.{new}.", f".attentions.0.{old}.")
    return key


SMALL = dict(in_channels=3, out_channels=3, block_out_channels=[32, 64], layers_per_block=1, latent_channels=4,
             norm_num_groups=8, scaling_factor=0.18215)
SD = dict(in_channels=3, out_channels=3, block_out_channels=[128, 256, 512, 512], layers_per_block=2,
          latent_channels=4, norm_num_groups=32, scaling_factor=0.18215)
SAMPLE_SEED = 1234


def small_fixtures():
    torch.manual_seed(0)
    model = AutoencoderKL(SMALL).eval()
    with torch.no_grad():
        # GroupNorm starts at weight 1, bias 0; move them so the affine parts are exercised too.
        for name, p in model.named_parameters():
            if "norm" in name:
                p.add_(0.2 * torch.randn_like(p))
    sd = model.state_dict()
    save_safetensors(fixture_path("models", "autoencoder_small.safetensors"), sd)
    save_safetensors(fixture_path("models", "autoencoder_small_old.safetensors"), {old_name(k): v for k, v in sd.items()})

    # Non-square input (16 x 12) so that a swapped H/W anywhere shows.
    x = torch.randn(2, SMALL["in_channels"], 16, 12)
    z = torch.randn(2, SMALL["latent_channels"], 8, 6)
    with torch.no_grad():
        mean, logvar = model.encode(x)
        std = torch.exp(0.5 * logvar)
        noise = torch.randn(mean.shape, generator=torch.Generator().manual_seed(SAMPLE_SEED))
        sample = mean + std * noise
        kl = 0.5 * torch.sum(mean.pow(2) + torch.exp(logvar) - 1.0 - logvar, dim=[1, 2, 3])
        decoded = model.decode(z)
    # Gradients (the training recipe backpropagates through both halves): of fixed random projections of the
    # outputs, with respect to the inputs and to one attention weight.
    w_mean, w_logvar, w_dec = torch.randn_like(mean), torch.randn_like(logvar), torch.randn_like(decoded)
    xg, zg = x.clone().requires_grad_(), z.clone().requires_grad_()
    m, lv = model.encode(xg)
    ((m * w_mean).sum() + (lv * w_logvar).sum()).backward()
    (model.decode(zg) * w_dec).sum().backward()
    to_q = model.decoder.mid_block.attentions[0].to_q.weight
    io = dict(x=x, mean=mean, logvar=logvar, sample=sample, kl=kl, z=z, decoded=decoded, w_mean=w_mean,
              w_logvar=w_logvar, w_dec=w_dec, grad_x=xg.grad, grad_z=zg.grad, grad_dec_to_q=to_q.grad)
    save_safetensors(fixture_path("models", "autoencoder_small_io.safetensors"), io)
    save_json(fixture_path("models", "autoencoder_small.json"), dict(config=SMALL, sample_seed=SAMPLE_SEED))
    for k, v in io.items():
        print(f"{k}: {list(v.shape)} max|v| {v.abs().max():.4g}")


def sd_keys():
    model = AutoencoderKL(SD)
    shapes = {k: list(v.shape) for k, v in model.state_dict().items()}
    decoder = [k for k in shapes if k.startswith("decoder.")]
    # The count of the published sd-vae-ft-mse decoder: a wrong block layout cannot give it.
    assert len(decoder) == 138, len(decoder)
    assert "post_quant_conv.weight" in shapes and "post_quant_conv.bias" in shapes
    count = sum(v.numel() for v in model.state_dict().values())
    save_json(fixture_path("models", "autoencoder_sd_keys.json"), dict(config=SD, shapes=shapes, num_parameters=count))
    print(f"SD VAE: {len(shapes)} keys ({len(decoder)} decoder.*), {count} values")


if __name__ == "__main__":
    small_fixtures()
    sd_keys()
