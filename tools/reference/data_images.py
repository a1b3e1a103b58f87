"""PNG / JPEG decoding fixtures: files plus the pixels PIL decodes from them (test/fixtures/data/).

PIL's encoder picks its own filters and never writes 2/4-bit grey, 16-bit colour or Adam7, so most PNGs here are
assembled by `craft_png` below (explicit filter type per row, optional Adam7) and only *decoded* by PIL: the expected
pixels come from PIL, independent of our TypeScript codec. A few PNGs and JPEGs are written by PIL itself.

Run: /usr/bin/python3 tools/reference/data_images.py
"""
import io
import struct
import zlib

import numpy as np
import torch
from PIL import Image
from torchvision.utils import save_image

from common import fixture_path, save_json, save_safetensors

ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
SAMPLES = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def pack_rows(samples, depth):
    """samples: [h, w*spp] ints -> list of packed byte rows (big-endian, MSB first)."""
    rows = []
    for r in samples:
        if depth == 16:
            rows.append(b"".join(struct.pack(">H", int(v)) for v in r))
        elif depth == 8:
            rows.append(bytes(int(v) for v in r))
        else:
            bits = "".join(format(int(v), "0%db" % depth) for v in r)
            bits += "0" * (-len(bits) % 8)
            rows.append(bytes(int(bits[i:i + 8], 2) for i in range(0, len(bits), 8)))
    return rows


def paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else (b if pb <= pc else c)


