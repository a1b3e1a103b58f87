// Pieces of an evaluation record that are not training: versions, file digests, and mean ± std over repeats.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { torchVersion } from "../torch/index.js";
import { packageRoot } from "../util/assets.js";

export interface Versions {
  cao2: string;
  libtorch: string;
  node: string;
}

export function versions(): Versions {
  const pkg = JSON.parse(readFileSync(join(packageRoot(), "package.json"), "utf8")) as { version: string };
  return { cao2: pkg.version, libtorch: torchVersion(), node: process.versions.node };
}

export interface Summary {
  mean: number;
  /** Sample standard deviation (n - 1 in the denominator); 0 for a single value. */
  std: number;
  values: number[];
}

/**
 * Mean and sample standard deviation. Minimax's and RDED's logs print numpy's np.std, the population deviation
 * (n in the denominator), which is smaller by sqrt((n-1)/n): 0.816 for 3 repeats. The values are kept so that either
 * can be computed from a record.
 */
export function meanStd(values: readonly number[]): Summary {
  const n = values.length;
  const mean = values.reduce((a, b) => a + b, 0) / n;
  const std = n > 1 ? Math.sqrt(values.reduce((a, v) => a + (v - mean) ** 2, 0) / (n - 1)) : 0;
  return { mean, std, values: values.slice() };
}

export const formatMeanStd = (s: Summary) => `${s.mean.toFixed(2)} ± ${s.std.toFixed(2)}`;
