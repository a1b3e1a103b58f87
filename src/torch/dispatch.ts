// Calls ATen operators by schema name through the generic native dispatcher. Tensor handles in the results are
// wrapped in the Tensor class, which tensor.ts hands over when it loads: tensor.ts imports the ops (its methods
// forward to them) and the ops import this file, so importing tensor.ts here would close a cycle.
import { native } from "./native.js";
import type { Tensor } from "./tensor.js";

let TensorClass: (new (handle: object) => Tensor) | undefined;

/** @internal Called once, by tensor.ts. */
export function setTensorClass(c: new (handle: object) => Tensor): void {
  TensorClass = c;
}

/** True for a Tensor. */
export const isTensor = (v: unknown): v is Tensor => TensorClass !== undefined && v instanceof TensorClass;

interface OpInfo {
  id: number;
  argNames: string[];
}

const ops = new Map<string, OpInfo>();

function resolve(qualified: string): OpInfo {
  let info = ops.get(qualified);
  if (!info) {
    const dot = qualified.indexOf(".");
    const name = dot < 0 ? qualified : qualified.slice(0, dot);
    const overload = dot < 0 ? "" : qualified.slice(dot + 1);
    const [id, args] = native.op(`aten::${name}`, overload);
    info = { id, argNames: args.map((a) => a[0]) };
    ops.set(qualified, info);
  }
  return info;
}

function unwrapArg(v: unknown): unknown {
  if (isTensor(v)) return v.handle;
  if (Array.isArray(v)) return v.map(unwrapArg);
  return v;
}

// Operators return tensors (handles: the only plain objects among results), numbers, booleans, strings, null, arrays.
function wrapResult(v: unknown): unknown {
  if (typeof v === "object" && v !== null && !Array.isArray(v)) return new TensorClass!(v);
  if (Array.isArray(v)) return v.map(wrapResult);
  return v;
}

/** Calls `aten::<name>.<overload>` with positional arguments; `undefined` takes the schema default. */
export function call<T = Tensor>(qualified: string, ...args: unknown[]): T {
  const { id } = resolve(qualified);
  return wrapResult(native.call(id, args.map(unwrapArg))) as T;
}

/** Calls an operator by argument names (the schema's), for calls with many defaults. */
export function callNamed<T = Tensor>(qualified: string, named: Record<string, unknown>): T {
  const { id, argNames } = resolve(qualified);
  for (const k of Object.keys(named)) {
    if (!argNames.includes(k))
      throw new Error(`aten::${qualified} has no argument '${k}' (has: ${argNames.join(", ")})`);
  }
  return wrapResult(
    native.call(
      id,
      argNames.map((n) => unwrapArg(named[n])),
    ),
  ) as T;
}

/** Calls an in-place operator and discards its result (the mutated first argument). */
export function callInPlace(qualified: string, ...args: unknown[]): void {
  const { id } = resolve(qualified);
  native.call(id, args.map(unwrapArg), true);
}