def filter_rows(rows, bpp, first_filter):
    out = b""
    prev = bytes(len(rows[0]))
    for y, raw in enumerate(rows):
        f = (first_filter + y) % 5
        line = bytearray([f])
        for i, x in enumerate(raw):
            a = raw[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            pred = [0, a, b, (a + b) >> 1, paeth(a, b, c)][f]
            line.append((x - pred) & 0xFF)
        out += bytes(line)
        prev = raw
    return out


def craft_png(samples, color_type, depth, interlace=False, palette=None, trns=None):
    """samples: uint array [h, w, spp]. Rows use filter types 0,1,2,3,4,0,... (each pass restarts the cycle)."""
    h, w, spp = samples.shape
    bpp = max(1, spp * depth // 8)
    if interlace:
        data = b""
        for k, (x0, y0, dx, dy) in enumerate(ADAM7):
            sub = samples[y0::dy, x0::dx]
            if sub.shape[0] == 0 or sub.shape[1] == 0:
                continue
            data += filter_rows(pack_rows(sub.reshape(sub.shape[0], -1), depth), bpp, k)
    else:
        data = filter_rows(pack_rows(samples.reshape(h, -1), depth), bpp, 0)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, color_type, 0, 0, int(interlace)))
    if palette is not None:
        png += chunk(b"PLTE", bytes(palette.astype(np.uint8).ravel()))
    if trns is not None:
        png += chunk(b"tRNS", bytes(trns.astype(np.uint8)))
    # an ancillary chunk the decoder must skip
    png += chunk(b"tEXt", b"Comment\x00fixture")
    # split the data over two IDAT chunks, which decoders must concatenate
    z = zlib.compress(data, 9)
    png += chunk(b"IDAT", z[: len(z) // 2]) + chunk(b"IDAT", z[len(z) // 2:]) + chunk(b"IEND", b"")
    return png


def pil_pixels(png_bytes):
    """What PIL decodes, as uint8 HWC in the layout our decoder promises (16-bit grey: PIL's 'I' values >> 8)."""
    im = Image.open(io.BytesIO(png_bytes))
    im.load()
    if im.mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    if im.mode == "1":
        im = im.convert("L")
    if png_bytes[25] == 4 and im.mode == "RGBA":  # PIL opens 16-bit grey+alpha as RGBA with equal R, G, B
        im = im.convert("LA")
    a = np.array(im)
    if im.mode in ("I", "I;16", "I;16B"):
        a = (a.astype(np.int64) >> 8).astype(np.uint8)
    if a.ndim == 2:
        a = a[:, :, None]
    return a.astype(np.uint8)


def main():
    rng = np.random.default_rng(1234)
    cases = {}
    files = {}

    def add(name, png):
        path = fixture_path("data", "png", name + ".png")
        with open(path, "wb") as f:
            f.write(png)
        cases[name] = torch.from_numpy(pil_pixels(png))
        files[name] = name + ".png"

    def rand(h, w, spp, depth):
        return rng.integers(0, 2 ** depth, size=(h, w, spp))

    for depth in (1, 2, 4, 8, 16):
        add("gray%d" % depth, craft_png(rand(7, 13, 1, depth), 0, depth))
    for depth in (8, 16):
        add("rgb%d" % depth, craft_png(rand(6, 9, 3, depth), 2, depth))
        add("gray_alpha%d" % depth, craft_png(rand(5, 7, 2, depth), 4, depth))
        add("rgba%d" % depth, craft_png(rand(6, 5, 4, depth), 6, depth))
    for depth in (1, 2, 4, 8):
        n = min(2 ** depth, 20)
        pal = rng.integers(0, 256, size=(n, 3))
        add("palette%d" % depth, craft_png(rng.integers(0, n, size=(5, 11, 1)), 3, depth, palette=pal))
    pal = rng.integers(0, 256, size=(6, 3))
    # tRNS shorter than the palette: the remaining entries are opaque
    add("palette8_trns", craft_png(rng.integers(0, 6, size=(4, 6, 1)), 3, 8, palette=pal, trns=np.array([0, 128, 255, 7])))
    # Adam7, including sizes where some passes are empty
    add("adam7_rgb8", craft_png(rand(11, 13, 3, 8), 2, 8, interlace=True))
    add("adam7_gray2", craft_png(rand(9, 10, 1, 2), 0, 2, interlace=True))
    add("adam7_rgba16", craft_png(rand(5, 3, 4, 16), 6, 16, interlace=True))
    add("adam7_palette4", craft_png(rng.integers(0, 16, size=(3, 2, 1)), 3, 4, interlace=True,
                                    palette=rng.integers(0, 256, size=(16, 3))))
    add("adam7_gray8_1x1", craft_png(rand(1, 1, 1, 8), 0, 8, interlace=True))

    # PNGs written by PIL's own encoder
    for mode, arr in [("L", rng.integers(0, 256, (8, 10), dtype=np.uint8)),
                      ("RGB", rng.integers(0, 256, (8, 10, 3), dtype=np.uint8)),
                      ("RGBA", rng.integers(0, 256, (8, 10, 4), dtype=np.uint8))]:
        buf = io.BytesIO()
        Image.fromarray(arr, mode).save(buf, format="PNG")
        add("pil_" + mode.lower(), buf.getvalue())
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (8, 10, 3), dtype=np.uint8), "RGB").quantize(7).save(buf, format="PNG")
    add("pil_p", buf.getvalue())
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 65536, (6, 7)).astype(np.uint16), "I;16").save(buf, format="PNG")
    add("pil_i16", buf.getvalue())

    save_safetensors(fixture_path("data", "png", "expected.safetensors"), cases)

    # RGB -> L as PIL's convert('L'), over random pixels plus the extremes
    rgb = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    rgb[0, :8] = [[0, 0, 0], [255, 255, 255], [255, 0, 0], [0, 255, 0], [0, 0, 255], [1, 2, 3], [128, 128, 128], [254, 1, 127]]
    lum = np.array(Image.fromarray(rgb, "RGB").convert("L"))

    # JPEGs written and decoded by PIL (libjpeg): colour with 4:2:0 and 4:4:4 chroma, and greyscale
    yy, xx = np.mgrid[0:20, 0:24]
    smooth = np.stack([xx * 10, yy * 12, (xx + yy) * 5], -1) + rng.integers(0, 20, (20, 24, 3))
    smooth = np.clip(smooth, 0, 255).astype(np.uint8)
    jpeg_expected = {}
    for name, im, sub in [("rgb420", Image.fromarray(smooth, "RGB"), 2), ("rgb444", Image.fromarray(smooth, "RGB"), 0),
                          ("gray", Image.fromarray(smooth[:, :, 0], "L"), 0)]:
        path = fixture_path("data", "jpeg", name + ".jpg")
        im.save(path, format="JPEG", quality=90, subsampling=sub)
        dec = np.array(Image.open(path))
        jpeg_expected[name] = torch.from_numpy(dec if dec.ndim == 3 else dec[:, :, None])
    save_safetensors(fixture_path("data", "jpeg", "expected.safetensors"), jpeg_expected)

    # torchvision save_image: float tensors (some values outside [0, 1]) written as PNGs
    g = torch.Generator().manual_seed(7)
    save_in = {"rgb": torch.rand(3, 5, 7, generator=g) * 1.4 - 0.2, "gray": torch.rand(1, 5, 7, generator=g) * 1.4 - 0.2}
    # values on the rounding boundaries: (k + 0.5) / 255 and exactly k / 255
    save_in["rgb"][0, 0, :4] = torch.tensor([0.5 / 255, 1.5 / 255, 254.5 / 255, 3 / 255])
    for name, t in save_in.items():
        save_image(t, fixture_path("data", "save_image", name + ".png"))
    save_safetensors(fixture_path("data", "save_image", "inputs.safetensors"), save_in)

    save_safetensors(fixture_path("data", "convert_l.safetensors"),
                     {"rgb": torch.from_numpy(rgb), "l": torch.from_numpy(lum)})
    save_json(fixture_path("data", "png", "cases.json"), files)


if __name__ == "__main__":
    main()
