// The Tensor class: a handle to a libtorch tensor with shape, dtype and device, plus the most used ops as methods.
// Methods are one-line forwards to the functions in ops.ts so that each op has one implementation.
import { setTensorClass } from "./dispatch.js";
import { native } from "./native.js";
import { type AnyTypedArray, type DType, dtypeFromCode, typedArrayFor } from "./dtype.js";
import { track } from "./scope.js";
import * as O from "./ops.js";
import type { IndexSpec } from "./ops.js";

export type Shape = readonly number[];

export class Tensor {
  readonly __isTensor = true;
  /** The native handle; valid until dispose(). */
  readonly handle: object;
  private meta?: { shape: number[]; dtype: DType; device: string };
  private disposed = false;

  /** @internal Tensors are made by ops and factories, not constructed directly. */
  constructor(handle: object) {
    this.handle = handle;
    track(this);
  }

  private info() {
    if (this.disposed) throw new Error("this tensor was disposed and can no longer be used");
    if (!this.meta) {
      const [shape, code, device] = native.meta(this.handle);
      this.meta = { shape, dtype: dtypeFromCode(code), device };
    }
    return this.meta;
  }

  get shape(): number[] {
    return this.info().shape.slice();
  }
  get dtype(): DType {
    return this.info().dtype;
  }
  get device(): string {
    return this.info().device;
  }
  get ndim(): number {
    return this.info().shape.length;
  }
  get numel(): number {
    return this.info().shape.reduce((a, b) => a * b, 1);
  }
  /** Size of one dimension; negative dims count from the end. */
  size(dim: number): number {
    const s = this.info().shape;
    const d = dim < 0 ? dim + s.length : dim;
    if (d < 0 || d >= s.length) throw new Error(`dimension ${dim} out of range for a ${s.length}-d tensor`);
    return s[d];
  }
  get isDisposed(): boolean {
    return this.disposed;
  }

  /** Frees the native memory now. Using the tensor afterwards throws. */
  dispose(): void {
    if (this.disposed) return;
    native.dispose(this.handle);
    this.disposed = true;
  }

  // ----- data out -----
  /** The values as the dtype's typed array (contiguous copy, on the CPU). float16/bfloat16 give raw bits. */
  toArray(): AnyTypedArray {
    return typedArrayFor(this.dtype, native.toBuffer(this.handle));
  }
  toFloat32Array(): Float32Array {
    if (this.dtype === "float32") return new Float32Array(native.toBuffer(this.handle));
    const f = this.to("float32");
    try {
      return new Float32Array(native.toBuffer(f.handle));
    } finally {
      f.dispose();
    }
  }
  toFloat64Array(): Float64Array {
    const f = this.to("float64");
    try {
      return new Float64Array(native.toBuffer(f.handle));
    } finally {
      f.dispose();
    }
  }
  /** Raw little-endian bytes of the contiguous values. */
  toBytes(): Uint8Array {
    return new Uint8Array(native.toBuffer(this.handle));
  }
  /** The single value of a one-element tensor. */
  item(): number {
    return Number(native.item(this.handle));
  }
  /** Values as plain numbers (int64 converted with Number()). */
  toNumbers(): number[] {
    const a = this.toArray();
    return a instanceof BigInt64Array ? Array.from(a, Number) : Array.from(a as ArrayLike<number>);
  }
  toString(): string {
    return `Tensor(shape=[${this.shape}], dtype=${this.dtype}, device=${this.device})`;
  }
  strides(): { strides: number[]; offset: number } {
    const s = native.strides(this.handle);
    return { strides: s.slice(0, -1), offset: s[s.length - 1] };
  }

  // ----- autograd -----
  get requiresGrad(): boolean {
    return native.meta(this.handle)[3];
  }
  /** Marks a leaf tensor as needing gradients (in place); returns this. */
  requiresGrad_(on = true): this {
    native.setRequiresGrad(this.handle, on);
    return this;
  }
  get isLeaf(): boolean {
    return native.meta(this.handle)[4];
  }
  /** The accumulated gradient of a leaf, or null. Each read returns a new handle to the same values. */
  get grad(): Tensor | null {
    const g = native.getGrad(this.handle);
    return g ? new Tensor(g) : null;
  }
  set grad(g: Tensor | null) {
    native.setGrad(this.handle, g ? g.handle : null);
  }
  zeroGrad(): void {
    native.setGrad(this.handle, null);
  }
  backward(gradient?: Tensor, opts: { retainGraph?: boolean; createGraph?: boolean } = {}): void {
    native.backward(
      [this.handle],
      [gradient ? gradient.handle : null],
      opts.retainGraph ?? false,
      opts.createGraph ?? false,
    );
  }
  detach(): Tensor {
    return O.detach(this);
  }

