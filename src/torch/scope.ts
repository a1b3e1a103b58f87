// Deterministic disposal. Native tensors live outside V8's heap; in hot loops waiting for the garbage collector lets
// memory grow, so work runs inside `tidy`, which frees every tensor created in it except those it returns.
import type { Tensor } from "./tensor.js";

const stack: Set<Tensor>[] = [];

/** Called by every new Tensor: it belongs to the innermost open scope, if any. */
export function track(t: Tensor): void {
  stack.at(-1)?.add(t);
}

/** Removes tensors from the open scopes so that they outlive them (parameters, optimiser state, caches). */
export function keep<T extends Tensor>(t: T): T {
  for (const s of stack) s.delete(t);
  return t;
}

/** Runs fn; every tensor created inside and not reachable from its result is disposed when it returns or throws. */
export function tidy<T>(fn: () => T): T {
  const scope = new Set<Tensor>();
  stack.push(scope);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    stack.pop();
    for (const t of scope) t.dispose();
    throw e;
  }
  stack.pop();
  if (result instanceof Promise) {
    for (const t of scope) t.dispose();
    throw new Error("tidy() takes a synchronous function: a promise cannot keep its tensors alive");
  }
  const kept = new Set<Tensor>();
  collect(result, kept, 0);
  const parent = stack.at(-1);
  for (const t of scope) {
    if (kept.has(t)) parent?.add(t);
    else t.dispose();
  }
  return result;
}

function collect(v: unknown, out: Set<Tensor>, depth: number): void {
  if (v === null || typeof v !== "object" || depth > 8) return;
  if (isTensor(v)) {
    out.add(v);
    return;
  }
  if (Array.isArray(v)) for (const e of v) collect(e, out, depth + 1);
  else if (v instanceof Map) for (const e of v.values()) collect(e, out, depth + 1);
  else if (Object.getPrototypeOf(v) === Object.prototype) for (const e of Object.values(v)) collect(e, out, depth + 1);
}

function isTensor(v: object): v is Tensor {
  return (v as { __isTensor?: boolean }).__isTensor === true;
}

/** Disposes every tensor found in a value (tensors, arrays, maps, plain objects). */
export function disposeAll(v: unknown): void {
  const s = new Set<Tensor>();
  collect(v, s, 0);
  for (const t of s) t.dispose();
}
