// Image resizing and cropping in plain JavaScript, exactly as PIL does them (Pillow's Resample.c, bilinear filter):
// what torchvision's transforms do to the PIL images of an ImageFolder. Plain JavaScript so that the decode workers of
// the streaming loader (io/datasets/stream.ts) can run it without the libtorch addon.
//
// PIL resamples in two passes, horizontal then vertical, each output pixel a weighted sum of the input pixels under a
// triangle filter stretched by the scale when shrinking (that is PIL's antialiasing); weights are normalised, turned
// into 22-bit fixed point, and each pass rounds to uint8 before the next.
import type { RawImage } from "./png.js";

const PRECISION_BITS = 32 - 8 - 2;
const ONE = 2 ** PRECISION_BITS;

/** Per output pixel: first input index, tap count, and fixed-point weights (PIL's precompute_coeffs + normalize). */
function coefficients(
  inSize: number,
  outSize: number,
): { start: Int32Array; taps: Int32Array; weights: Int32Array; ksize: number } {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = filterScale; // the bilinear filter's support is 1
  const ksize = Math.ceil(support) * 2 + 1;
  const start = new Int32Array(outSize);
  const taps = new Int32Array(outSize);
  const weights = new Int32Array(outSize * ksize);
  const w = new Float64Array(ksize);
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    // C's (int) cast truncates toward zero
    const xmin = Math.max(0, Math.trunc(center - support + 0.5));
    const xmax = Math.min(inSize, Math.trunc(center + support + 0.5)) - xmin;
    let sum = 0;
    for (let x = 0; x < xmax; x++) {
      const d = Math.abs((x + xmin - center + 0.5) / filterScale);
      w[x] = d < 1 ? 1 - d : 0;
      sum += w[x];
    }
    for (let x = 0; x < xmax; x++) {
      const v = sum !== 0 ? w[x] / sum : w[x];
      weights[xx * ksize + x] = Math.trunc(v < 0 ? -0.5 + v * ONE : 0.5 + v * ONE);
    }
    start[xx] = xmin;
    taps[xx] = xmax;
  }
  return { start, taps, weights, ksize };
}

/** PIL's clip8: the rounded fixed-point sum back to 0..255. */
const clip8 = (s: number) => (s >= 255 * ONE + ONE ? 255 : s <= 0 ? 0 : Math.floor(s / ONE));

/** One pass: along rows (horizontal, to width outW) or along columns (vertical, to height outH). */
function pass(img: RawImage, outW: number, outH: number, horizontal: boolean): RawImage {
  const c = img.channels;
  const { start, taps, weights, ksize } = horizontal ? coefficients(img.width, outW) : coefficients(img.height, outH);
  const out = new Uint8Array(outW * outH * c);
  const src = img.data;
  const rowStride = img.width * c;
  for (let y = 0; y < outH; y++) {
    for (let x = 0; x < outW; x++) {
      const o = horizontal ? x : y;
      const k = o * ksize;
      const n = taps[o];
      for (let ch = 0; ch < c; ch++) {
        let s = ONE / 2;
        if (horizontal) {
          let p = y * rowStride + start[o] * c + ch;
          for (let i = 0; i < n; i++, p += c) s += src[p] * weights[k + i];
        } else {
          let p = start[o] * rowStride + x * c + ch;
          for (let i = 0; i < n; i++, p += rowStride) s += src[p] * weights[k + i];
        }
        out[(y * outW + x) * c + ch] = clip8(s);
      }
    }
  }
  return { width: outW, height: outH, channels: img.channels, data: out };
}

/** PIL's Image.resize((width, height), BILINEAR) of an 8-bit image (any channel count, channels resampled alike). */
export function resizeBilinear(img: RawImage, width: number, height: number): RawImage {
  let out = img;
  if (width !== img.width) out = pass(out, width, out.height, true);
  if (height !== img.height) out = pass(out, width, height, false);
  return out === img ? { ...img, data: img.data.slice() } : out;
}

/** torchvision's Resize(size) with one number: the shorter side becomes `size`, the longer int(size * long / short). */
export function resizeShorterSide(img: RawImage, size: number): RawImage {
  const { width: w, height: h } = img;
  const long = Math.trunc((size * Math.max(w, h)) / Math.min(w, h));
  return w <= h ? resizeBilinear(img, size, long) : resizeBilinear(img, long, size);
}

/** Python's round(): halves go to the even neighbour. */
const roundHalfEven = (v: number) => {
  const f = Math.floor(v);
  const d = v - f;
  return d > 0.5 || (d === 0.5 && f % 2 !== 0) ? f + 1 : f;
};

/** torchvision's CenterCrop(size) of an image at least that large: offsets int(round((side - size) / 2)). */
export function centerCrop(img: RawImage, size: number): RawImage {
  const { width: w, height: h, channels: c } = img;
  if (w < size || h < size) throw new Error(`centerCrop: ${w}x${h} is smaller than ${size}x${size}`);
  const top = roundHalfEven((h - size) / 2);
  const left = roundHalfEven((w - size) / 2);
  const out = new Uint8Array(size * size * c);
  for (let y = 0; y < size; y++)
    out.set(img.data.subarray(((top + y) * w + left) * c, ((top + y) * w + left + size) * c), y * size * c);
  return { width: size, height: size, channels: c, data: out };
}

/** What the loader does to each decoded image: a plain resize to height x width, or Resize(shorter) + CenterCrop. */
export type ImageTransform = { resize: readonly [number, number] } | { resizeShorter: number; centerCrop: number };

export const describeTransform = (t: ImageTransform) =>
  "resize" in t
    ? `Resize((${t.resize[0]}, ${t.resize[1]}), bilinear as PIL)`
    : `Resize(${t.resizeShorter}, bilinear as PIL) -> CenterCrop(${t.centerCrop})`;

/** The transform's output size, [height, width]. */
export const transformSize = (t: ImageTransform): [number, number] =>
  "resize" in t ? [t.resize[0], t.resize[1]] : [t.centerCrop, t.centerCrop];

/** Applies a transform to an image (already at the wanted channels); the image is not changed. */
export function applyTransform(img: RawImage, t: ImageTransform): RawImage {
  if ("resize" in t)
    return img.width === t.resize[1] && img.height === t.resize[0]
      ? img
      : resizeBilinear(img, t.resize[1], t.resize[0]);
  return centerCrop(resizeShorterSide(img, t.resizeShorter), t.centerCrop);
}

/** HWC bytes -> CHW bytes (the layout of an image tensor). */
export function toChw(img: RawImage): Uint8Array {
  const { width: w, height: h, channels: c, data } = img;
  const out = new Uint8Array(w * h * c);
  const plane = w * h;
  for (let i = 0; i < plane; i++) for (let ch = 0; ch < c; ch++) out[ch * plane + i] = data[i * c + ch];
  return out;
}