  // ----- conversion -----
  to(target: DType | string, dtype?: DType): Tensor {
    return O.to(this, target, dtype);
  }
  float(): Tensor {
    return O.to(this, "float32");
  }
  long(): Tensor {
    return O.to(this, "int64");
  }
  clone(): Tensor {
    return O.clone(this);
  }
  contiguous(format: O.MemoryFormat = "contiguous"): Tensor {
    return O.contiguous(this, format);
  }

  // ----- shape -----
  reshape(...shape: number[]): Tensor {
    return O.reshape(this, shape);
  }
  view(...shape: number[]): Tensor {
    return O.view(this, shape);
  }
  permute(...dims: number[]): Tensor {
    return O.permute(this, dims);
  }
  transpose(d0: number, d1: number): Tensor {
    return O.transpose(this, d0, d1);
  }
  flatten(start = 0, end = -1): Tensor {
    return O.flatten(this, start, end);
  }
  squeeze(dim?: number): Tensor {
    return O.squeeze(this, dim);
  }
  unsqueeze(dim: number): Tensor {
    return O.unsqueeze(this, dim);
  }
  expand(...shape: number[]): Tensor {
    return O.expand(this, shape);
  }
  repeat(...repeats: number[]): Tensor {
    return O.repeat(this, repeats);
  }
  chunk(chunks: number, dim = 0): Tensor[] {
    return O.chunk(this, chunks, dim);
  }
  split(size: number | number[], dim = 0): Tensor[] {
    return O.split(this, size, dim);
  }
  narrow(dim: number, start: number, length: number): Tensor {
    return O.narrow(this, dim, start, length);
  }
  slice(dim: number, start?: number, end?: number, step = 1): Tensor {
    return O.slice(this, dim, start, end, step);
  }
  select(dim: number, index: number): Tensor {
    return O.select(this, dim, index);
  }
  index(...spec: IndexSpec[]): Tensor {
    return O.index(this, spec);
  }
  indexSelect(dim: number, index: Tensor): Tensor {
    return O.indexSelect(this, dim, index);
  }
  gather(dim: number, index: Tensor): Tensor {
    return O.gather(this, dim, index);
  }
  maskedFill(mask: Tensor, value: number): Tensor {
    return O.maskedFill(this, mask, value);
  }
  flip(...dims: number[]): Tensor {
    return O.flip(this, dims);
  }

  // ----- arithmetic -----
  add(o: Tensor | number, alpha?: number): Tensor {
    return O.add(this, o, alpha);
  }
  sub(o: Tensor | number, alpha?: number): Tensor {
    return O.sub(this, o, alpha);
  }
  mul(o: Tensor | number): Tensor {
    return O.mul(this, o);
  }
  div(o: Tensor | number): Tensor {
    return O.div(this, o);
  }
  pow(e: Tensor | number): Tensor {
    return O.pow(this, e);
  }
  neg(): Tensor {
    return O.neg(this);
  }
  abs(): Tensor {
    return O.abs(this);
  }
  sqrt(): Tensor {
    return O.sqrt(this);
  }
  rsqrt(): Tensor {
    return O.rsqrt(this);
  }
  exp(): Tensor {
    return O.exp(this);
  }
  log(): Tensor {
    return O.log(this);
  }
  clamp(min?: number, max?: number): Tensor {
    return O.clamp(this, min, max);
  }
  matmul(o: Tensor): Tensor {
    return O.matmul(this, o);
  }

  // ----- comparison -----
  eq(o: Tensor | number): Tensor {
    return O.eq(this, o);
  }
  ne(o: Tensor | number): Tensor {
    return O.ne(this, o);
  }
  lt(o: Tensor | number): Tensor {
    return O.lt(this, o);
  }
  le(o: Tensor | number): Tensor {
    return O.le(this, o);
  }
  gt(o: Tensor | number): Tensor {
    return O.gt(this, o);
  }
  ge(o: Tensor | number): Tensor {
    return O.ge(this, o);
  }

  // ----- reductions -----
  sum(dim?: number | number[], keepdim = false): Tensor {
    return O.sum(this, dim, keepdim);
  }
  mean(dim?: number | number[], keepdim = false): Tensor {
    return O.mean(this, dim, keepdim);
  }
  max(): Tensor {
    return O.max(this);
  }
  min(): Tensor {
    return O.min(this);
  }
  argmax(dim?: number, keepdim = false): Tensor {
    return O.argmax(this, dim, keepdim);
  }
  norm(p: number = 2, dim?: number | number[], keepdim = false): Tensor {
    return O.norm(this, p, dim, keepdim);
  }

  // ----- in place (for optimisers and buffers); each returns this -----
  copy_(src: Tensor): this {
    O.copyInto(this, src);
    return this;
  }
  fill_(value: number): this {
    O.fillInto(this, value);
    return this;
  }
  mul_(o: Tensor | number): this {
    O.mulInto(this, o);
    return this;
  }
  add_(o: Tensor | number, alpha?: number): this {
    O.addInto(this, o, alpha);
    return this;
  }
}

setTensorClass(Tensor);
