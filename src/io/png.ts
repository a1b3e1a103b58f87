// PNG (ISO/IEC 15948). Our own codec so that written images are byte-for-byte reproducible and read images need no
// native image library.
// - encodePng: 8-bit grey, grey+alpha, RGB or RGBA; one IHDR, one IDAT, IEND (no time or text chunks); zlib level 6
//   through node:zlib; per-row filter chosen by libpng's minimum-sum-of-absolute-differences heuristic. The same
//   pixels give the same bytes for a given zlib (Node bundles its own).
// - decodePng: bit depths 1/2/4/8/16, colour types grey, RGB, palette, grey+alpha, RGBA, the five filters, Adam7
//   interlacing; every chunk's CRC is checked. Output is 8-bit interleaved HWC: 16-bit samples keep their high byte
//   (as libpng's strip_16 and PIL for RGB;16), 1/2/4-bit grey is scaled to 0..255 (x255, x85, x17), a palette is
//   expanded to RGB (RGBA when a tRNS chunk gives alpha). Other tRNS forms, gamma and colour profiles are ignored.
//   Bounded: the size in the header must be within the pixel limit (--max-image-pixels), the image data may inflate
//   to exactly the size the header implies and no further, and nothing the size of the image is allocated before
//   that data is there.
import { constants, deflateSync, inflateSync } from "node:zlib";
import { InputError } from "../errors.js";
import { readLimits } from "./limits.js";

/** An 8-bit image with interleaved channels: data[(y * width + x) * channels + c]. */
export interface RawImage {
  width: number;
  height: number;
  channels: 1 | 2 | 3 | 4;
  data: Uint8Array;
}

const SIGNATURE = [137, 80, 78, 71, 13, 10, 26, 10];
/** Colour type -> samples per pixel (PNG spec table 11.1). */
const SAMPLES: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };
/** Allowed bit depths per colour type. */
const DEPTHS: Record<number, number[]> = { 0: [1, 2, 4, 8, 16], 2: [8, 16], 3: [1, 2, 4, 8], 4: [8, 16], 6: [8, 16] };
const COLOR_TYPE_OF_CHANNELS = { 1: 0, 2: 4, 3: 2, 4: 6 } as const;
/** Adam7 passes: [x0, y0, dx, dy]. */
const ADAM7 = [
  [0, 0, 8, 8],
  [4, 0, 8, 8],
  [0, 4, 4, 8],
  [2, 0, 4, 4],
  [0, 2, 2, 4],
  [1, 0, 2, 2],
  [0, 1, 1, 2],
];

