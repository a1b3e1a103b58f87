// Turns a tensor's raw bytes in a file into libtorch tensors without staging them in JavaScript: the file is mapped
// privately and read-only in use (aten::from_file with shared=false), the tensor's byte range is viewed as its dtype
// and shape, and copied once, either into a new tensor or straight into an existing one (a model parameter). The
// mapping lives only while one tensor is copied, so peak memory is the destination plus the pages of that one tensor
// (a 2.7 GB checkpoint is never held whole). Shared by the safetensors and torch archive readers.
import { SCALAR_TYPE } from "../torch/dtype.js";
import { callOp, type DType, fromArray, ITEM_SIZE, noGrad, type Tensor } from "../torch/index.js";

/** Where a tensor's contiguous bytes are: a byte range of a file, or bytes already in memory (inflated zip entries). */
export type ByteSource = { path: string; fileSize: number; offset: number } | { bytes: Uint8Array };

export interface ReadOptions {
  /** The values are stored big-endian. */
  bigEndian?: boolean;
}

/** Calls fn with a tensor (dtype, shape) viewing the source's bytes; the view is valid only during fn. */
export function viewBytes<T>(
  src: ByteSource,
  dtype: DType,
  shape: readonly number[],
  opts: ReadOptions,
  fn: (view: Tensor) => T,
): T {
  const size = ITEM_SIZE[dtype];
  const nbytes = shape.reduce((a, b) => a * b, 1) * size;
  const temps: Tensor[] = [];
  const temp = (t: Tensor) => (temps.push(t), t);
  try {
    let raw: Tensor;
    if ("bytes" in src) raw = temp(fromArray(src.bytes.subarray(0, nbytes), [nbytes], { dtype: "uint8" }));
    else {
      const file = temp(callOp("from_file", src.path, false, src.fileSize, SCALAR_TYPE.uint8));
      raw = temp(file.narrow(0, src.offset, nbytes));
      // Viewing bytes as a wider dtype needs an aligned start; a misaligned tensor is copied out first.
      if (src.offset % size !== 0) raw = temp(raw.clone());
    }
    if (opts.bigEndian && size > 1)
      raw = temp(
        raw
          .view(nbytes / size, size)
          .flip(-1)
          .reshape(-1),
      );
    const typed = temp(callOp("view.dtype", raw, SCALAR_TYPE[dtype]));
    return fn(temp(typed.view(...shape)));
  } finally {
    for (const t of temps.reverse()) t.dispose();
  }
}

/** A new contiguous CPU tensor holding the source's values. */
export function readTensor(src: ByteSource, dtype: DType, shape: readonly number[], opts: ReadOptions = {}): Tensor {
  return viewBytes(src, dtype, shape, opts, (v) => v.clone());
}

/** Copies the source's values into an existing tensor of the same shape (copy_ converts dtype and device). */
export function readInto(
  dst: Tensor,
  src: ByteSource,
  dtype: DType,
  shape: readonly number[],
  opts: ReadOptions = {},
): void {
  if (dst.shape.join() !== shape.join())
    throw new Error(`readInto: destination shape [${dst.shape}] differs from the stored [${shape}]`);
  viewBytes(src, dtype, shape, opts, (v) => noGrad(() => dst.copy_(v)));
}
