// Tensor operations: shape, indexing, arithmetic, comparison and reductions. Each maps to one ATen operator (named
// in the call) so numerics equal PyTorch's; numbers become the operator's Scalar overloads.
import { call, callInPlace, isTensor } from "./dispatch.js";
import { type DType, SCALAR_TYPE } from "./dtype.js";
import { native } from "./native.js";
import type { Tensor } from "./tensor.js";

export type Reduction = "none" | "mean" | "sum";
/** One entry per dimension: a number selects, null keeps all, [start, end, step] slices (any part may be null). */
export type IndexSpec = number | null | [number | null, (number | null)?, (number | null)?];

const isT = isTensor;
const dims = (d: number | number[]) => (Array.isArray(d) ? d : [d]);

// ---------------------------------------------------------------------------------------------------------------
// conversion and copies
// ---------------------------------------------------------------------------------------------------------------

/** `to(dtype)`, `to(device)` or `to(device, dtype)`. */
export function to(t: Tensor, target: DType | string, dtype?: DType): Tensor {
  if (target in SCALAR_TYPE) return call("to.dtype", t, SCALAR_TYPE[target as DType]);
  return call("to.device", t, target, SCALAR_TYPE[dtype ?? t.dtype]);
}
export const detach = (t: Tensor) => call("detach", t);
export const clone = (t: Tensor) => call("clone", t);
/** c10::MemoryFormat values (the contiguous op's memory_format argument). */
const MEMORY_FORMAT = { contiguous: 0, channels_last: 2 } as const;
export type MemoryFormat = keyof typeof MEMORY_FORMAT;
export const contiguous = (t: Tensor, format: MemoryFormat = "contiguous") =>
  format === "contiguous" ? call("contiguous", t) : call("contiguous", t, MEMORY_FORMAT[format]);
/**
 * Gives `t` the memory order `format` in place: the same tensor (an optimiser or a module holding it sees the
 * change), the same values and shape, other strides (torch's `param.data = param.to(memory_format=...)`).
 */
export function toMemoryFormat_(t: Tensor, format: MemoryFormat): void {
  callInPlace("set_.source_Tensor", t, contiguous(t, format));
}
export function copyInto(dst: Tensor, src: Tensor): void {
  callInPlace("copy_", dst, src);
}
export function fillInto(dst: Tensor, value: number): void {
  callInPlace("fill_.Scalar", dst, value);
}

// ---------------------------------------------------------------------------------------------------------------
// shape
// ---------------------------------------------------------------------------------------------------------------

export const reshape = (t: Tensor, shape: readonly number[]) => call("reshape", t, shape);
export const view = (t: Tensor, shape: readonly number[]) => call("view", t, shape);
export const permute = (t: Tensor, order: readonly number[]) => call("permute", t, order);
export const transpose = (t: Tensor, d0: number, d1: number) => call("transpose.int", t, d0, d1);
export const flatten = (t: Tensor, start = 0, end = -1) => call("flatten.using_ints", t, start, end);
export const squeeze = (t: Tensor, dim?: number) =>
  dim === undefined ? call("squeeze", t) : call("squeeze.dim", t, dim);
export const unsqueeze = (t: Tensor, dim: number) => call("unsqueeze", t, dim);
export const expand = (t: Tensor, shape: readonly number[]) => call("expand", t, shape);
export const expandAs = (t: Tensor, other: Tensor) => call("expand_as", t, other);
export const repeat = (t: Tensor, repeats: readonly number[]) => call("repeat", t, repeats);
export const cat = (ts: readonly Tensor[], dim = 0) => call("cat", ts, dim);
export const stack = (ts: readonly Tensor[], dim = 0) => call("stack", ts, dim);
export const chunk = (t: Tensor, chunks: number, dim = 0) => call<Tensor[]>("chunk", t, chunks, dim);
export function split(t: Tensor, size: number | readonly number[], dim = 0): Tensor[] {
  return typeof size === "number"
    ? call<Tensor[]>("split.Tensor", t, size, dim)
    : call<Tensor[]>("split_with_sizes", t, size, dim);
}
export const narrow = (t: Tensor, dim: number, start: number, length: number) => call("narrow", t, dim, start, length);
/** Strided slice along one dimension, as Python's t[..., start:end:step]. */
export const slice = (t: Tensor, dim: number, start?: number, end?: number, step = 1) =>
  call("slice.Tensor", t, dim, start ?? null, end ?? null, step);
