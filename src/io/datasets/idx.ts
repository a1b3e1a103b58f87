// MNIST-style idx files (optionally gzipped) and Fashion-MNIST, which Debian ships in `dataset-fashion-mnist`.
// idx layout: 2 zero bytes, a type byte (0x08 = unsigned byte), a dimension count, the dimensions as big-endian
// uint32, then the values in row-major order.
// Bounded: a file is read only when it is a regular file within the tensor limit (--max-tensor-bytes: the images
// become one tensor), and a gzipped one inflates to at most its header's size plus the values that header counts,
// read off the first inflated bytes, so a small .gz that inflates to gigabytes stops after the header's worth.
import { createHash } from "node:crypto";
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { constants as zlibConstants, gunzipSync } from "node:zlib";
import { InputError } from "../../errors.js";
import * as torch from "../../torch/index.js";
import { readRegularFile } from "../files.js";
import { formatBytes, readLimits } from "../limits.js";
import type { Dataset } from "./dataset.js";

export const FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist";
export const FASHION_MNIST_CLASSES = [
  "T-shirt/top",
  "Trouser",
  "Pullover",
  "Dress",
  "Coat",
  "Sandal",
  "Shirt",
  "Sneaker",
  "Bag",
  "Ankle boot",
];

const isGzip = (b: Uint8Array) => b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b;
/** The longest idx header: 4 bytes and 255 dimensions. */
const MAX_HEADER = 4 + 4 * 255;

/** Inflates at most `limit` bytes; null when the data inflates to more. */
function gunzipAtMost(b: Uint8Array, limit: number, file: string): Uint8Array | null {
  try {
    return gunzipSync(b, { maxOutputLength: Math.max(limit, 1) });
  } catch (e) {
    // Past the limit (the stream goes on) or cut off by it (a truncated-stream error at exactly the limit).
    if ((e as NodeJS.ErrnoException).code === "ERR_BUFFER_TOO_LARGE") return null;
    throw new InputError(`${file}: corrupt gzip data (${(e as Error).message})`);
  }
}

/** The header's dimensions and size, or an error naming what is wrong with it. */
function parseHeader(b: Uint8Array, file: string): { dims: number[]; headerLen: number; expected: bigint } {
  if (b.length < 4 || b[0] !== 0 || b[1] !== 0) throw new InputError(`${file}: not an idx file (bad magic number)`);
  if (b[2] !== 0x08)
    throw new InputError(`${file}: idx value type 0x${b[2].toString(16)} is not supported (only 0x08, unsigned bytes)`);
  const ndims = b[3];
  const headerLen = 4 + 4 * ndims;
  if (ndims === 0 || b.length < headerLen) throw new InputError(`${file}: truncated idx header (${ndims} dimensions)`);
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const dims = Array.from({ length: ndims }, (_, i) => view.getUint32(4 + 4 * i));
  return { dims, headerLen, expected: BigInt(headerLen) + dims.reduce((a, d) => a * BigInt(d), 1n) };
}

/**
 * Parses idx bytes (gunzipping first when they start with the gzip magic). `file` names the source in errors; a
 * file whose values would exceed `maxBytes` (default --max-tensor-bytes) is refused from its header.
 */
export function readIdx(
  bytes: Uint8Array,
  file: string,
  maxBytes = readLimits().maxTensorBytes,
): { dims: number[]; data: Uint8Array } {
  let b = bytes;
  if (isGzip(b)) {
    // The header first (a bounded inflate of the start), then the whole file, inflated to at most what it says.
    const head = gunzipHead(b, file);
    const { dims, expected } = parseHeader(head, file);
    checkSize(dims, expected, maxBytes, file);
    const all = gunzipAtMost(b, Number(expected), file);
    if (!all)
      throw new InputError(
        `${file}: the gzip data inflates to more than the ${expected} bytes its idx header [${dims.join(", ")}] implies`,
      );
    b = all;
  }
  const { dims, headerLen, expected } = parseHeader(b, file);
  checkSize(dims, expected, maxBytes, file);
  if (BigInt(b.length) !== expected)
    throw new InputError(
      `${file}: ${b.length} bytes, but its header [${dims.join(", ")}] needs ${expected} (truncated or corrupt)`,
    );
  return { dims, data: b.subarray(headerLen) };
}

