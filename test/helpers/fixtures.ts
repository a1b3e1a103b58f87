// Shared test helpers: fixture paths and float comparison with relative error.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Tensor } from "../../src/torch/index.js";

/** The repository root (tests run from dist/test/..., sources live in test/...). */
export const ROOT = (() => {
  let d = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(d, "package.json"))) d = dirname(d);
  return d;
})();

export const fixture = (...parts: string[]) => join(ROOT, "test", "fixtures", ...parts);

/** max |a - b| / max(max |b|, tiny): one relative error for the whole tensor, as the parity tests require. */
export function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, `length ${a.length} vs ${b.length}`);
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num = Math.max(num, Math.abs(a[i] - b[i]));
    den = Math.max(den, Math.abs(b[i]));
  }
  return num / Math.max(den, 1e-30);
}

export function assertClose(actual: Tensor, expected: Tensor, tol = 1e-5, what = "tensor"): void {
  assert.deepEqual(actual.shape, expected.shape, `${what}: shape`);
  const e = relErr(actual.toFloat64Array(), expected.toFloat64Array());
  assert.ok(e <= tol, `${what}: rel err ${e.toExponential(3)} > ${tol}`);
}