export const select = (t: Tensor, dim: number, index: number) => call("select.int", t, dim, index);

/** Basic indexing over leading dimensions: numbers select (and drop the dim), null keeps, tuples slice. */
export function index(t: Tensor, spec: readonly IndexSpec[]): Tensor {
  let out = t;
  let dim = 0;
  for (const s of spec) {
    const prev = out;
    if (s === null) {
      dim++;
      continue;
    }
    if (typeof s === "number") out = select(out, dim, s);
    else {
      out = slice(out, dim, s[0] ?? undefined, s[1] ?? undefined, s[2] ?? 1);
      dim++;
    }
    if (prev !== t) prev.dispose();
  }
  return out === t ? call("alias", t) : out;
}
export const indexSelect = (t: Tensor, dim: number, idx: Tensor) => call("index_select", t, dim, idx);
export const gather = (t: Tensor, dim: number, idx: Tensor) => call("gather", t, dim, idx);
export function scatter(t: Tensor, dim: number, idx: Tensor, src: Tensor | number): Tensor {
  return isT(src) ? call("scatter.src", t, dim, idx, src) : call("scatter.value", t, dim, idx, src);
}
export const scatterAdd = (t: Tensor, dim: number, idx: Tensor, src: Tensor) => call("scatter_add", t, dim, idx, src);
export const maskedFill = (t: Tensor, mask: Tensor, value: number) => call("masked_fill.Scalar", t, mask, value);
export function where(cond: Tensor, a: Tensor | number, b: Tensor | number): Tensor {
  if (isT(a) && isT(b)) return call("where.self", cond, a, b);
  if (isT(a)) return call("where.ScalarOther", cond, a, b);
  if (isT(b)) return call("where.ScalarSelf", cond, a, b);
  return call("where.Scalar", cond, a, b);
}
export const flip = (t: Tensor, d: readonly number[]) => call("flip", t, d);
export const roll = (t: Tensor, shifts: number | number[], d: number | number[]) =>
  call("roll", t, dims(shifts), dims(d));

/** Pads the last dimensions: pad = [left, right, top, bottom, ...] as torch.nn.functional.pad. */
export function pad(
  t: Tensor,
  amounts: readonly number[],
  mode: "constant" | "reflect" | "replicate" | "circular" = "constant",
  value = 0,
): Tensor {
  return call("pad", t, amounts, mode, mode === "constant" ? value : null);
}

// ---------------------------------------------------------------------------------------------------------------
// elementwise arithmetic
// ---------------------------------------------------------------------------------------------------------------

