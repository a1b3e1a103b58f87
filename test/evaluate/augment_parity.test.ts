// Augmentations whose draws follow torchvision's per-image order, against torchvision run image by image
// (tools/reference/augment_reference.py): same seed -> same parameters and same pixels.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import {
  randomCropWithPadding,
  randomHorizontalFlip,
  randomResizedCrop,
  randomResizedCropBox,
  sampleBeta,
} from "../../src/evaluate/augment.js";
import { loadSafetensors } from "../../src/io/safetensors.js";
import * as torch from "../../src/torch/index.js";
import { assertClose, fixture } from "../helpers/fixtures.js";

const ref = loadSafetensors(fixture("data", "augment.safetensors"));
const meta = JSON.parse(readFileSync(fixture("data", "augment.json"), "utf8"));
const get = (k: string) => ref.get(k)!;

for (const name of ["rrc_default", "rrc_protocol", "rrc_fallback", "rrc_downscale"]) {
  test(`RandomResizedCrop parity (${name}): boxes and images equal torchvision's`, () => {
    const m = meta[name];
    const x = get(`${name}.input`);
    const [n, , h, w] = x.shape;
    const gen = new torch.Generator(m.seed);
    const boxes = Array.from({ length: n }, () => randomResizedCropBox(h, w, gen, m.scale));
    assert.deepEqual(
      boxes.flatMap((b) => [b.top, b.left, b.height, b.width]),
      get(`${name}.params`).toNumbers(),
    );
    const out = randomResizedCrop(x, new torch.Generator(m.seed), {
      size: m.size,
      scale: m.scale,
      antialias: m.antialias,
    });
    // same ATen resampling kernels on the same crops: equal up to float32 rounding
    assertClose(out, get(`${name}.output`), 1e-6, name);
  });
}

test("the fallback case really is the centre crop (width limited by the 4/3 ratio)", () => {
  // 6 x 60 image: every attempt fails, the crop is 6 high and round(6 * 4/3) = 8 wide, centred
  assert.deepEqual(get("rrc_fallback.params").toNumbers().slice(0, 4), [0, 26, 6, 8]);
});

test("RandomHorizontalFlip parity: one torch.rand draw per image, in batch order", () => {
  const out = randomHorizontalFlip(get("flip.input"), new torch.Generator(meta.flip.seed));
  assert.deepEqual(out.toNumbers(), get("flip.output").toNumbers());
});

test("RandomCrop(padding=4) parity: offsets i, j per image", () => {
  const out = randomCropWithPadding(get("crop.input"), new torch.Generator(meta.crop.seed), meta.crop.padding);
  assert.deepEqual(out.toNumbers(), get("crop.output").toNumbers());
});

test("Beta draws equal torch.distributions.Beta(a, b).sample() under the same seed", () => {
  for (const name of ["beta_1_1", "beta_05_2"]) {
    const m = meta[name];
    const gen = new torch.Generator(m.seed);
    const ours = Array.from({ length: 6 }, () => sampleBeta(m.a, m.b, gen));
    assert.deepEqual(ours, get(name).toNumbers(), name);
  }
});