// ---------------------------------------------------------------------------------------------------------------
// CRC-32 (ISO 3309, as zlib's crc32), table driven
// ---------------------------------------------------------------------------------------------------------------

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(bytes: Uint8Array, start: number, end: number): number {
  let c = 0xffffffff;
  for (let i = start; i < end; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

// ---------------------------------------------------------------------------------------------------------------
// Filters (spec section 9): a = left, b = up, c = up-left, in bytes of whole pixels (bpp = bytes per pixel, >= 1)
// ---------------------------------------------------------------------------------------------------------------

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a);
  const pb = Math.abs(p - b);
  const pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/** Filters one row of `raw` (prev = the row above, zeros for the first) with type `f` into out[1..]. */
function filterRow(f: number, raw: Uint8Array, prev: Uint8Array, bpp: number, out: Uint8Array): void {
  out[0] = f;
  for (let i = 0; i < raw.length; i++) {
    const a = i >= bpp ? raw[i - bpp] : 0;
    const b = prev[i];
    const c = i >= bpp ? prev[i - bpp] : 0;
    const pred = f === 0 ? 0 : f === 1 ? a : f === 2 ? b : f === 3 ? (a + b) >> 1 : paeth(a, b, c);
    out[i + 1] = (raw[i] - pred) & 0xff;
  }
}

/** Reverses the filter of one row in place (row = filtered bytes without the type byte). */
function unfilterRow(f: number, row: Uint8Array, prev: Uint8Array, bpp: number): void {
  const n = row.length;
  switch (f) {
    case 0:
      return;
    case 1:
      for (let i = bpp; i < n; i++) row[i] = (row[i] + row[i - bpp]) & 0xff;
      return;
    case 2:
      for (let i = 0; i < n; i++) row[i] = (row[i] + prev[i]) & 0xff;
      return;
    case 3:
      for (let i = 0; i < n; i++) row[i] = (row[i] + (((i >= bpp ? row[i - bpp] : 0) + prev[i]) >> 1)) & 0xff;
      return;
    case 4:
      for (let i = 0; i < n; i++) {
        const a = i >= bpp ? row[i - bpp] : 0;
        const c = i >= bpp ? prev[i - bpp] : 0;
        row[i] = (row[i] + paeth(a, prev[i], c)) & 0xff;
      }
      return;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Encoder
// ---------------------------------------------------------------------------------------------------------------

function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  view.setUint32(8 + data.length, crc32(out, 4, 8 + data.length));
  return out;
}

/** Encodes an 8-bit image (1 = grey, 2 = grey+alpha, 3 = RGB, 4 = RGBA channels) as a deterministic PNG. */
export function encodePng(img: RawImage): Uint8Array {
  const { width, height, channels, data } = img;
  if (!(channels in COLOR_TYPE_OF_CHANNELS))
    throw new Error(`encodePng: channels must be 1, 2, 3 or 4 (got ${channels})`);
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1)
    throw new Error(`encodePng: bad size ${width}x${height}`);
  if (data.length !== width * height * channels)
    throw new Error(
      `encodePng: ${width}x${height}x${channels} needs ${width * height * channels} bytes, got ${data.length}`,
    );

  const ihdr = new Uint8Array(13);
  const hv = new DataView(ihdr.buffer);
  hv.setUint32(0, width);
  hv.setUint32(4, height);
  ihdr[8] = 8;
  ihdr[9] = COLOR_TYPE_OF_CHANNELS[channels];
  // bytes 10-12: compression 0, filter method 0, interlace 0

  const stride = width * channels;
  const filtered = new Uint8Array(height * (stride + 1));
  const candidate = new Uint8Array(stride + 1);
  let prev: Uint8Array = new Uint8Array(stride);
  for (let y = 0; y < height; y++) {
    const raw = data.subarray(y * stride, (y + 1) * stride);
    // libpng's heuristic: the filter whose output bytes, read as signed, have the smallest sum of magnitudes.
    let best = Infinity;
    const dst = filtered.subarray(y * (stride + 1), (y + 1) * (stride + 1));
    for (let f = 0; f < 5; f++) {
      filterRow(f, raw, prev, channels, candidate);
      let s = 0;
      for (let i = 1; i <= stride; i++) s += candidate[i] < 128 ? candidate[i] : 256 - candidate[i];
      if (s < best) {
        best = s;
        dst.set(candidate);
      }
    }
    prev = raw;
  }
  const idat = deflateSync(filtered, { level: 6, strategy: constants.Z_DEFAULT_STRATEGY });
  const parts = [
    Uint8Array.from(SIGNATURE),
    chunk("IHDR", ihdr),
    chunk("IDAT", idat),
    chunk("IEND", new Uint8Array(0)),
  ];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Decoder
// ---------------------------------------------------------------------------------------------------------------

interface Header {
  width: number;
  height: number;
  depth: number;
  colorType: number;
  interlace: number;
}

const bad = (msg: string) => new InputError(`invalid PNG: ${msg}`);

/** True when the bytes start with the PNG signature. */
export function isPng(bytes: Uint8Array): boolean {
  return bytes.length >= 8 && SIGNATURE.every((v, i) => bytes[i] === v);
}

export interface DecodeOptions {
  /** Largest width x height accepted (default: readLimits().maxImagePixels, i.e. --max-image-pixels). */
  maxPixels?: number;
}

/** The refusal of an image larger than the pixel limit (shared with the JPEG reader). */
export function checkPixels(width: number, height: number, options: DecodeOptions = {}): void {
  const limit = options.maxPixels ?? readLimits().maxImagePixels;
  if (width * height > limit) {
    throw new InputError(
      `image of ${width}x${height} = ${(width * height).toLocaleString("en-US")} pixels is over the ${limit.toLocaleString("en-US")}-pixel limit (--max-image-pixels)`,
    );
  }
}

/** Decodes a PNG into 8-bit HWC samples (see the file comment for the conversions). Throws InputError when invalid. */
export function decodePng(bytes: Uint8Array, options: DecodeOptions = {}): RawImage {
  if (!isPng(bytes)) throw bad("not a PNG file (bad signature)");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let header: Header | undefined;
  let palette: Uint8Array | undefined;
  let paletteAlpha: Uint8Array | undefined;
  const idat: Uint8Array[] = [];
  let ended = false;
  for (let pos = 8; !ended;) {
    if (pos + 12 > bytes.length) throw bad(`truncated: file ends at byte ${bytes.length} before the IEND chunk`);
    const len = view.getUint32(pos);
    const type = String.fromCharCode(...bytes.subarray(pos + 4, pos + 8));
    if (!/^[A-Za-z]{4}$/.test(type)) throw bad(`corrupt chunk type at byte ${pos}`);
    const end = pos + 8 + len;
    if (end + 4 > bytes.length) throw bad(`truncated: chunk '${type}' at byte ${pos} runs past the end of the file`);
    if (crc32(bytes, pos + 4, end) !== view.getUint32(end))
      throw bad(`CRC mismatch in chunk '${type}' at byte ${pos} (file is corrupted)`);
    const body = bytes.subarray(pos + 8, end);
    if (!header && type !== "IHDR") throw bad(`first chunk is '${type}', expected IHDR`);
    switch (type) {
      case "IHDR":
        if (header) throw bad("more than one IHDR chunk");
        header = readHeader(body);
        checkPixels(header.width, header.height, options);
        break;
      case "PLTE":
        if (len % 3 !== 0 || len === 0 || len > 768)
          throw bad(`PLTE chunk of ${len} bytes (need 3..768, a multiple of 3)`);
        palette = body;
        break;
      case "tRNS":
        if (header!.colorType === 3) paletteAlpha = body;
        break;
      case "IDAT":
        idat.push(body);
        break;
      case "IEND":
        ended = true;
        break;
      default:
        // Bit 5 of the first byte clear = critical chunk we would have to understand.
        if ((bytes[pos + 4] & 0x20) === 0) throw bad(`unsupported critical chunk '${type}'`);
    }
    pos = end + 4;
  }
  const h = header!;
  if (h.colorType === 3 && !palette) throw bad("palette image without a PLTE chunk");
  if (idat.length === 0) throw bad("no IDAT chunk");
  const expected = rawSize(h);
  let raw: Uint8Array;
  try {
    raw = inflateSync(Buffer.concat(idat), { maxOutputLength: Math.max(expected, 1) });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ERR_BUFFER_TOO_LARGE") {
      throw bad(
        `the image data inflates to more than the ${expected} bytes a ${h.width}x${h.height} image of this type holds`,
      );
    }
    throw bad(`corrupt compressed image data (${(e as Error).message})`);
  }
  if (raw.length < expected)
    throw bad(
      `image data too short (${raw.length} bytes, a ${h.width}x${h.height} image of this type needs ${expected})`,
    );
  const samples = unpackImage(raw, h);
  return toEightBit(samples, h, palette, paletteAlpha);
}

function readHeader(b: Uint8Array): Header {
  if (b.length !== 13) throw bad(`IHDR chunk of ${b.length} bytes (expected 13)`);
  const v = new DataView(b.buffer, b.byteOffset, 13);
  const h = { width: v.getUint32(0), height: v.getUint32(4), depth: b[8], colorType: b[9], interlace: b[12] };
  if (h.width === 0 || h.height === 0 || h.width > 0x7fffffff || h.height > 0x7fffffff)
    throw bad(`image size ${h.width}x${h.height}`);
  if (!(h.colorType in SAMPLES)) throw bad(`unknown colour type ${h.colorType}`);
  if (!DEPTHS[h.colorType].includes(h.depth))
    throw bad(`bit depth ${h.depth} is not allowed for colour type ${h.colorType}`);
  if (b[10] !== 0 || b[11] !== 0) throw bad(`unknown compression (${b[10]}) or filter method (${b[11]})`);
  if (h.interlace > 1) throw bad(`unknown interlace method ${h.interlace}`);
  if (h.width * h.height * SAMPLES[h.colorType] > 2 ** 31) throw bad(`image ${h.width}x${h.height} is too large`);
  return h;
}

/** The passes of an image: [x0, y0, dx, dy, width, height] of each non-empty one (one pass unless interlaced). */
function passes(h: Header): number[][] {
  return (h.interlace ? ADAM7 : [[0, 0, 1, 1]])
    .map(([x0, y0, dx, dy]) => [x0, y0, dx, dy, Math.ceil((h.width - x0) / dx), Math.ceil((h.height - y0) / dy)])
    .filter(([, , , , pw, ph]) => pw > 0 && ph > 0); // empty passes have no bytes at all (not even filter types)
}

/** Bytes of decompressed image data the header implies: per row of each pass, a filter byte and the packed samples. */
function rawSize(h: Header): number {
  const spp = SAMPLES[h.colorType];
  return passes(h).reduce((n, [, , , , pw, ph]) => n + ph * (1 + Math.ceil((pw * spp * h.depth) / 8)), 0);
}

/** Unfilters and unpacks the decompressed data into one sample value per array element (raster order). */
function unpackImage(raw: Uint8Array, h: Header): Uint8Array | Uint16Array {
  const spp = SAMPLES[h.colorType];
  const out = h.depth === 16 ? new Uint16Array(h.width * h.height * spp) : new Uint8Array(h.width * h.height * spp);
  let pos = 0;
  for (const [x0, y0, dx, dy, pw, ph] of passes(h)) {
    const stride = Math.ceil((pw * spp * h.depth) / 8);
    const bpp = Math.max(1, (spp * h.depth) >> 3);
    let prev: Uint8Array = new Uint8Array(stride);
    for (let py = 0; py < ph; py++) {
      if (pos + 1 + stride > raw.length)
        throw bad(`image data too short (ends in row ${py} of ${ph}${h.interlace ? " of an Adam7 pass" : ""})`);
      const f = raw[pos];
      if (f > 4) throw bad(`unknown filter type ${f} in row ${py}`);
      const row = raw.subarray(pos + 1, pos + 1 + stride);
      unfilterRow(f, row, prev, bpp);
      prev = row;
      pos += 1 + stride;
      const y = y0 + py * dy;
      for (let px = 0; px < pw; px++) {
        const dst = (y * h.width + x0 + px * dx) * spp;
        for (let s = 0; s < spp; s++) out[dst + s] = sampleAt(row, px * spp + s, h.depth);
      }
    }
  }
  return out;
}

/** The k-th sample of an unfiltered row at the given bit depth (big-endian, most significant bits first). */
function sampleAt(row: Uint8Array, k: number, depth: number): number {
  switch (depth) {
    case 8:
      return row[k];
    case 16:
      return (row[2 * k] << 8) | row[2 * k + 1];
    default: {
      const bit = k * depth;
      return (row[bit >> 3] >> (8 - depth - (bit & 7))) & ((1 << depth) - 1);
    }
  }
}

function toEightBit(
  samples: Uint8Array | Uint16Array,
  h: Header,
  palette?: Uint8Array,
  paletteAlpha?: Uint8Array,
): RawImage {
  const n = h.width * h.height;
  const base = { width: h.width, height: h.height };
  if (h.colorType === 3) {
    const entries = palette!.length / 3;
    const channels = paletteAlpha ? 4 : 3;
    const data = new Uint8Array(n * channels);
    for (let i = 0; i < n; i++) {
      const p = samples[i];
      if (p >= entries) throw bad(`palette index ${p} out of range (palette has ${entries} entries)`);
      for (let c = 0; c < 3; c++) data[i * channels + c] = palette![p * 3 + c];
      if (paletteAlpha) data[i * 4 + 3] = p < paletteAlpha.length ? paletteAlpha[p] : 255;
    }
    return { ...base, channels, data };
  }
  const channels = SAMPLES[h.colorType] as 1 | 2 | 3 | 4;
  if (h.depth === 8) return { ...base, channels, data: samples as Uint8Array };
  const data = new Uint8Array(samples.length);
  if (h.depth === 16) for (let i = 0; i < samples.length; i++) data[i] = samples[i] >> 8;
  else {
    const scale = 255 / ((1 << h.depth) - 1);
    for (let i = 0; i < samples.length; i++) data[i] = samples[i] * scale;
  }
  return { ...base, channels, data };
}