export function add(a: Tensor, b: Tensor | number, alpha = 1): Tensor {
  return isT(b) ? call("add.Tensor", a, b, alpha) : call("add.Scalar", a, b, alpha);
}
export function sub(a: Tensor, b: Tensor | number, alpha = 1): Tensor {
  return isT(b) ? call("sub.Tensor", a, b, alpha) : call("sub.Scalar", a, b, alpha);
}
/** number - tensor */
export const rsub = (a: number, b: Tensor) => call("rsub.Scalar", b, a);
export const mul = (a: Tensor, b: Tensor | number) => (isT(b) ? call("mul.Tensor", a, b) : call("mul.Scalar", a, b));
export const div = (a: Tensor, b: Tensor | number) => (isT(b) ? call("div.Tensor", a, b) : call("div.Scalar", a, b));
export function pow(a: Tensor | number, e: Tensor | number): Tensor {
  if (isT(a)) return isT(e) ? call("pow.Tensor_Tensor", a, e) : call("pow.Tensor_Scalar", a, e);
  if (!isT(e)) throw new Error("pow: at least one argument must be a tensor");
  return call("pow.Scalar", a, e);
}
export const addcmul = (t: Tensor, a: Tensor, b: Tensor, value = 1) => call("addcmul", t, a, b, value);
export const addcdiv = (t: Tensor, a: Tensor, b: Tensor, value = 1) => call("addcdiv", t, a, b, value);
export const lerp = (a: Tensor, b: Tensor, w: number) => call("lerp.Scalar", a, b, w);
export const sqrt = (t: Tensor) => call("sqrt", t);
export const rsqrt = (t: Tensor) => call("rsqrt", t);
export const exp = (t: Tensor) => call("exp", t);
export const log = (t: Tensor) => call("log", t);
export const abs = (t: Tensor) => call("abs", t);
export const neg = (t: Tensor) => call("neg", t);
export const sign = (t: Tensor) => call("sign", t);
export const sin = (t: Tensor) => call("sin", t);
export const cos = (t: Tensor) => call("cos", t);
export const tanh = (t: Tensor) => call("tanh", t);
export const sigmoid = (t: Tensor) => call("sigmoid", t);
export const square = (t: Tensor) => call("square", t);
export const round = (t: Tensor) => call("round", t);
export const floor = (t: Tensor) => call("floor", t);
export function clamp(t: Tensor, min?: number | Tensor, max?: number | Tensor): Tensor {
  if (isT(min) || isT(max)) return call("clamp.Tensor", t, min ?? null, max ?? null);
  return call("clamp", t, min ?? null, max ?? null);
}
export const minimum = (a: Tensor, b: Tensor) => call("minimum", a, b);
export const maximum = (a: Tensor, b: Tensor) => call("maximum", a, b);

// In place, for optimisers and buffers.
export function mulInto(t: Tensor, b: Tensor | number): void {
  isT(b) ? callInPlace("mul_.Tensor", t, b) : callInPlace("mul_.Scalar", t, b);
}
export function addInto(t: Tensor, b: Tensor | number, alpha = 1): void {
  isT(b) ? callInPlace("add_.Tensor", t, b, alpha) : callInPlace("add_.Scalar", t, b, alpha);
}
export const addcmulInto = (t: Tensor, a: Tensor, b: Tensor, value: number) => callInPlace("addcmul_", t, a, b, value);
export const addcdivInto = (t: Tensor, a: Tensor, b: Tensor, value: number) => callInPlace("addcdiv_", t, a, b, value);
export const clampInto = (t: Tensor, min: number | null, max: number | null) => callInPlace("clamp_", t, min, max);

// ---------------------------------------------------------------------------------------------------------------
// comparison and logic
// ---------------------------------------------------------------------------------------------------------------

const cmp = (name: string) => (a: Tensor, b: Tensor | number) =>
  isT(b) ? call(`${name}.Tensor`, a, b) : call(`${name}.Scalar`, a, b);
export const eq = cmp("eq");
export const ne = cmp("ne");
export const lt = cmp("lt");
export const le = cmp("le");
export const gt = cmp("gt");
export const ge = cmp("ge");
export const logicalAnd = (a: Tensor, b: Tensor) => call("logical_and", a, b);
export const logicalOr = (a: Tensor, b: Tensor) => call("logical_or", a, b);
export const logicalXor = (a: Tensor, b: Tensor) => call("logical_xor", a, b);
export const logicalNot = (a: Tensor) => call("logical_not", a);
export const isfinite = (a: Tensor) => call("isfinite", a);
export const allclose = (a: Tensor, b: Tensor, rtol = 1e-5, atol = 1e-8) => call<boolean>("allclose", a, b, rtol, atol);
export const equal = (a: Tensor, b: Tensor) => call<boolean>("equal", a, b);

