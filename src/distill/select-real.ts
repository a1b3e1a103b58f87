// The "selected real" baseline (the paper's appendix, Table 12): Algorithm 1's selection applied to real training
// images instead of diffusion samples. Per class, a pool of poolFactor x IPC real images drawn at random (the
// random-real baseline's draw with poolFactor x IPC), scored by the selector as a run scores its samples (paper mode:
// images in [0, 1], resized and normalised as the selector was trained), and IPC of them chosen by the strategy.
import { type Dataset, labelsTensor, randomPerClassIndices } from "../io/datasets/index.js";
import { toUnitFloat } from "../io/image.js";
import { cat, indexSelect, noGrad, type Tensor, tidy } from "../torch/index.js";
import { deriveSeed, randomSource } from "../util/seed.js";
import type { LoadedModels } from "./models.js";
import { classifyImages, imageFeatures } from "./score.js";
import { type FillRule, resolveStrategy, scoreCandidates, selectCandidates, type Strategy } from "./select.js";

export interface SelectRealOptions {
  ipc: number;
  poolFactor: number;
  strategy: Strategy;
  fill: FillRule;
  seed: number;
  /** The selector's class index for each label of the data set. */
  targets: readonly number[];
  batchSize: number;
}

export interface RealSelection {
  label: number;
  /** Source indices of the class's pool, ascending. */
  pool: number[];
  /** Source indices chosen, in selection order. */
  selected: number[];
  strategy: string;
  /** How many were filled in from images the selector gets wrong. */
  filled: number;
  /** The selector's probability of the class for each pool image. */
  confidence: number[];
}

/** The selector's outputs for source images, in batches: `f` maps a [0, 1] batch to one row per image. */
function inBatches(source: Dataset, indices: readonly number[], batchSize: number, f: (x: Tensor) => Tensor): Tensor {
  return noGrad(() =>
    tidy(() => {
      const parts: Tensor[] = [];
      for (let lo = 0; lo < indices.length; lo += batchSize) {
        const idx = labelsTensor(indices.slice(lo, lo + batchSize));
        parts.push(f(toUnitFloat(indexSelect(source.images, 0, idx))));
      }
      return cat(parts, 0);
    }),
  );
}

export function selectRealImages(
  source: Dataset,
  models: Pick<LoadedModels, "selector" | "selectorPreprocess">,
  options: SelectRealOptions,
): RealSelection[] {
  const drawn = randomPerClassIndices(source, options.ipc * options.poolFactor, options.seed);
  const numClasses = models.selector.config.numClasses;
  return source.classes.map((_, label) => {
    const pool = drawn.filter((i) => source.labels[i] === label);
    const target = options.targets[label];
    const probs = tidy(() =>
      inBatches(source, pool, options.batchSize, (x) =>
        classifyImages(models, x, { compat: "paper" }),
      ).toFloat32Array(),
    );
    const cands = scoreCandidates(probs, numClasses, target);
    const representative = resolveStrategy(options.strategy, options.ipc) === "representative";
    const features = representative
      ? tidy(() => inBatches(source, pool, options.batchSize, (x) => imageFeatures(models, x)).toFloat32Array())
      : undefined;
    const s = selectCandidates(cands, target, {
      strategy: options.strategy,
      ipc: options.ipc,
      fill: options.fill,
      random: randomSource(deriveSeed(options.seed, label, "select")),
      features: features && { data: features, dim: features.length / pool.length },
    });
    return {
      label,
      pool,
      selected: s.selected.map((i) => pool[i]),
      strategy: s.strategy,
      filled: s.filled,
      confidence: cands.map((c) => c.confidence),
    };
  });
}
