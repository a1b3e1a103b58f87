// Augmentation semantics: shapes, ranges, seeded determinism, and each formula checked against a plain-JS version.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  applyColorJitter,
  colorJitter,
  colorJitterParams,
  cutmix,
  lighting,
  lightingOffsets,
  randomCropWithPadding,
  randomHorizontalFlip,
  randomResizedCrop,
  randomResizedCropBox,
  shufflePatches,
} from "../../src/evaluate/augment.js";
import { normalize } from "../../src/io/image.js";
import * as torch from "../../src/torch/index.js";
import type { Tensor } from "../../src/torch/index.js";

const gen = (seed: number) => new torch.Generator(seed);
const batch = (shape: number[], seed = 0) => torch.rand(shape, { generator: gen(seed) });
const same = (a: Tensor, b: Tensor) => a.shape.join() === b.shape.join() && torch.equal(a, b);

/** Same seed -> identical output; other seeds -> some different output. */
function checkSeeded(f: (g: torch.Generator) => Tensor, what: string): void {
  assert.ok(same(f(gen(5)), f(gen(5))), `${what}: same seed must give the same output`);
  assert.ok(
    [6, 7, 8].some((s) => !same(f(gen(5)), f(gen(s)))),
    `${what}: other seeds must give other outputs`,
  );
}

test("every augmentation is reproducible under a seed and varies with it", () => {
  const x = batch([6, 3, 12, 12]);
  checkSeeded((g) => randomResizedCrop(x, g, { size: 8, scale: [0.5, 1] }), "randomResizedCrop");
  checkSeeded((g) => randomHorizontalFlip(x, g), "randomHorizontalFlip");
  checkSeeded((g) => randomCropWithPadding(x, g), "randomCropWithPadding");
  checkSeeded((g) => colorJitter(x, g, { brightness: 0.4, contrast: 0.4, saturation: 0.4 }), "colorJitter");
  checkSeeded((g) => lighting(x, g), "lighting");
  checkSeeded((g) => shufflePatches(x, g, 2), "shufflePatches");
  checkSeeded((g) => cutmix(x, g).images, "cutmix");
});

test("RandomResizedCrop boxes respect the scale and ratio ranges (up to rounding) and stay inside the image", () => {
  const [H, W] = [32, 40];
  const g = gen(1);
  for (const scale of [
    [0.5, 1],
    [0.08, 1],
  ] as const) {
    for (let k = 0; k < 300; k++) {
      const b = randomResizedCropBox(H, W, g, scale);
      assert.ok(b.top >= 0 && b.left >= 0 && b.top + b.height <= H && b.left + b.width <= W, JSON.stringify(b));
      // w = round(sqrt(A r)), h = round(sqrt(A / r)): undo the rounding by +-0.5
      const area = [(b.width - 0.5) * (b.height - 0.5), (b.width + 0.5) * (b.height + 0.5)].map((a) => a / (H * W));
      assert.ok(area[0] <= scale[1] && area[1] >= scale[0], `area ${area} outside ${scale}`);
      assert.ok(
        (b.width + 0.5) / (b.height - 0.5) >= 3 / 4 && (b.width - 0.5) / (b.height + 0.5) <= 4 / 3,
        `ratio of ${JSON.stringify(b)}`,
      );
    }
  }
  const out = randomResizedCrop(batch([4, 3, H, W]), g, { size: [16, 20], scale: [0.5, 1] });
  assert.deepEqual(out.shape, [4, 3, 16, 20]);
  // bilinear resampling of [0, 1] data stays in [0, 1]
  assert.ok(out.min().item() >= 0 && out.max().item() <= 1);
});

test("horizontal flip mirrors whole images; p = 0 and p = 1 are never / always", () => {
  const x = batch([40, 2, 3, 5]);
  const y = randomHorizontalFlip(x, gen(3));
  const mirrored = x.flip(3);
  let flips = 0;
  for (let i = 0; i < 40; i++) {
    const [xi, yi, mi] = [x, y, mirrored].map((t) => t.select(0, i));
    if (same(yi, mi)) flips++;
    else assert.ok(same(yi, xi), `image ${i} is neither itself nor its mirror`);
  }
  assert.ok(flips > 5 && flips < 35, `${flips} of 40 flipped at p = 0.5`);
  // the mirror itself: column w comes from column W - 1 - w
  const v = x.select(0, 0).select(0, 0).toNumbers();
  const m = mirrored.select(0, 0).select(0, 0).toNumbers();
  for (let r = 0; r < 3; r++) for (let c = 0; c < 5; c++) assert.equal(m[r * 5 + c], v[r * 5 + 4 - c]);
  assert.ok(same(randomHorizontalFlip(x, gen(1), 0), x));
  assert.ok(same(randomHorizontalFlip(x, gen(1), 1), mirrored));
});