// ---------------------------------------------------------------------------------------------------------------
// reductions
// ---------------------------------------------------------------------------------------------------------------

export function sum(t: Tensor, dim?: number | number[], keepdim = false): Tensor {
  return dim === undefined ? call("sum", t) : call("sum.dim_IntList", t, dims(dim), keepdim);
}
export function mean(t: Tensor, dim?: number | number[], keepdim = false): Tensor {
  return dim === undefined ? call("mean", t) : call("mean.dim", t, dims(dim), keepdim);
}
/** Maximum of all values. */
export const max = (t: Tensor) => call("max", t);
export const min = (t: Tensor) => call("min", t);
/** Maximum along a dimension: values and indices. */
export const maxDim = (t: Tensor, dim: number, keepdim = false) => call<[Tensor, Tensor]>("max.dim", t, dim, keepdim);
export const minDim = (t: Tensor, dim: number, keepdim = false) => call<[Tensor, Tensor]>("min.dim", t, dim, keepdim);
export const argmax = (t: Tensor, dim?: number, keepdim = false) => call("argmax", t, dim ?? null, keepdim);
export const argmin = (t: Tensor, dim?: number, keepdim = false) => call("argmin", t, dim ?? null, keepdim);
export const amax = (t: Tensor, dim: number | number[] = [], keepdim = false) => call("amax", t, dims(dim), keepdim);
export const amin = (t: Tensor, dim: number | number[] = [], keepdim = false) => call("amin", t, dims(dim), keepdim);
/** Variance with Bessel's correction by default (unbiased = true), as torch.var. */
export function variance(
  t: Tensor,
  dim?: number | number[],
  opts: { unbiased?: boolean; keepdim?: boolean } = {},
): Tensor {
  return call(
    "var.correction",
    t,
    dim === undefined ? null : dims(dim),
    opts.unbiased === false ? 0 : 1,
    opts.keepdim ?? false,
  );
}
export function std(t: Tensor, dim?: number | number[], opts: { unbiased?: boolean; keepdim?: boolean } = {}): Tensor {
  return call(
    "std.correction",
    t,
    dim === undefined ? null : dims(dim),
    opts.unbiased === false ? 0 : 1,
    opts.keepdim ?? false,
  );
}
export const logsumexp = (t: Tensor, dim: number | number[], keepdim = false) =>
  call("logsumexp", t, dims(dim), keepdim);
/** Vector p-norm (p = 1, 2, Infinity, ...) over all values or the given dims. */
export const norm = (t: Tensor, p = 2, dim?: number | number[], keepdim = false) =>
  call("linalg_vector_norm", t, p, dim === undefined ? null : dims(dim), keepdim);
export const sort = (t: Tensor, dim = -1, descending = false) =>
  call<[Tensor, Tensor]>("sort.stable", t, true, dim, descending);
export function argsort(t: Tensor, dim = -1, descending = false): Tensor {
  const [values, indices] = sort(t, dim, descending);
  values.dispose();
  return indices;
}
export const topk = (t: Tensor, k: number, dim = -1, largest = true, sorted = true) =>
  call<[Tensor, Tensor]>("topk", t, k, dim, largest, sorted);
export const cumsum = (t: Tensor, dim: number) => call("cumsum", t, dim);
export const all = (t: Tensor) => call("all", t);
export const any = (t: Tensor) => call("any", t);

// ---------------------------------------------------------------------------------------------------------------
// linear algebra
// ---------------------------------------------------------------------------------------------------------------

export const matmul = (a: Tensor, b: Tensor) => call("matmul", a, b);
export const bmm = (a: Tensor, b: Tensor) => call("bmm", a, b);
export const outer = (a: Tensor, b: Tensor) => call("outer", a, b);

/** True if two tensors are the same libtorch tensor (used by tests of in-place results). */
export const isSame = (a: Tensor, b: Tensor) => native.sameStorage(a.handle, b.handle);
