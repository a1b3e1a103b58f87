// Training-time augmentations of the evaluation protocols (docs/evaluation.md) on [N, C, H, W] float batches.
// Every draw comes from the Generator passed in, so a seed reproduces a run on any device.
//
// Per sample (each image its own draw): randomResizedCrop, randomHorizontalFlip, colorJitter, lighting,
// shufflePatches, randomCropWithPadding. Per batch: cutmix (one lambda, box and partner permutation per batch, as in
// the IDC/Minimax and RDED training loops).
//
// Draw order equals torchvision's per-image transforms where that is possible, and the parity tests check it:
// randomResizedCrop (RandomResizedCrop.get_params for image 0, 1, ...), randomHorizontalFlip (one torch.rand(1) per
// image) and randomCropWithPadding (i then j per image). The other draws are batched (same distributions, not
// torchvision's or Python's `random` streams).
import { resizeImages } from "../io/image.js";
import * as torch from "../torch/index.js";
import type { Generator, Tensor } from "../torch/index.js";

// ---------------------------------------------------------------------------------------------------------------
// small helpers
// ---------------------------------------------------------------------------------------------------------------

/** Python's round() for floats: halves go to the even neighbour. */
function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  return d > 0.5 ? f + 1 : d < 0.5 ? f : f % 2 === 0 ? f : f + 1;
}

/** One integer uniformly in [low, high), as torch.randint(low, high, (1,)). */
const randint1 = (gen: Generator, low: number, high: number) =>
  torch.tidy(() => torch.randint(low, high, [1], { generator: gen }).item());

/** Per-sample random permutations of 0..k-1 (argsort of uniform keys), as rows of numbers. */
function randomPermutations(gen: Generator, n: number, k: number): number[][] {
  const flat = torch.tidy(() => torch.argsort(torch.rand([n, k], { generator: gen }), 1).toNumbers());
  return Array.from({ length: n }, (_, i) => flat.slice(i * k, (i + 1) * k));
}

/**
 * out[n, :, y, x] = x[n, :, rows[n][y], cols[n][x]]: one gather for per-sample crops and shuffles. All rows[n] have
 * the same length, as do all cols[n].
 */
function pickPixels(x: Tensor, rows: number[][], cols: number[][]): Tensor {
  return torch.tidy(() => {
    const n = rows.length;
    const ix = (a: number[][], shape: number[]) =>
      torch.fromArray(BigInt64Array.from(a.flat(), BigInt), shape, { device: x.device });
    const batchIdx = ix(
      Array.from({ length: n }, (_, i) => [i]),
      [n, 1, 1],
    );
    const picked = torch.callOp("index.Tensor", x, [
      batchIdx,
      null,
      ix(rows, [n, rows[0].length, 1]),
      ix(cols, [n, 1, cols[0].length]),
    ]);
    // advanced indices separated by a slice move to the front: [N, H', W', C]
    return picked.permute(0, 3, 1, 2).contiguous();
  });
}

const range = (start: number, length: number) => Array.from({ length }, (_, i) => start + i);

function checkBatch(x: Tensor, what: string): [number, number, number, number] {
  if (x.ndim !== 4) throw new Error(`${what}: expected a [N, C, H, W] batch, got [${x.shape}]`);
  return x.shape as [number, number, number, number];
}

// ---------------------------------------------------------------------------------------------------------------
// RandomResizedCrop (torchvision): area fraction in `scale`, log-uniform aspect ratio in `ratio`, 10 attempts, then
// a centred crop of the closest allowed aspect ratio; the crop is resized bilinearly to `size`.
// ---------------------------------------------------------------------------------------------------------------

export interface CropBox {
  top: number;
  left: number;
  height: number;
  width: number;
}

export interface RandomResizedCropOptions {
  size: number | readonly [number, number];
  /** Area fraction range (torchvision default [0.08, 1]; the protocols use [0.5, 1]). */
  scale?: readonly [number, number];
  ratio?: readonly [number, number];
  /** torchvision's antialias=True (RDED passes it; PIL's resize in IDC filters too). Default true. */
  antialias?: boolean;
}

