// Reads a tensor's raw bytes from a file into libtorch memory in bounded chunks, so loading a tensor never needs more
// than the tensor itself plus one chunk, whatever the file size. Shared by the safetensors and torch archive readers.
import { type DType, empty, fromArray, ITEM_SIZE, noGrad, type Tensor } from "../torch/index.js";

/** Fills buf with the source's bytes starting at `position` (relative to the tensor's first byte). */
export type ReadBytes = (buf: Uint8Array, position: number) => void;

export interface ReadOptions {
  /** The bytes are big-endian: swap each value's bytes before use. */
  bigEndian?: boolean;
  /** Sees every chunk in order (e.g. to compute a checksum). */
  onChunk?: (bytes: Uint8Array) => void;
}

const CHUNK = 16 << 20;
let scratch: Uint8Array | null = null;
const scratchOf = (n: number) => {
  if (n <= (scratch?.length ?? 0)) return scratch!.subarray(0, n);
  if (n > CHUNK) throw new Error("chunk larger than the scratch buffer");
  scratch = new Uint8Array(CHUNK);
  return scratch.subarray(0, n);
};

function swapBytes(b: Uint8Array, size: number): void {
  for (let i = 0; i + size <= b.length; i += size) {
    for (let lo = i, hi = i + size - 1; lo < hi; lo++, hi--) {
      const t = b[lo];
      b[lo] = b[hi];
      b[hi] = t;
    }
  }
}

/** Calls fn(chunkTensor, firstElement) for consecutive 1-D chunks of `numel` values of `dtype`. */
function forEachChunk(read: ReadBytes, dtype: DType, numel: number, opts: ReadOptions, fn: (chunk: Tensor, start: number) => void): void {
  const size = ITEM_SIZE[dtype];
  const per = Math.floor(CHUNK / size);
  for (let start = 0; start < numel; start += per) {
    const count = Math.min(per, numel - start);
    const buf = scratchOf(count * size);
    read(buf, start * size);
    opts.onChunk?.(buf);
    if (opts.bigEndian && size > 1) swapBytes(buf, size);
    const chunk = fromArray(buf, [count], { dtype });
    try {
      fn(chunk, start);
    } finally {
      chunk.dispose();
    }
  }
}

/** A new CPU tensor of `shape` from `numel(shape)` contiguous values of `dtype`. */
export function readTensor(read: ReadBytes, dtype: DType, shape: readonly number[], opts: ReadOptions = {}): Tensor {
  const numel = shape.reduce((a, b) => a * b, 1);
  const bytes = numel * ITEM_SIZE[dtype];
  if (bytes <= CHUNK) {
    // One chunk: the tensor is made straight from the scratch buffer.
    const buf = scratchOf(bytes);
    if (bytes) read(buf, 0);
    opts.onChunk?.(buf);
    if (opts.bigEndian && ITEM_SIZE[dtype] > 1) swapBytes(buf, ITEM_SIZE[dtype]);
    return fromArray(buf, shape, { dtype });
  }
  const out = empty(shape, { dtype });
  readInto(out, read, dtype, opts);
  return out;
}

/**
 * Copies contiguous values of `dtype` into an existing contiguous tensor of the same number of elements (any
 * shape, dtype or device: copy_ converts), without materialising the source tensor as a whole.
 */
export function readInto(dst: Tensor, read: ReadBytes, dtype: DType, opts: ReadOptions = {}): void {
  noGrad(() => {
    const flat = dst.view(-1);
    try {
      forEachChunk(read, dtype, flat.numel, opts, (chunk, start) => {
        const part = flat.narrow(0, start, chunk.numel);
        part.copy_(chunk);
        part.dispose();
      });
    } finally {
      flat.dispose();
    }
  });
}
