// Tensor factories. Defaults follow PyTorch: float32 for floating factories, int64 for integer ones.
import { call, callInPlace } from "./dispatch.js";
import { type AnyTypedArray, type DType, dtypeOfArray, SCALAR_TYPE } from "./dtype.js";
import { native } from "./native.js";
import { Generator } from "./random.js";
import { Tensor } from "./tensor.js";

export interface TensorOptions {
  dtype?: DType;
  device?: string;
  requiresGrad?: boolean;
}
export interface RandomOptions extends TensorOptions {
  generator?: Generator;
}

const code = (d: DType | undefined, fallback: DType = "float32") => SCALAR_TYPE[d ?? fallback];

function finish(t: Tensor, opts: TensorOptions): Tensor {
  let out = t;
  if (opts.device && opts.device !== "cpu") {
    out = call("to.device", t, opts.device, SCALAR_TYPE[t.dtype]);
    t.dispose();
  }
  if (opts.requiresGrad) out.requiresGrad_(true);
  return out;
}

/** Copies a typed array into a new tensor; float16/bfloat16 take raw bits in a Uint16Array and need `dtype`. */
export function fromArray(data: AnyTypedArray, shape: readonly number[], opts: TensorOptions = {}): Tensor {
  const dtype = opts.dtype ?? dtypeOfArray(data);
  return finish(new Tensor(native.fromBuffer(data, shape, SCALAR_TYPE[dtype])), opts);
}

/** A tensor from nested JS arrays of numbers (or booleans); dtype float32 unless given. */
export function tensor(data: unknown, opts: TensorOptions = {}): Tensor {
  const shape: number[] = [];
  let probe: unknown = data;
  while (Array.isArray(probe)) {
    shape.push(probe.length);
    probe = probe[0];
  }
  const flat = (Array.isArray(data) ? data.flat(Infinity) : [data]) as (number | boolean)[];
  const numel = shape.reduce((a, b) => a * b, 1);
  if (flat.length !== numel)
    throw new Error(`tensor(): ragged nested array (shape [${shape}] needs ${numel} values, got ${flat.length})`);
  const dtype = opts.dtype ?? (typeof probe === "boolean" ? "bool" : "float32");
  const nums = flat.map(Number);
  let arr: AnyTypedArray;
  switch (dtype) {
    case "float64":
      arr = Float64Array.from(nums);
      break;
    case "int64":
      arr = BigInt64Array.from(nums.map((v) => BigInt(Math.trunc(v))));
      break;
    case "int32":
      arr = Int32Array.from(nums);
      break;
    case "int16":
      arr = Int16Array.from(nums);
      break;
    case "int8":
      arr = Int8Array.from(nums);
      break;
    case "uint8":
    case "bool":
      arr = Uint8Array.from(nums);
      break;
    default: {
      const f = fromArray(Float32Array.from(nums), shape, { dtype: "float32" });
      if (dtype === "float32") return finish(f, opts);
      const c = f.to(dtype);
      f.dispose();
      return finish(c, opts);
    }
  }
  return fromArray(arr, shape, { ...opts, dtype });
}

export const scalarTensor = (v: number, opts: TensorOptions = {}) => tensor(v, opts);

// Deterministic factories allocate on the target device directly (no CPU copy of a large model first).
const dev = (o: TensorOptions) => (o.device && o.device !== "cpu" ? o.device : null);
const grad = (t: Tensor, o: TensorOptions) => (o.requiresGrad ? t.requiresGrad_(true) : t);
export const zeros = (shape: readonly number[], options: TensorOptions = {}) =>
  grad(call("zeros", shape, code(options.dtype), null, dev(options)), options);
export const ones = (shape: readonly number[], options: TensorOptions = {}) =>
  grad(call("ones", shape, code(options.dtype), null, dev(options)), options);
export const empty = (shape: readonly number[], options: TensorOptions = {}) =>
  grad(call("empty.memory_format", shape, code(options.dtype), null, dev(options)), options);
export const full = (shape: readonly number[], value: number, options: TensorOptions = {}) =>
  grad(call("full", shape, value, code(options.dtype), null, dev(options)), options);
/** Values start, start+step, ... below end; `arange(n)` counts 0..n-1. int64 when all arguments are integers. */
export function arange(start: number, end?: number, step = 1, options: TensorOptions = {}): Tensor {
  const [s, e] = end === undefined ? [0, start] : [start, end];
  const ints = [s, e, step].every(Number.isInteger);
  return finish(call("arange.start_step", s, e, step, code(options.dtype, ints ? "int64" : "float32")), options);
}
export const linspace = (start: number, end: number, steps: number, options: TensorOptions = {}) =>
  finish(call("linspace", start, end, steps, code(options.dtype)), options);
export const eye = (n: number, models?: number, options: TensorOptions = {}) =>
  finish(call("eye.m", n, models ?? n, code(options.dtype)), options);

const like =
  (name: string) =>
  (t: Tensor, o: TensorOptions = {}) =>
    finish(call(name, t, o.dtype ? SCALAR_TYPE[o.dtype] : null), o);
export const zerosLike = like("zeros_like");
export const onesLike = like("ones_like");
export const emptyLike = like("empty_like");
export const fullLike = (t: Tensor, value: number, options: TensorOptions = {}) =>
  finish(call("full_like", t, value, options.dtype ? SCALAR_TYPE[options.dtype] : null), options);

// Random draws always happen on the CPU generator (see random.ts), then move to the requested device.
export const randn = (shape: readonly number[], options: RandomOptions = {}) =>
  finish(call("randn.generator", shape, options.generator?.handle ?? null, code(options.dtype)), options);
export const rand = (shape: readonly number[], options: RandomOptions = {}) =>
  finish(call("rand.generator", shape, options.generator?.handle ?? null, code(options.dtype)), options);
/** Integers uniformly in [low, high). */
export const randint = (low: number, high: number, shape: readonly number[], options: RandomOptions = {}) =>
  finish(
    call("randint.low_generator", low, high, shape, options.generator?.handle ?? null, code(options.dtype, "int64")),
    options,
  );
export const randperm = (n: number, options: RandomOptions = {}) =>
  finish(call("randperm.generator", n, options.generator?.handle ?? null, code(options.dtype, "int64")), options);
export const randnLike = (t: Tensor, options: RandomOptions = {}) =>
  randn(t.shape, { dtype: t.dtype, device: t.device, ...options });
export const randLike = (t: Tensor, options: RandomOptions = {}) =>
  rand(t.shape, { dtype: t.dtype, device: t.device, ...options });
/** Fills t in place with N(mean, std) draws. */
export function normalInto(t: Tensor, mean = 0, std = 1, generator?: Generator): void {
  callInPlace("normal_", t, mean, std, generator?.handle ?? null);
}
/** Fills t in place with U(from, to) draws. */
export function uniformInto(t: Tensor, from = 0, to = 1, generator?: Generator): void {
  callInPlace("uniform_", t, from, to, generator?.handle ?? null);
}
