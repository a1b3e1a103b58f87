"""Key -> shape tables of the architectures `cao2 inspect` recognises, with the configuration each was built from
(test/fixtures/io/architectures.json). The tests check that src/io/architecture.ts recovers the configuration.

Run with Debian's torch: /usr/bin/python3 tools/reference/checkpoint_architectures.py

ResNets, MobileNetV2 and EfficientNets come from torchvision itself; ResNet-AP is models_students.py's copy of IDC's; ConvNet-D is the dataset-distillation evaluation net (DC/DSA layout:
features = [conv, norm, relu, avgpool] * depth, classifier = Linear); DiT and AutoencoderKL tables are written out
from their published layouts (the official DiT models.py, diffusers' DiTTransformer2DModel and AutoencoderKL, and
the CompVis/LDM autoencoder), since neither package is in Debian. Two published totals check those tables:
DiT-XL/2 at 256x256 has 292 keys and 675,129,632 values; the SD VAE has 83,653,863 values.
"""
import collections

import torch.nn as nn
import torchvision

from common import fixture_path, save_json
from models_students import ResNetAP

DIT_CONFIGS = {"S": (12, 384, 6), "B": (12, 768, 12), "L": (24, 1024, 16), "XL": (28, 1152, 16)}


def dit_official(depth, hidden, patch, in_ch=4, num_classes=1000, latent=32, learn_sigma=True):
    out_ch = 2 * in_ch if learn_sigma else in_ch
    s = collections.OrderedDict()
    s["pos_embed"] = [1, (latent // patch) ** 2, hidden]
    s["x_embedder.proj.weight"] = [hidden, in_ch, patch, patch]
    s["x_embedder.proj.bias"] = [hidden]
    s["t_embedder.mlp.0.weight"] = [hidden, 256]
    s["t_embedder.mlp.0.bias"] = [hidden]
    s["t_embedder.mlp.2.weight"] = [hidden, hidden]
    s["t_embedder.mlp.2.bias"] = [hidden]
    s["y_embedder.embedding_table.weight"] = [num_classes + 1, hidden]
    for i in range(depth):
        b = "blocks.%d." % i
        s[b + "attn.qkv.weight"] = [3 * hidden, hidden]
        s[b + "attn.qkv.bias"] = [3 * hidden]
        s[b + "attn.proj.weight"] = [hidden, hidden]
        s[b + "attn.proj.bias"] = [hidden]
        s[b + "mlp.fc1.weight"] = [4 * hidden, hidden]
        s[b + "mlp.fc1.bias"] = [4 * hidden]
        s[b + "mlp.fc2.weight"] = [hidden, 4 * hidden]
        s[b + "mlp.fc2.bias"] = [hidden]
        s[b + "adaLN_modulation.1.weight"] = [6 * hidden, hidden]
        s[b + "adaLN_modulation.1.bias"] = [6 * hidden]
    s["final_layer.linear.weight"] = [patch * patch * out_ch, hidden]
    s["final_layer.linear.bias"] = [patch * patch * out_ch]
    s["final_layer.adaLN_modulation.1.weight"] = [2 * hidden, hidden]
    s["final_layer.adaLN_modulation.1.bias"] = [2 * hidden]
    return s


def dit_diffusers(depth, hidden, patch, in_ch=4, num_classes=1000, learn_sigma=True):
    out_ch = 2 * in_ch if learn_sigma else in_ch
    s = collections.OrderedDict()
    s["pos_embed.proj.weight"] = [hidden, in_ch, patch, patch]
    s["pos_embed.proj.bias"] = [hidden]
    for i in range(depth):
        b = "transformer_blocks.%d." % i
        s[b + "norm1.emb.timestep_embedder.linear_1.weight"] = [hidden, 256]
        s[b + "norm1.emb.timestep_embedder.linear_1.bias"] = [hidden]
        s[b + "norm1.emb.timestep_embedder.linear_2.weight"] = [hidden, hidden]
        s[b + "norm1.emb.timestep_embedder.linear_2.bias"] = [hidden]
        s[b + "norm1.emb.class_embedder.embedding_table.weight"] = [num_classes + 1, hidden]
        s[b + "norm1.linear.weight"] = [6 * hidden, hidden]
        s[b + "norm1.linear.bias"] = [6 * hidden]
        for p in ("to_q", "to_k", "to_v", "to_out.0"):
            s[b + "attn1.%s.weight" % p] = [hidden, hidden]
            s[b + "attn1.%s.bias" % p] = [hidden]
        s[b + "ff.net.0.proj.weight"] = [4 * hidden, hidden]
        s[b + "ff.net.0.proj.bias"] = [4 * hidden]
        s[b + "ff.net.2.weight"] = [hidden, 4 * hidden]
        s[b + "ff.net.2.bias"] = [hidden]
    s["proj_out_1.weight"] = [2 * hidden, hidden]
    s["proj_out_1.bias"] = [2 * hidden]
    s["proj_out_2.weight"] = [patch * patch * out_ch, hidden]
    s["proj_out_2.bias"] = [patch * patch * out_ch]
    return s


def vae(block_out=(128, 256, 512, 512), layers=2, in_ch=3, latent=4, naming="diffusers", attn="new"):
    """AutoencoderKL (diffusers names, old or new mid-attention names) or the CompVis/LDM autoencoder."""
    s = collections.OrderedDict()
    ldm = naming == "ldm"

    def conv(name, cout, cin, k):
        s[name + ".weight"] = [cout, cin, k, k]
        s[name + ".bias"] = [cout]

    def norm(name, c):
        s[name + ".weight"] = [c]
        s[name + ".bias"] = [c]

    def resnet(name, cin, cout):
        norm(name + ".norm1", cin)
        conv(name + ".conv1", cout, cin, 3)
        norm(name + ".norm2", cout)
        conv(name + ".conv2", cout, cout, 3)
        if cin != cout:
            conv(name + (".nin_shortcut" if ldm else ".conv_shortcut"), cout, cin, 1)

    def attention(name, c):
        if ldm:
            norm(name + ".norm", c)
            for p in ("q", "k", "v", "proj_out"):
                conv(name + "." + p, c, c, 1)
            return
        norm(name + ".group_norm", c)
        for p in (("to_q", "to_k", "to_v", "to_out.0") if attn == "new" else ("query", "key", "value", "proj_attn")):
            s[name + ".%s.weight" % p] = [c, c]
            s[name + ".%s.bias" % p] = [c]

    def mid(prefix, c):
        if ldm:
            resnet(prefix + ".mid.block_1", c, c)
            attention(prefix + ".mid.attn_1", c)
            resnet(prefix + ".mid.block_2", c, c)
        else:
            resnet(prefix + ".mid_block.resnets.0", c, c)
            attention(prefix + ".mid_block.attentions.0", c)
            resnet(prefix + ".mid_block.resnets.1", c, c)

    n = len(block_out)
    conv("encoder.conv_in", block_out[0], in_ch, 3)
    cin = block_out[0]
    for i, c in enumerate(block_out):
        for j in range(layers):
            resnet("encoder.down.%d.block.%d" % (i, j) if ldm else "encoder.down_blocks.%d.resnets.%d" % (i, j), cin, c)
            cin = c
        if i < n - 1:
            conv("encoder.down.%d.downsample.conv" % i if ldm else "encoder.down_blocks.%d.downsamplers.0.conv" % i, c, c, 3)
    mid("encoder", block_out[-1])
    norm("encoder.norm_out" if ldm else "encoder.conv_norm_out", block_out[-1])
    conv("encoder.conv_out", 2 * latent, block_out[-1], 3)
    conv("quant_conv", 2 * latent, 2 * latent, 1)
    conv("post_quant_conv", latent, latent, 1)
    conv("decoder.conv_in", block_out[-1], latent, 3)
    mid("decoder", block_out[-1])
    cin = block_out[-1]
    for i, c in enumerate(reversed(block_out)):
        # LDM numbers decoder levels by resolution (up.{n-1} runs first); diffusers by order of use.
        level = n - 1 - i
        for j in range(layers + 1):
            resnet("decoder.up.%d.block.%d" % (level, j) if ldm else "decoder.up_blocks.%d.resnets.%d" % (i, j), cin, c)
            cin = c
        if i < n - 1:
            conv("decoder.up.%d.upsample.conv" % level if ldm else "decoder.up_blocks.%d.upsamplers.0.conv" % i, c, c, 3)
    norm("decoder.norm_out" if ldm else "decoder.conv_norm_out", block_out[0])
    conv("decoder.conv_out", in_ch, block_out[0], 3)
    return s


class ConvNet(nn.Module):
    """The DC/DSA ConvNet: depth x [conv3x3, norm, ReLU, avgpool2], then one Linear."""

    def __init__(self, channel, num_classes, width=128, depth=3, norm="instancenorm", im_size=32):
        super().__init__()
        layers = []
        c = channel
        side = 32 if im_size == 28 else im_size
        for d in range(depth):
            layers.append(nn.Conv2d(c, width, 3, padding=3 if channel == 1 and d == 0 else 1))
            if norm == "instancenorm":
                layers.append(nn.GroupNorm(width, width, affine=True))
            elif norm == "batchnorm":
                layers.append(nn.BatchNorm2d(width))
            layers += [nn.ReLU(inplace=True), nn.AvgPool2d(2, 2)]
            c = width
            side //= 2
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(width * side * side, num_classes)


def shapes_of(model):
    return collections.OrderedDict((k, list(v.shape)) for k, v in model.state_dict().items())


def main():
    cases = {}
    for cfg in ("XL", "S"):
        depth, hidden, heads = DIT_CONFIGS[cfg]
        cases["dit_%s2_official" % cfg] = (dit_official(depth, hidden, 2), {
            "family": "dit", "name": "DiT-%s/2" % cfg, "naming": "official", "depth": depth, "hidden": hidden,
            "heads": heads, "patch": 2, "inChannels": 4, "learnSigma": True, "numClasses": 1000, "latentSize": 32})
    cases["dit_B4_official_64"] = (dit_official(12, 768, 4, num_classes=10, latent=64, learn_sigma=False), {
        "family": "dit", "name": "DiT-B/4", "naming": "official", "depth": 12, "hidden": 768, "heads": 12, "patch": 4,
        "inChannels": 4, "learnSigma": False, "numClasses": 10, "latentSize": 64})
    cases["dit_custom_official"] = (dit_official(4, 192, 2, in_ch=4, num_classes=10, latent=8), {
        "family": "dit", "name": "DiT (depth 4, hidden 192, patch 2)", "naming": "official", "depth": 4, "hidden": 192,
        "heads": None, "patch": 2, "inChannels": 4, "learnSigma": True, "numClasses": 10, "latentSize": 8})
    cases["dit_XL2_diffusers"] = (dit_diffusers(28, 1152, 2), {
        "family": "dit", "name": "DiT-XL/2", "naming": "diffusers", "depth": 28, "hidden": 1152, "heads": 16,
        "patch": 2, "inChannels": 4, "learnSigma": True, "numClasses": 1000, "latentSize": None})
    cases["sd_vae_diffusers"] = (vae(), {
        "family": "autoencoder-kl", "name": "AutoencoderKL (Stable Diffusion VAE)", "naming": "diffusers",
        "blockOutChannels": [128, 256, 512, 512], "layersPerBlock": 2, "inChannels": 3, "outChannels": 3,
        "latentChannels": 4, "downsample": 8, "midAttention": "to_q/to_k/to_v"})
    cases["sd_vae_diffusers_old_attention"] = (vae(attn="old"), {
        "family": "autoencoder-kl", "name": "AutoencoderKL (Stable Diffusion VAE)", "naming": "diffusers",
        "blockOutChannels": [128, 256, 512, 512], "layersPerBlock": 2, "inChannels": 3, "outChannels": 3,
        "latentChannels": 4, "downsample": 8, "midAttention": "query/key/value"})
    cases["sd_vae_ldm"] = (vae(naming="ldm"), {
        "family": "autoencoder-kl", "name": "AutoencoderKL (Stable Diffusion VAE)", "naming": "ldm",
        "blockOutChannels": [128, 256, 512, 512], "layersPerBlock": 2, "inChannels": 3, "outChannels": 3,
        "latentChannels": 4, "downsample": 8, "midAttention": "q/k/v"})
    cases["small_vae_diffusers"] = (vae(block_out=(32, 64, 64), layers=1, in_ch=1, latent=4), {
        "family": "autoencoder-kl", "name": "AutoencoderKL", "naming": "diffusers", "blockOutChannels": [32, 64, 64],
        "layersPerBlock": 1, "inChannels": 1, "outChannels": 1, "latentChannels": 4, "downsample": 4,
        "midAttention": "to_q/to_k/to_v"})
    for arch, classes, depth in (("resnet18", 10, 18), ("resnet50", 1000, 50), ("resnet101", 100, 101)):
        m = getattr(torchvision.models, arch)(num_classes=classes)
        cases[arch] = (shapes_of(m), {"family": "resnet", "name": "ResNet-%d" % depth, "naming": "torchvision",
                                      "depth": depth, "numClasses": classes, "inChannels": 3, "norm": "batch",
                                      "stemKernel": 7})
    m = torchvision.models.resnet18(num_classes=10, norm_layer=lambda c: nn.GroupNorm(c, c))
    m.conv1 = nn.Conv2d(1, 64, 3, 1, 1, bias=False)
    cases["resnet18_instancenorm_small_stem"] = (shapes_of(m), {
        "family": "resnet", "name": "ResNet-18", "naming": "torchvision", "depth": 18, "numClasses": 10,
        "inChannels": 1, "norm": "instance", "stemKernel": 3})
    cases["convnet3_fmnist"] = (shapes_of(ConvNet(1, 10, im_size=28)), {
        "family": "convnet", "name": "ConvNet-3", "naming": "dc", "depth": 3, "width": 128, "inChannels": 1,
        "numClasses": 10, "norm": "instance", "inputSize": 32})
    cases["convnet4_batchnorm"] = (shapes_of(ConvNet(3, 100, width=64, depth=4, norm="batchnorm", im_size=64)), {
        "family": "convnet", "name": "ConvNet-4", "naming": "dc", "depth": 4, "width": 64, "inChannels": 3,
        "numClasses": 100, "norm": "batch", "inputSize": 64})
    cases["convnet5_nonorm"] = (shapes_of(ConvNet(3, 10, depth=5, norm="none", im_size=128)), {
        "family": "convnet", "name": "ConvNet-5", "naming": "dc", "depth": 5, "width": 128, "inChannels": 3,
        "numClasses": 10, "norm": "none", "inputSize": 128})

    for classes in (1000, 10):
        cases["mobilenet_v2_%d" % classes] = (shapes_of(torchvision.models.mobilenet_v2(num_classes=classes)), {
            "family": "mobilenet_v2", "name": "MobileNetV2", "naming": "torchvision", "numClasses": classes,
            "inChannels": 3, "blocks": 17, "lastChannels": 1280, "widthMultiplier": 1})
        cases["efficientnet_b0_%d" % classes] = (shapes_of(torchvision.models.efficientnet_b0(num_classes=classes)), {
            "family": "efficientnet", "name": "EfficientNet-B0", "naming": "torchvision", "variant": "b0",
            "numClasses": classes, "inChannels": 3, "blocks": [1, 2, 2, 3, 3, 4, 1]})
    cases["mobilenet_v2_half"] = (shapes_of(torchvision.models.mobilenet_v2(width_mult=0.5)), {
        "family": "mobilenet_v2", "name": "MobileNetV2 (stem 16, 17 blocks, 1280 features)", "naming": "torchvision",
        "widthMultiplier": None})
    cases["efficientnet_b1"] = (shapes_of(torchvision.models.efficientnet_b1()), {
        "family": "efficientnet", "name": "EfficientNet (stem 32, blocks [2,3,3,4,4,5,2], 1280 features)",
        "naming": "torchvision", "variant": None, "blocks": [2, 3, 3, 4, 4, 5, 2]})
    cases["resnetap10_instance"] = (shapes_of(ResNetAP([1, 1, 1, 1], 10, "instance", "large")), {
        "family": "resnetap", "name": "ResNet-AP-10", "naming": "idc", "depth": 10, "blocks": [1, 1, 1, 1],
        "numClasses": 10, "inChannels": 3, "stemKernel": 7, "norm": "instance"})
    cases["resnetap18_batch_1ch"] = (shapes_of(ResNetAP([2, 2, 2, 2], 100, "batch", "mid", nch=1)), {
        "family": "resnetap", "name": "ResNet-AP-18", "naming": "idc", "depth": 18, "numClasses": 100,
        "inChannels": 1, "stemKernel": 3, "norm": "batch"})

    def numel(shapes):
        total = 0
        for s in shapes.values():
            n = 1
            for d in s:
                n *= d
            total += n
        return total

    xl = cases["dit_XL2_official"][0]
    assert len(xl) == 292 and numel(xl) == 675129632, (len(xl), numel(xl))
    assert numel(cases["sd_vae_diffusers"][0]) == 83653863, numel(cases["sd_vae_diffusers"][0])
    assert numel(cases["sd_vae_ldm"][0]) == 83653863
    # torchvision's published parameter counts: 3,504,872 and 5,288,548
    assert sum(p.numel() for p in torchvision.models.mobilenet_v2().parameters()) == 3504872
    assert sum(p.numel() for p in torchvision.models.efficientnet_b0().parameters()) == 5288548
    save_json(fixture_path("io", "architectures.json"),
              {k: {"expected": e, "shapes": s} for k, (s, e) in cases.items()})


if __name__ == "__main__":
    main()
