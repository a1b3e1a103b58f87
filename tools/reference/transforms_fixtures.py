"""Validation-transform fixtures: what torchvision's ImageFolder pipeline does to a PIL image, for odd sizes and modes
(test/fixtures/data/transform/).

Each input is a PNG (lossless, so both sides start from the same pixels) or a JPEG; the expected output is
`Resize(256)` (shorter side, bilinear, PIL's antialiasing) then `CenterCrop(224)` of `Image.open(f).convert("RGB")`,
written as a PNG. Modes: RGB, L (greyscale), P (palette, with and without transparency), RGBA, and a CMYK JPEG
(Adobe), which PIL decodes as CMYK and converts itself. Sizes cover portrait, landscape, odd sides, a crop offset
of x.5 (Python's round: to even), small images that are enlarged and an extreme aspect ratio.

Run: /usr/bin/python3 tools/reference/transforms_fixtures.py
"""
import json
import os

import numpy as np
from PIL import Image
from torchvision import transforms

from common import fixture_path

TRANSFORM = transforms.Compose([transforms.Resize(256), transforms.CenterCrop(224)])


def picture(w, h, seed):
    """Smooth colour gradients with edges and mild noise: resampling differences show, and the PNG stays small."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 128 + 100 * np.sin(x / (7 + seed)) * np.cos(y / 11)
    g = 255 * (x + y) / (w + h)
    b = np.where((x // 37 + y // 23) % 2 == 0, 40, 215)
    img = np.stack([r, g, b], -1) + rng.normal(0, 6, (h, w, 3))
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def main():
    cases = {}

    def add(name, im, fmt="PNG", **save):
        path = fixture_path("data", "transform", f"{name}.{'jpg' if fmt == 'JPEG' else 'png'}")
        im.save(path, format=fmt, **save)
        with Image.open(path) as src:
            mode = src.mode
            out = TRANSFORM(src.convert("RGB"))
        out.save(fixture_path("data", "transform", f"{name}.expected.png"))
        cases[name] = {"file": os.path.basename(path), "mode": mode, "size": list(im.size)}

    for i, (w, h) in enumerate([(500, 375), (375, 500), (333, 257), (261, 300), (100, 80), (1000, 150), (256, 256)]):
        add(f"rgb_{w}x{h}", Image.fromarray(picture(w, h, i)))
    add("gray_317x233", Image.fromarray(picture(317, 233, 8)).convert("L"))
    pal = Image.fromarray(picture(290, 410, 9)).convert("P", palette=Image.ADAPTIVE, colors=64)
    add("palette_290x410", pal)
    trns = pal.copy()
    trns.info["transparency"] = 3
    add("palette_trns_290x410", trns)
    add("rgba_300x260", Image.fromarray(np.dstack([picture(300, 260, 10), np.full((260, 300), 128, np.uint8)])))
    add("cmyk_320x240", Image.fromarray(picture(320, 240, 11)).convert("CMYK"), fmt="JPEG", quality=95, subsampling=0)
    with open(fixture_path("data", "transform", "cases.json"), "w") as f:
        json.dump(cases, f, indent=1, sort_keys=True)
    print({k: v["mode"] for k, v in cases.items()})


if __name__ == "__main__":
    main()
