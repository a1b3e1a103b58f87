// The weights of the ResNet parity fixtures: the same counter-based hash as tools/reference/models_resnet.py
// (fixture_weight), so that a ResNet of any shape gets the same values on both sides without storing them.
import assert from "node:assert/strict";
import * as torch from "../../src/torch/index.js";
import type { Model } from "../../src/models/module.js";

function lowbias32(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x >>> 0;
}

function fnv1a(key: string): number {
  let h = 0x811c9dc5;
  for (const b of Buffer.from(key, "utf8")) h = Math.imul(h ^ b, 0x01000193) >>> 0;
  return h;
}

/**
 * offset + scale * u with u in [-1, 1) hashed from (key, index), rounded to float32; the per-key rule is the reference
 * script's. Also returns the float64 sum, which the reference records per key.
 */
export function fixtureWeight(key: string, shape: readonly number[]): { t: torch.Tensor; sum: number } {
  const n = shape.reduce((a, b) => a * b, 1);
  const leaf = key.slice(key.lastIndexOf(".") + 1);
  const [offset, scale] =
    leaf === "running_var"
      ? [1, 0.5]
      : leaf === "running_mean"
        ? [0, 0.2]
        : leaf === "bias"
          ? [0, 0.1]
          : shape.length === 1
            ? [1, 0.3]
            : [0, Math.sqrt((shape.length === 4 ? 6 : 3) / (n / shape[0]))];
  const seed = fnv1a(key);
  const out = new Float32Array(n);
  let sum = 0;
  for (let i = 0; i < n; i++) {
    out[i] = offset + scale * ((lowbias32(lowbias32(i) ^ seed) >>> 8) / 2 ** 23 - 1);
    sum += out[i];
  }
  return { t: torch.fromArray(out, shape), sum };
}

/**
 * Fills every weight and buffer of `model` with the fixture values (num_batches_tracked: 0). With `sums` (the reference
 * script's per-key float64 sums), each value's sum is checked first: a difference there is the weights', not the model's.
 */
export function fillFixtureWeights<M extends Model>(model: M, sums?: Record<string, number>): M {
  const sd = new Map<string, torch.Tensor>();
  for (const [k, v] of model.stateDict()) {
    if (k.endsWith("num_batches_tracked")) {
      sd.set(k, torch.zeros([], { dtype: "int64" }));
      continue;
    }
    const { t, sum } = fixtureWeight(k, v.shape);
    if (sums)
      assert.ok(
        Math.abs(sum - sums[k]) <= 1e-9 * (1 + Math.abs(sums[k])),
        `fixture weight ${k}: sum ${sum} vs ${sums[k]}`,
      );
    sd.set(k, t);
  }
  model.loadStateDict(sd);
  torch.disposeAll(sd);
  return model;
}