test("padded random crop: a window of the zero-padded image at offsets in 0..2p", () => {
  const x = batch([3, 1, 4, 4]).add(1); // all values > 0, so padding shows as zeros
  const y = randomCropWithPadding(x, gen(2), 2);
  assert.deepEqual(y.shape, [3, 1, 4, 4]);
  const padded = torch.pad(x, [2, 2, 2, 2]);
  for (let i = 0; i < 3; i++) {
    let found = false;
    for (let dy = 0; dy <= 4 && !found; dy++)
      for (let dx = 0; dx <= 4 && !found; dx++)
        found = same(padded.select(0, i).narrow(1, dy, 4).narrow(2, dx, 4), y.select(0, i));
    assert.ok(found, `image ${i} is not a window of the padded image`);
  }
});

// ---- colour jitter ----

/** Plain-JS colour jitter of one CHW image (double precision), the spec written out. */
function jitterReference(
  img: number[],
  c: number,
  factors: number[],
  order: number[],
  style: "torchvision" | "idc",
): number[] {
  const wts = style === "idc" ? [0.299, 0.587, 0.114] : [0.2989, 0.587, 0.114];
  const plane = img.length / c;
  const grey = (v: number[]) =>
    Array.from({ length: plane }, (_, p) =>
      c === 1 ? v[p] : wts[0] * v[p] + wts[1] * v[plane + p] + wts[2] * v[2 * plane + p],
    );
  let v = img.slice();
  for (const op of order) {
    const f = factors[op];
    if (f === 1 || (op === 2 && c === 1)) continue;
    const g = grey(v);
    const mean = g.reduce((a, b) => a + b, 0) / plane;
    v = v.map((val, k) => {
      const ref = op === 0 ? 0 : op === 1 ? mean : g[k % plane];
      const out = f * val + (1 - f) * ref;
      return style === "torchvision" ? Math.min(1, Math.max(0, out)) : out;
    });
  }
  return v;
}

test("colour jitter: factor ranges, random order, and the blends equal a plain-JS version (both styles)", () => {
  const n = 300;
  const p = colorJitterParams(n, gen(4), { brightness: 0.4, contrast: 0.2, saturation: 0.9 });
  const orders = new Set(p.order.map((o) => o.join()));
  assert.equal(orders.size, 6, "all six orders occur");
  for (const o of p.order) assert.deepEqual([...o].sort(), [0, 1, 2]);
  const lo = [0.6, 0.8, 0.1];
  const hi = [1.4, 1.2, 1.9];
  for (const f of p.factors) f.forEach((v, j) => assert.ok(v >= lo[j] && v <= hi[j], `factor ${j} = ${v}`));
  const off = colorJitterParams(4, gen(4), { contrast: 0.5 });
  for (const f of off.factors) assert.ok(f[0] === 1 && f[2] === 1 && f[1] !== 1);

  for (const [c, style] of [
    [3, "torchvision"],
    [3, "idc"],
    [1, "torchvision"],
  ] as const) {
    const x = batch([5, c, 3, 4], 9).mul(1.2); // some values above 1 so that clamping matters
    const q = colorJitterParams(5, gen(10 + c), { brightness: 0.5, contrast: 0.5, saturation: 0.5 });
    const y = applyColorJitter(x, q, style).toNumbers();
    const plane = c * 12;
    for (let i = 0; i < 5; i++) {
      const want = jitterReference(x.select(0, i).toNumbers(), c, q.factors[i], q.order[i], style);
      const got = y.slice(i * plane, (i + 1) * plane);
      const err = Math.max(...got.map((g, k) => Math.abs(g - want[k])));
      assert.ok(err < 2e-6, `${style} C=${c} image ${i}: max err ${err}`);
    }
  }
});

test("saturation leaves 1-channel images unchanged; torchvision-style output stays in [0, 1]", () => {
  const g1 = batch([4, 1, 5, 5]);
  assert.ok(same(colorJitter(g1, gen(1), { saturation: 0.9 }), g1));
  const y = colorJitter(batch([8, 3, 5, 5]).mul(1.5), gen(2), { brightness: 0.9, contrast: 0.9, saturation: 0.9 });
  assert.ok(y.min().item() >= 0 && y.max().item() <= 1);
});

// ---- lighting ----

test("lighting adds per-image PCA offsets: sum_j eigvec[c][j] * alpha_j * eigval[j], alpha ~ N(0, 0.1)", () => {
  const eigval = [0.2175, 0.0188, 0.0045];
  const eigvec = [
    [-0.5675, 0.7192, 0.4009],
    [-0.5808, -0.0045, -0.814],
    [-0.5836, -0.6948, 0.4203],
  ];
  const n = 4;
  // the same alpha draws, made independently: normal_(0, 0.1) on an [N, 3] tensor
  const alphaT = torch.empty([n, 3]);
  torch.normalInto(alphaT, 0, 0.1, gen(7));
  const alpha = alphaT.toNumbers();
  const want = Array.from({ length: n }, (_, i) =>
    eigvec.map((row) => row.reduce((s, e, j) => s + e * alpha[i * 3 + j] * eigval[j], 0)),
  );
  const x = batch([n, 3, 2, 3]);
  const y = lighting(x, gen(7));
  const diff = y.sub(x).toNumbers();
  for (let i = 0; i < n; i++)
    for (let c = 0; c < 3; c++)
      for (let k = 0; k < 6; k++)
        assert.ok(Math.abs(diff[(i * 3 + c) * 6 + k] - want[i][c]) < 1e-6, `image ${i} channel ${c}`);
  // grey images: the mean of the three offsets
  const grey = lightingOffsets(n, 1, gen(7)).toNumbers();
  grey.forEach((v, i) => assert.ok(Math.abs(v - (want[i][0] + want[i][1] + want[i][2]) / 3) < 1e-6));
  assert.ok(same(lighting(x, gen(1), { alphastd: 0 }), x));
});