/** One crop box, drawing exactly what torchvision's RandomResizedCrop.get_params draws. */
export function randomResizedCropBox(
  height: number,
  width: number,
  gen: Generator,
  scale: readonly [number, number] = [0.08, 1],
  ratio: readonly [number, number] = [3 / 4, 4 / 3],
): CropBox {
  const area = height * width;
  // torchvision computes log(ratio) in float32 and draws float32 uniforms; reproduce both with the same ops.
  return torch.tidy(() => {
    const [logLo, logHi] = torch.log(torch.tensor([ratio[0], ratio[1]])).toNumbers();
    const u = torch.empty([1]);
    for (let attempt = 0; attempt < 10; attempt++) {
      torch.uniformInto(u, scale[0], scale[1], gen);
      const targetArea = area * u.item();
      torch.uniformInto(u, logLo, logHi, gen);
      const aspect = torch.exp(u).item();
      const w = roundHalfEven(Math.sqrt(targetArea * aspect));
      const h = roundHalfEven(Math.sqrt(targetArea / aspect));
      if (w > 0 && w <= width && h > 0 && h <= height) {
        const top = randint1(gen, 0, height - h + 1);
        const left = randint1(gen, 0, width - w + 1);
        return { top, left, height: h, width: w };
      }
    }
    const inRatio = width / height;
    const [rMin, rMax] = [Math.min(ratio[0], ratio[1]), Math.max(ratio[0], ratio[1])];
    let [w, h] = [width, height];
    if (inRatio < rMin) h = roundHalfEven(w / rMin);
    else if (inRatio > rMax) w = roundHalfEven(h * rMax);
    return { top: Math.floor((height - h) / 2), left: Math.floor((width - w) / 2), height: h, width: w };
  });
}

