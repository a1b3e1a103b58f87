// Image decoding by magic, PIL-compatible channel conversion, tensor <-> image as ToTensor / save_image, resizing.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { InputError } from "../../src/errors.js";
import {
  convertChannels,
  decodeImage,
  imageToTensor,
  resizeImages,
  tensorToImage,
  tensorToPng,
} from "../../src/io/image.js";
import { decodePng } from "../../src/io/png.js";
import { loadSafetensors } from "../../src/io/safetensors.js";
import * as torch from "../../src/torch/index.js";
import { fixture } from "../helpers/fixtures.js";

test("RGB -> grey equals PIL's convert('L') exactly", () => {
  const f = loadSafetensors(fixture("data", "convert_l.safetensors"));
  const rgb = f.get("rgb")!;
  const [h, w] = rgb.shape;
  const grey = convertChannels({ width: w, height: h, channels: 3, data: rgb.toArray() as Uint8Array }, 1);
  assert.equal(grey.channels, 1);
  assert.deepEqual(Array.from(grey.data), f.get("l")!.toNumbers());
});

test("grey -> RGB replicates and alpha is dropped", () => {
  const la = { width: 2, height: 1, channels: 2 as const, data: new Uint8Array([10, 99, 200, 0]) };
  assert.deepEqual(Array.from(convertChannels(la, 3).data), [10, 10, 10, 200, 200, 200]);
  assert.deepEqual(Array.from(convertChannels(la, 1).data), [10, 200]);
  const rgba = { width: 1, height: 1, channels: 4 as const, data: new Uint8Array([1, 2, 3, 4]) };
  assert.deepEqual(Array.from(convertChannels(rgba, 3).data), [1, 2, 3]);
});

test("JPEG decoding (jpeg-js) is close to PIL/libjpeg on PIL-written files", () => {
  // The decoders differ in IDCT rounding and, for subsampled chroma, in upsampling (libjpeg's "fancy" triangle
  // filter vs jpeg-js's replication). Measured on these q90 files: grey max 1 (mean 0.07), 4:4:4 max 3 (mean 0.57),
  // 4:2:0 max 11 (mean 2.5). Limits: [max, mean] per file, a little above the measurements.
  const limits: Record<string, [number, number]> = { gray: [1, 0.1], rgb444: [3, 0.7], rgb420: [12, 3] };
  const expected = loadSafetensors(fixture("data", "jpeg", "expected.safetensors"));
  for (const [name, [maxLimit, meanLimit]] of Object.entries(limits)) {
    const img = decodeImage(readFileSync(fixture("data", "jpeg", `${name}.jpg`)), name);
    const want = expected.get(name)!;
    assert.deepEqual([img.height, img.width, img.channels], want.shape, `${name}: shape`);
    const w = want.toNumbers();
    let maxDiff = 0;
    let sum = 0;
    for (let i = 0; i < w.length; i++) {
      const d = Math.abs(img.data[i] - w[i]);
      maxDiff = Math.max(maxDiff, d);
      sum += d;
    }
    const mean = sum / w.length;
    assert.ok(
      maxDiff <= maxLimit && mean <= meanLimit,
      `${name}: max |diff| ${maxDiff}, mean ${mean.toFixed(3)} (limits ${maxLimit}, ${meanLimit})`,
    );
  }
});

test("decodeImage names the file on errors: unknown format, truncated JPEG, corrupt PNG", () => {
  assert.throws(
    () => decodeImage(new Uint8Array([0x47, 0x49, 0x46, 0x38]), "a/b.gif"),
    (e: Error) => e instanceof InputError && /^a\/b\.gif: not a PNG or JPEG/.test(e.message),
  );
  const jpg = readFileSync(fixture("data", "jpeg", "rgb444.jpg"));
  assert.throws(
    () => decodeImage(jpg.subarray(0, jpg.length >> 1), "x.jpg"),
    (e: Error) => e instanceof InputError && /^x\.jpg: /.test(e.message),
  );
  const png = readFileSync(fixture("data", "png", "rgb8.png"));
  assert.throws(() => decodeImage(png.subarray(0, 60), "y.png"), /^InputError: y\.png: invalid PNG: truncated/);
});

test("imageToTensor is ToTensor: CHW float32 = value / 255, with channel conversion on request", () => {
  const img = { width: 2, height: 1, channels: 3 as const, data: new Uint8Array([0, 51, 255, 10, 20, 30]) };
  const t = imageToTensor(img);
  assert.deepEqual(t.shape, [3, 1, 2]);
  assert.equal(t.dtype, "float32");
  assert.deepEqual(
    Array.from(t.toFloat32Array()),
    [0, 10, 51, 20, 255, 30].map((v) => Math.fround(v / 255)),
  );
  const g = imageToTensor(img, 1);
  assert.deepEqual(g.shape, [1, 1, 2]);
  const l = convertChannels(img, 1).data;
  assert.deepEqual(
    Array.from(g.toFloat32Array()),
    [l[0], l[1]].map((v) => Math.fround(v / 255)),
  );
});

test("tensorToPng quantises as torchvision's save_image (files written by save_image)", () => {
  const inputs = loadSafetensors(fixture("data", "save_image", "inputs.safetensors"));
  for (const name of ["rgb", "gray"]) {
    const t = inputs.get(name)!;
    const ours = decodePng(tensorToPng(t));
    const theirs = decodePng(readFileSync(fixture("data", "save_image", `${name}.png`)));
    // save_image writes 1-channel tensors as RGB with equal channels: compare against its first channel
    const c = t.size(0);
    assert.equal(ours.channels, c);
    const want = Array.from(
      { length: ours.width * ours.height * c },
      (_, i) => theirs.data[Math.floor(i / c) * theirs.channels + (i % c)],
    );
    assert.deepEqual(Array.from(ours.data), want, name);
  }
  // and the tensor -> image -> tensor round trip is exact on multiples of 1/255
  const x = torch.arange(0, 256).to("float32").div(255).reshape(1, 16, 16);
  assert.deepEqual(
    Array.from(tensorToImage(x).data),
    Array.from({ length: 256 }, (_, i) => i),
  );
});

test("resizeImages: size, uint8 rounding, identity at the same size, antialias differs only when shrinking", () => {
  const x = torch.rand([2, 3, 12, 10], { generator: new torch.Generator(3) });
  const same = resizeImages(x, [12, 10]);
  assert.deepEqual(Array.from(same.toFloat32Array()), Array.from(x.toFloat32Array()));
  const small = resizeImages(x, [6, 5]);
  const plain = resizeImages(x, [6, 5], { antialias: false });
  assert.deepEqual(small.shape, [2, 3, 6, 5]);
  assert.ok(small.sub(plain).abs().max().item() > 1e-3, "antialias must change a 2x shrink");
  const up = resizeImages(x, [24, 20]);
  const upPlain = resizeImages(x, [24, 20], { antialias: false });
  assert.ok(up.sub(upPlain).abs().max().item() < 1e-6, "antialias has no effect when enlarging");
  const u8 = torch.round(x.mul(255)).to("uint8");
  const r8 = resizeImages(u8, [6, 5]);
  assert.equal(r8.dtype, "uint8");
  const viaFloat = torch.round(resizeImages(u8.to("float32"), [6, 5]));
  assert.deepEqual(r8.toNumbers(), viaFloat.toNumbers());
});
