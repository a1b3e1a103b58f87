// Checking a state dict against a model's before anything is copied: every missing, unexpected and wrongly shaped
// key by name. Shapes only (no values), so the checkpoint readers use it before reading tensor data.
import { InputError } from "../errors.js";

export interface LoadReport {
  missing: string[];
  unexpected: string[];
}

export class StateDictError extends InputError {
  constructor(
    msg: string,
    readonly report: LoadReport & { mismatched: string[] },
  ) {
    super(msg);
  }
}

/**
 * Compares a state dict's keys and shapes with a model's (any values with a shape: tensors, or checkpoint entries
 * not read yet). Throws StateDictError naming every wrongly shaped key, and, when strict, every missing and
 * unexpected one; otherwise returns the missing and unexpected keys.
 */
export function checkStateDict(
  own: ReadonlyMap<string, { readonly shape: readonly number[] }>,
  src: ReadonlyMap<string, { readonly shape: readonly number[] }>,
  strict: boolean,
  modelName: string,
): LoadReport {
  const missing = [...own.keys()].filter((k) => !src.has(k));
  const unexpected = [...src.keys()].filter((k) => !own.has(k));
  const mismatched: string[] = [];
  for (const [k, t] of own) {
    const s = src.get(k);
    if (s && !sameShape(s.shape, t.shape)) mismatched.push(`${k}: checkpoint [${s.shape}] vs model [${t.shape}]`);
  }
  if (mismatched.length || (strict && (missing.length || unexpected.length))) {
    const parts: string[] = [];
    if (mismatched.length) parts.push(`wrong shapes: ${mismatched.join("; ")}`);
    if (strict && missing.length) parts.push(`missing keys: ${missing.join(", ")}`);
    if (strict && unexpected.length) parts.push(`unexpected keys: ${unexpected.join(", ")}`);
    throw new StateDictError(`state dict does not fit ${modelName}: ${parts.join(" | ")}`, {
      missing,
      unexpected,
      mismatched,
    });
  }
  return { missing, unexpected };
}

const sameShape = (a: readonly number[], b: readonly number[]) =>
  a.length === b.length && a.every((d, i) => d === b[i]);
