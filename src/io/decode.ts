// Decoding images from bytes, by magic bytes (PNG with our codec, JPEG with jpeg-js), and channel conversion as PIL's
// convert(). Plain JavaScript without the libtorch addon, so that decode workers (io/datasets/stream.ts) can use it.
import jpeg from "jpeg-js";
import { InputError } from "../errors.js";
import { readLimits } from "./limits.js";
import { checkPixels, decodePng, type DecodeOptions, isPng, type RawImage } from "./png.js";

export type { RawImage } from "./png.js";

const isJpeg = (b: Uint8Array) => b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff;

/**
 * Decodes PNG or JPEG bytes (recognised by their magic, not the file name). `source` (a path) prefixes error
 * messages. A greyscale JPEG gives 1 channel; colour JPEGs (YCbCr, CMYK) give RGB. Images over the pixel limit are
 * refused from their header (DecodeOptions.maxPixels, default --max-image-pixels).
 */
export function decodeImage(bytes: Uint8Array, source = "image", options: DecodeOptions = {}): RawImage {
  try {
    if (isPng(bytes)) return decodePng(bytes, options);
    if (isJpeg(bytes)) return decodeJpeg(bytes, options);
  } catch (e) {
    // Our PNG reader throws InputError for every bad input (anything else is a bug and must surface as one); jpeg-js
    // throws plain errors, and those are about the file.
    if (e instanceof InputError || isJpeg(bytes)) throw new InputError(`${source}: ${(e as Error).message}`);
    throw e;
  }
  throw new InputError(`${source}: not a PNG or JPEG file (unknown magic bytes)`);
}

/**
 * Pixels a JPEG of n bytes can hold at most: every 8x8 block of the full-resolution component takes at least one bit
 * (a Huffman code is at least one bit long, and a block's DC coefficient always has one), so 512 pixels per byte.
 * jpeg-js decodes every block the frame header declares, data or not, so a 900-byte file declaring 15 megapixels
 * would keep it busy for many seconds; this bounds the work by the file's size.
 */
const JPEG_MAX_PIXELS_PER_BYTE = 512;

function decodeJpeg(bytes: Uint8Array, o: DecodeOptions): RawImage {
  const frame = jpegFrame(bytes);
  if (frame) {
    checkPixels(frame.width, frame.height, o);
    if (frame.width * frame.height > JPEG_MAX_PIXELS_PER_BYTE * bytes.length) {
      throw new InputError(
        `a JPEG of ${bytes.length} bytes cannot hold a ${frame.width}x${frame.height} image (at least one bit per 8x8 block): truncated or corrupt`,
      );
    }
  }
  const maxPixels = o.maxPixels ?? readLimits().maxImagePixels;
  // Not tolerant: a truncated or damaged file is an error, as in PIL, rather than a partly grey image. jpeg-js's own
  // limits follow ours: the pixel count, and its working memory at 8 bytes per pixel (coefficients and output).
  const img = jpeg.decode(bytes, {
    useTArray: true,
    formatAsRGBA: false,
    tolerantDecoding: false,
    maxResolutionInMP: maxPixels / 1e6,
    maxMemoryUsageInMB: Math.max(64, Math.ceil((8 * maxPixels) / 2 ** 20)),
  });
  const rgb: RawImage = { width: img.width, height: img.height, channels: 3, data: img.data };
  // jpeg-js replicates a single component into R, G and B; report such images as the greyscale they are.
  return frame?.components === 1 ? convertChannels(rgb, 1) : rgb;
}

/** The frame header (SOFn): component count and size, or null when none is found. */
function jpegFrame(b: Uint8Array): { components: number; width: number; height: number } | null {
  let p = 2;
  while (p + 4 <= b.length) {
    if (b[p] !== 0xff) return null;
    const m = b[p + 1];
    if (m === 0xff) {
      p++; // fill byte
      continue;
    }
    const len = (b[p + 2] << 8) | b[p + 3];
    // SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC): precision, height, width, then Nf.
    if (m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc) {
      if (p + 9 >= b.length) return null;
      return { height: (b[p + 5] << 8) | b[p + 6], width: (b[p + 7] << 8) | b[p + 8], components: b[p + 9] };
    }
    p += 2 + len;
  }
  return null;
}

// ---------------------------------------------------------------------------------------------------------------
// Channel conversion (PIL semantics)
// ---------------------------------------------------------------------------------------------------------------

/**
 * Converts to 1 (grey) or 3 (RGB) channels as PIL's convert('L') / convert('RGB'): alpha is dropped (not composited),
 * grey is replicated, and RGB -> grey is ITU-R 601-2 luma L = R*299/1000 + G*587/1000 + B*114/1000 in PIL's fixed-point
 * form (R*19595 + G*38470 + B*7471 + 0x8000) >> 16.
 */
export function convertChannels(img: RawImage, channels: 1 | 3): RawImage {
  const src = img.channels;
  const colour = src >= 3;
  if ((channels === 1 && src === 1) || (channels === 3 && src === 3)) return img;
  const n = img.width * img.height;
  const d = img.data;
  const out = new Uint8Array(n * channels);
  for (let i = 0; i < n; i++) {
    const s = i * src;
    if (channels === 1) out[i] = colour ? (d[s] * 19595 + d[s + 1] * 38470 + d[s + 2] * 7471 + 0x8000) >>> 16 : d[s];
    else for (let c = 0; c < 3; c++) out[i * 3 + c] = d[s + (colour ? c : 0)];
  }
  return { width: img.width, height: img.height, channels, data: out };
}