/** Random resized crop of every image (its own box), output [N, C, size, size] (or [N, C, h, w]). */
export function randomResizedCrop(x: Tensor, gen: Generator, options: RandomResizedCropOptions): Tensor {
  const [n, , h, w] = checkBatch(x, "randomResizedCrop");
  const size = typeof options.size === "number" ? ([options.size, options.size] as const) : options.size;
  return torch.tidy(() => {
    const out: Tensor[] = [];
    for (let i = 0; i < n; i++) {
      const b = randomResizedCropBox(h, w, gen, options.scale, options.ratio);
      const crop = x.narrow(0, i, 1).narrow(2, b.top, b.height).narrow(3, b.left, b.width);
      out.push(resizeImages(crop, size, { antialias: options.antialias ?? true }));
    }
    return torch.cat(out, 0);
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Flip and padded random crop
// ---------------------------------------------------------------------------------------------------------------

/** Mirrors each image left-right with probability p (one torch.rand draw per image, in batch order). */
export function randomHorizontalFlip(x: Tensor, gen: Generator, p = 0.5): Tensor {
  const [n] = checkBatch(x, "randomHorizontalFlip");
  return torch.tidy(() => {
    const mask = torch.rand([n], { generator: gen }).lt(p).reshape(n, 1, 1, 1).to(x.device);
    return torch.where(mask, x.flip(3), x);
  });
}

/**
 * CIFAR-style crop: zero-pad by `padding` on every side, then take an H x W window at a random offset (torchvision
 * RandomCrop(size, padding): offsets i then j drawn per image).
 */
export function randomCropWithPadding(x: Tensor, gen: Generator, padding = 4): Tensor {
  const [n, , h, w] = checkBatch(x, "randomCropWithPadding");
  return torch.tidy(() => {
    const padded = torch.pad(x, [padding, padding, padding, padding]);
    // randint over an [N, 2] tensor draws i0, j0, i1, j1, ... as per-image calls would
    const ij = torch.randint(0, 2 * padding + 1, [n, 2], { generator: gen }).toNumbers();
    const rows = Array.from({ length: n }, (_, i) => range(ij[2 * i], h));
    const cols = Array.from({ length: n }, (_, i) => range(ij[2 * i + 1], w));
    return pickPixels(padded, rows, cols);
  });
}

// ---------------------------------------------------------------------------------------------------------------
// ColorJitter(brightness, contrast, saturation): per image, factors uniform in [max(0, 1 - s), 1 + s], the three
// adjustments in a random order; each blends the image with a reference:
//   brightness: black;  contrast: the mean of the image's grey version;  saturation: the grey version.
// style "torchvision": clamp to [0, 1] after each step, grey = 0.2989 R + 0.587 G + 0.114 B.
// style "idc" (IDC/Minimax's own ColorJitter): the same blends without clamping, grey = 0.299 R + 0.587 G + 0.114 B.
// 1-channel images: the grey version is the image itself, so saturation changes nothing (as torchvision).
// ---------------------------------------------------------------------------------------------------------------

export interface ColorJitterOptions {
  brightness?: number;
  contrast?: number;
  saturation?: number;
  style?: "torchvision" | "idc";
}

/** Per image: factors[n] = [brightness, contrast, saturation] (1 = unchanged), order[n] = a permutation of 0..2. */
export interface ColorJitterParams {
  factors: number[][];
  order: number[][];
}

const LUMA = { torchvision: [0.2989, 0.587, 0.114], idc: [0.299, 0.587, 0.114] };

export function colorJitterParams(n: number, gen: Generator, options: ColorJitterOptions): ColorJitterParams {
  const strength = [options.brightness ?? 0, options.contrast ?? 0, options.saturation ?? 0];
  if (strength.some((s) => !(s >= 0))) throw new Error(`colorJitter: strengths must be >= 0, got ${strength}`);
  const order = randomPermutations(gen, n, 3);
  const u = torch.tidy(() => torch.rand([n, 3], { generator: gen }).toNumbers());
  const factors = Array.from({ length: n }, (_, i) =>
    strength.map((s, j) => {
      const lo = Math.max(0, 1 - s);
      return s === 0 ? 1 : lo + u[i * 3 + j] * (1 + s - lo);
    }),
  );
  return { factors, order };
}

function grey(x: Tensor, weights: number[]): Tensor {
  if (x.size(1) === 1) return x;
  const [r, g, b] = [0, 1, 2].map((c) => x.narrow(1, c, 1));
  return r.mul(weights[0]).add(g.mul(weights[1])).add(b.mul(weights[2]));
}

export function applyColorJitter(
  x: Tensor,
  p: ColorJitterParams,
  style: ColorJitterOptions["style"] = "torchvision",
): Tensor {
  const [n, c] = checkBatch(x, "colorJitter");
  const weights = LUMA[style];
  return torch.tidy(() => {
    let y = x;
    for (let slot = 0; slot < 3; slot++) {
      for (let op = 0; op < 3; op++) {
        // this op's factor for the images that apply it in this slot; 1 (exactly no change) for the others
        const f = p.order.map((ord, i) => (ord[slot] === op ? p.factors[i][op] : 1));
        if (f.every((v) => v === 1) || (op === 2 && c === 1)) continue;
        const ratio = torch.fromArray(Float32Array.from(f), [n, 1, 1, 1], { device: x.device });
        const ref = op === 0 ? null : op === 1 ? torch.mean(grey(y, weights), [1, 2, 3], true) : grey(y, weights);
        y = ref ? y.mul(ratio).add(ref.mul(torch.rsub(1, ratio))) : y.mul(ratio);
        // clamp only the images that applied the op (the others have not reached this step yet)
        if (style === "torchvision") y = torch.where(ratio.ne(1), y.clamp(0, 1), y);
      }
    }
    return y === x ? x.clone() : y;
  });
}

export function colorJitter(x: Tensor, gen: Generator, options: ColorJitterOptions): Tensor {
  return applyColorJitter(x, colorJitterParams(x.size(0), gen, options), options.style);
}

// ---------------------------------------------------------------------------------------------------------------
// Lighting: AlexNet-style PCA noise. Per image alpha ~ N(0, alphastd^2) per component; every pixel gets
// offset[c] = sum_j eigvec[c][j] * alpha[j] * eigval[j] (ImageNet's RGB principal components, as in IDC/Minimax).
// 1-channel images get the mean of the three channel offsets (the grey image's share of the RGB shift).
// No clamping, as in those codes.
// ---------------------------------------------------------------------------------------------------------------

export const IMAGENET_PCA = {
  eigval: [0.2175, 0.0188, 0.0045],
  eigvec: [
    [-0.5675, 0.7192, 0.4009],
    [-0.5808, -0.0045, -0.814],
    [-0.5836, -0.6948, 0.4203],
  ],
};

export interface LightingOptions {
  alphastd?: number;
  eigval?: readonly number[];
  eigvec?: readonly (readonly number[])[];
}

/** The per-image channel offsets [N, C] (C = 1 or 3); alpha is drawn as normal_(0, alphastd) on an [N, 3] tensor. */
export function lightingOffsets(n: number, channels: number, gen: Generator, options: LightingOptions = {}): Tensor {
  if (channels !== 1 && channels !== 3) throw new Error(`lighting: needs 1 or 3 channels, got ${channels}`);
  const eigval = options.eigval ?? IMAGENET_PCA.eigval;
  const eigvec = options.eigvec ?? IMAGENET_PCA.eigvec;
  return torch.tidy(() => {
    const alpha = torch.empty([n, 3]);
    torch.normalInto(alpha, 0, options.alphastd ?? 0.1, gen);
    const offsets = alpha
      .mul(torch.tensor([...eigval]))
      .matmul(torch.tensor(eigvec.map((r) => [...r])).transpose(0, 1));
    return channels === 1 ? offsets.mean(1, true) : offsets;
  });
}

export function lighting(x: Tensor, gen: Generator, options: LightingOptions = {}): Tensor {
  const [n, c] = checkBatch(x, "lighting");
  if ((options.alphastd ?? 0.1) === 0) return x.clone();
  return torch.tidy(() => x.add(lightingOffsets(n, c, gen, options).to(x.device).reshape(n, c, 1, 1)));
}

// ---------------------------------------------------------------------------------------------------------------
// ShufflePatches (RDED): cut the image into `factor` vertical strips and put them in a random order, then do the
// same with horizontal strips - the patch grid's columns and rows are permuted (per image). Strips are
// floor(size / factor) wide; when the size does not divide, the last strip takes the remainder (RDED's code would
// drop it and change the image size).
// ---------------------------------------------------------------------------------------------------------------

/** Source index of every output position after permuting `factor` strips of a dimension of length `size`. */
function stripOrder(size: number, factor: number, perm: number[]): number[] {
  const step = Math.floor(size / factor);
  const start = (k: number) => k * step;
  const end = (k: number) => (k === factor - 1 ? size : (k + 1) * step);
  return perm.flatMap((k) => range(start(k), end(k) - start(k)));
}

export function shufflePatches(x: Tensor, gen: Generator, factor = 2): Tensor {
  const [n, , h, w] = checkBatch(x, "shufflePatches");
  if (!Number.isInteger(factor) || factor < 1 || factor > Math.min(h, w))
    throw new Error(`shufflePatches: factor must be an integer in 1..${Math.min(h, w)}, got ${factor}`);
  const colPerms = randomPermutations(gen, n, factor);
  const rowPerms = randomPermutations(gen, n, factor);
  return pickPixels(
    x,
    rowPerms.map((p) => stripOrder(h, factor, p)),
    colPerms.map((p) => stripOrder(w, factor, p)),
  );
}

// ---------------------------------------------------------------------------------------------------------------
// CutMix (Yun et al.): with probability p, lambda ~ Beta(beta, beta); a box of (1 - lambda) of the area centred at a
// uniform point (clipped at the borders) is pasted from a permuted partner in the batch. The returned lambda is the
// label weight of each image's own label: 1 - box area / (H * W) after clipping.
// Draws: coin (torch.rand), then lambda, partner permutation (randperm), box centre row, box centre column.
// ---------------------------------------------------------------------------------------------------------------

/** Beta(a, b) draw: torch's Dirichlet sampler (two Gamma draws, normalised) on [a, b], first component. */
export function sampleBeta(a: number, b: number, gen: Generator): number {
  return torch.tidy(() => torch.callOp("_sample_dirichlet", torch.tensor([a, b]), gen.handle).toNumbers()[0]);
}

export interface Box {
  top: number;
  left: number;
  bottom: number;
  right: number;
}

/** CutMix's rand_bbox: side ratio sqrt(1 - lam), centre uniform, corners clipped to the image. */
export function randBox(height: number, width: number, lam: number, gen: Generator): Box {
  const cut = Math.sqrt(1 - lam);
  const [ch, cw] = [Math.floor(height * cut), Math.floor(width * cut)];
  const cy = randint1(gen, 0, height);
  const cx = randint1(gen, 0, width);
  const clip = (v: number, hi: number) => Math.min(Math.max(v, 0), hi);
  return {
    top: clip(cy - Math.floor(ch / 2), height),
    bottom: clip(cy + Math.floor(ch / 2), height),
    left: clip(cx - Math.floor(cw / 2), width),
    right: clip(cx + Math.floor(cw / 2), width),
  };
}

export interface CutMixOptions {
  /** Probability of mixing a batch (default 1). */
  p?: number;
  /** Beta distribution parameter (default 1 = uniform lambda). */
  beta?: number;
}

export interface CutMixResult {
  images: Tensor;
  /** partner[i] = the batch index whose pixels fill image i's box (int64 [N]; identity when not mixed). */
  partner: Tensor;
  /** Weight of each image's own label; (1 - lam) goes to its partner's label. 1 when not mixed. */
  lam: number;
  box: Box | null;
}

export function cutmix(x: Tensor, gen: Generator, options: CutMixOptions = {}): CutMixResult {
  const [n, , h, w] = checkBatch(x, "cutmix");
  const p = options.p ?? 1;
  const beta = options.beta ?? 1;
  if (!(beta > 0)) throw new Error(`cutmix: beta must be > 0, got ${beta}`);
  return torch.tidy((): CutMixResult => {
    const coin = torch.rand([1], { generator: gen }).item();
    if (coin >= p) return { images: x.clone(), partner: torch.arange(n), lam: 1, box: null };
    const lamDraw = sampleBeta(beta, beta, gen);
    const partner = torch.randperm(n, { generator: gen }).to(x.device);
    const box = randBox(h, w, lamDraw, gen);
    const bh = box.bottom - box.top;
    const bw = box.right - box.left;
    const images = x.clone();
    if (bh > 0 && bw > 0) {
      const src = torch.indexSelect(x, 0, partner).narrow(2, box.top, bh).narrow(3, box.left, bw);
      images.narrow(2, box.top, bh).narrow(3, box.left, bw).copy_(src);
    }
    return { images, partner, lam: 1 - (bh * bw) / (h * w), box };
  });
}