// ---- shuffle patches ----

test("shufflePatches permutes the grid's columns and rows of strips, per image; odd sizes keep their shape", () => {
  const [h, w] = [4, 6];
  const x = torch
    .arange(0, 30 * h * w)
    .to("float32")
    .reshape(30, 1, h, w);
  const y = shufflePatches(x, gen(3), 2);
  const seen = new Set<string>();
  for (let i = 0; i < 30; i++) {
    const src = x.select(0, i).select(0, 0);
    const out = y.select(0, i).select(0, 0);
    let match = "";
    for (const rows of [
      [0, 1],
      [1, 0],
    ])
      for (const cols of [
        [0, 1],
        [1, 0],
      ]) {
        // expected: strip r of rows / c of columns taken from the permuted source strips
        const r = torch.cat(
          rows.map((k) => src.narrow(0, k * 2, 2)),
          0,
        );
        const rc = torch.cat(
          cols.map((k) => r.narrow(1, k * 3, 3)),
          1,
        );
        if (same(rc, out)) match = `${rows}|${cols}`;
      }
    assert.ok(match, `image ${i} is not a strip permutation of its source`);
    seen.add(match);
  }
  assert.equal(seen.size, 4, "all four row/column orders occur");
  // 5 x 7 with factor 2: strips of 2 and 3 rows, 3 and 4 columns; same pixels, same shape
  const odd = torch.arange(0, 35).to("float32").reshape(1, 1, 5, 7);
  const z = shufflePatches(odd, gen(1), 2);
  assert.deepEqual(z.shape, [1, 1, 5, 7]);
  assert.deepEqual(
    [...z.toNumbers()].sort((a, b) => a - b),
    odd.toNumbers(),
  );
});

// ---- cutmix ----

test("cutmix: partner pixels exactly in the box, lambda = 1 - box area / (H W), p = 0 leaves the batch alone", () => {
  const [n, h, w] = [6, 10, 12];
  const x = batch([n, 2, h, w]);
  const lams = new Set<number>();
  for (let seed = 0; seed < 12; seed++) {
    const r = cutmix(x, gen(seed), { beta: 1 });
    const b = r.box!;
    assert.ok(0 <= b.top && b.top <= b.bottom && b.bottom <= h && 0 <= b.left && b.left <= b.right && b.right <= w);
    assert.equal(r.lam, 1 - ((b.bottom - b.top) * (b.right - b.left)) / (h * w));
    lams.add(r.lam);
    const partner = r.partner.toNumbers();
    assert.deepEqual(
      [...partner].sort(),
      Array.from({ length: n }, (_, i) => i),
    );
    const imgs = r.images.toNumbers();
    const src = x.toNumbers();
    const at = (t: number[], i: number, c: number, y: number, xx: number) => t[((i * 2 + c) * h + y) * w + xx];
    for (let i = 0; i < n; i++)
      for (let c = 0; c < 2; c++)
        for (let y = 0; y < h; y++)
          for (let xx = 0; xx < w; xx++) {
            const inBox = y >= b.top && y < b.bottom && xx >= b.left && xx < b.right;
            assert.equal(at(imgs, i, c, y, xx), at(src, inBox ? partner[i] : i, c, y, xx));
          }
  }
  assert.ok(lams.size > 5, "lambda varies with the seed");
  const none = cutmix(x, gen(0), { p: 0 });
  assert.ok(same(none.images, x) && none.lam === 1 && none.box === null);
  assert.deepEqual(none.partner.toNumbers(), [0, 1, 2, 3, 4, 5]);
});

test("normalize: (x - mean) / std per channel", () => {
  const x = batch([2, 3, 2, 2]);
  const y = normalize(x, [0.5, 0.4, 0.3], [0.2, 0.25, 0.5]).toNumbers();
  const v = x.toNumbers();
  const [m, s] = [
    [0.5, 0.4, 0.3],
    [0.2, 0.25, 0.5],
  ];
  v.forEach((val, k) => {
    const c = Math.floor(k / 4) % 3;
    assert.ok(Math.abs(y[k] - (val - m[c]) / s[c]) < 1e-6);
  });
  assert.throws(() => normalize(x, [0.5], [0.2]), /3 channels but 1 means/);
});
