// MNIST-style idx files (optionally gzipped) and Fashion-MNIST, which Debian ships in `dataset-fashion-mnist`.
// idx layout: 2 zero bytes, a type byte (0x08 = unsigned byte), a dimension count, the dimensions as big-endian
// uint32, then the values in row-major order.
import { createHash } from "node:crypto";
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { InputError } from "../../errors.js";
import * as torch from "../../torch/index.js";
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

/** Parses idx bytes (gunzipping first when they start with the gzip magic). `file` names the source in errors. */
export function readIdx(bytes: Uint8Array, file: string): { dims: number[]; data: Uint8Array } {
  let b = bytes;
  if (b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b) {
    try {
      b = gunzipSync(b);
    } catch (e) {
      throw new InputError(`${file}: corrupt gzip data (${(e as Error).message})`);
    }
  }
  if (b.length < 4 || b[0] !== 0 || b[1] !== 0) throw new InputError(`${file}: not an idx file (bad magic number)`);
  if (b[2] !== 0x08) throw new InputError(`${file}: idx value type 0x${b[2].toString(16)} is not supported (only 0x08, unsigned bytes)`);
  const ndims = b[3];
  const headerLen = 4 + 4 * ndims;
  if (ndims === 0 || b.length < headerLen) throw new InputError(`${file}: truncated idx header (${ndims} dimensions)`);
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const dims = Array.from({ length: ndims }, (_, i) => view.getUint32(4 + 4 * i));
  const expected = headerLen + dims.reduce((a, d) => a * d, 1);
  if (b.length !== expected)
    throw new InputError(`${file}: ${b.length} bytes, but its header [${dims.join(", ")}] needs ${expected} (truncated or corrupt)`);
  return { dims, data: b.subarray(headerLen) };
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
  const [imgBytes, labBytes] = paths.map((p) => readFileSync(p));
  const images = readIdx(imgBytes, paths[0]);
  const labels = readIdx(labBytes, paths[1]);
  if (images.dims.length !== 3) throw new InputError(`${paths[0]}: expected 3 dimensions (count, rows, columns), got [${images.dims}]`);
  if (labels.dims.length !== 1) throw new InputError(`${paths[1]}: expected 1 dimension (count), got [${labels.dims}]`);
  const [n, h, w] = images.dims;
  if (labels.dims[0] !== n) throw new InputError(`${paths[1]}: ${labels.dims[0]} labels for ${n} images in ${paths[0]}`);
  const bad = labels.data.findIndex((l) => l >= classes.length);
  if (bad >= 0) throw new InputError(`${paths[1]}: label ${labels.data[bad]} at index ${bad} is outside 0..${classes.length - 1}`);

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