/** The first inflated bytes of a gzip stream that goes on past the longest header. */
function gunzipHead(b: Uint8Array, file: string): Uint8Array {
  // gunzipSync keeps nothing when it stops at maxOutputLength, so the header comes from growing prefixes of the
  // compressed data, which inflate without error when finishFlush is Z_SYNC_FLUSH (a cut stream is not an error then).
  for (let take = 64; ; take *= 4) {
    let out: Uint8Array;
    try {
      out = gunzipSync(b.subarray(0, Math.min(take, b.length)), {
        finishFlush: zlibConstants.Z_SYNC_FLUSH,
        maxOutputLength: 1 << 24,
      });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ERR_BUFFER_TOO_LARGE")
        throw new InputError(`${file}: corrupt gzip data (${(e as Error).message})`);
      throw new InputError(
        `${file}: the gzip data starts with more than ${formatBytes(1 << 24)} of repeated bytes before its idx header is complete`,
      );
    }
    if (out.length >= MAX_HEADER) return out.subarray(0, MAX_HEADER);
    // All of it inflates to less than the longest header: inflate it properly (a cut or corrupt stream is an error).
    if (take >= b.length) return gunzipAtMost(b, MAX_HEADER, file) ?? out;
  }
}

function checkSize(dims: number[], expected: bigint, maxBytes: number, file: string): void {
  if (expected > BigInt(maxBytes) + BigInt(MAX_HEADER)) {
    throw new InputError(
      `${file}: its header [${dims.join(", ")}] counts ${formatBytes(expected)} of values, over the ${formatBytes(maxBytes)} limit (--max-tensor-bytes)`,
    );
  }
}

/** The path of `<root>/<name>.gz`, else `<root>/<name>`. */
function findIdx(root: string, name: string): string {
  for (const p of [join(root, `${name}.gz`), join(root, name)]) if (existsSync(p)) return p;
  throw new InputError(
    `${root}: neither ${name}.gz nor ${name} found (install Debian's dataset-fashion-mnist, or pass a folder that holds the idx files)`,
  );
}

/**
 * Reads an images/labels pair of idx files into a Dataset of [N, 1, H, W] uint8 images. source.sha256 is the
 * SHA-256 of the two files' bytes as stored (images then labels); source.files has each file's digest.
 */
export function loadIdxPair(root: string, imagesName: string, labelsName: string, classes: string[]): Dataset {
  if (!existsSync(root) || !statSync(root).isDirectory()) throw new InputError(`${root}: no such folder`);
  const paths = [findIdx(root, imagesName), findIdx(root, labelsName)];
  const maxBytes = readLimits().maxTensorBytes;
  const [imgBytes, labBytes] = paths.map((p) => readRegularFile(p, maxBytes + MAX_HEADER, "--max-tensor-bytes"));
  const images = readIdx(imgBytes, paths[0], maxBytes);
  const labels = readIdx(labBytes, paths[1], maxBytes);
  if (images.dims.length !== 3)
    throw new InputError(`${paths[0]}: expected 3 dimensions (count, rows, columns), got [${images.dims}]`);
  if (labels.dims.length !== 1) throw new InputError(`${paths[1]}: expected 1 dimension (count), got [${labels.dims}]`);
  const [n, h, w] = images.dims;
  if (n === 0 || h === 0 || w === 0)
    throw new InputError(
      `${paths[0]}: expected at least one image of at least 1x1 pixels, got [${images.dims}] (count, rows, columns)`,
    );
  if (labels.dims[0] !== n)
    throw new InputError(`${paths[1]}: ${labels.dims[0]} labels for ${n} images in ${paths[0]}`);
  const bad = labels.data.findIndex((l) => l >= classes.length);
  if (bad >= 0)
    throw new InputError(`${paths[1]}: label ${labels.data[bad]} at index ${bad} is outside 0..${classes.length - 1}`);

  const all = createHash("sha256");
  const files = paths.map((p, i) => {
    const bytes = i === 0 ? imgBytes : labBytes;
    all.update(bytes);
    return { path: p, sha256: createHash("sha256").update(bytes).digest("hex") };
  });
  return {
    images: torch.fromArray(images.data, [n, 1, h, w]),
    labels: Int32Array.from(labels.data),
    classes: classes.slice(),
    source: { format: "idx", path: root, fileCount: 2, sha256: all.digest("hex"), files, classOrder: "list" },
  };
}

/** Fashion-MNIST: "train" = 60000 images, "test" = 10000, 28x28 grey, 10 classes (FASHION_MNIST_CLASSES). */
export function loadFashionMnist(split: "train" | "test", root = FASHION_MNIST_DIR): Dataset {
  const prefix = split === "train" ? "train" : "t10k";
  return loadIdxPair(root, `${prefix}-images-idx3-ubyte`, `${prefix}-labels-idx1-ubyte`, FASHION_MNIST_CLASSES);
}
