// The condition c^ of refinement (paper Eq. 5): the true label on an easy task, the null label on a hard one, the
// task's difficulty being judged by the selector's validation accuracy on it (Section 3.4). Condition "auto" measures
// that accuracy on real images the shipped models held out (presets.ts, HELD_OUT), shown to the selector the way a
// run shows it the generated candidates (score.ts); a preset without held-out images falls back to the accuracy
// recorded in the selector file, and without that to the preset's condition. The task is all of the preset's classes,
// not only those of this run, so that runs over parts of the classes (shards of one set) choose alike. Nothing is
// cached: a run (and its resumption) measures afresh.
import { batch, type Dataset, loadDataSpec } from "../io/datasets/index.js";
import { argmax, noGrad, tidy } from "../torch/index.js";
import type { LoadedModels } from "./models.js";
import { type ClassSpec, type Condition, HELD_OUT, type PresetName } from "./presets.js";
import { classifyImages } from "./score.js";

export interface ConditionChoice {
  requested: Condition;
  chosen: "true" | "null";
  /** For "auto": the selector's top-1 accuracy the choice was made on (absent when none was known). */
  accuracy?: number;
  /** Where the accuracy came from: a held-out data set, or the selector file's record. */
  source?: string;
  /** How many held-out images were classified. */
  images?: number;
  /** For "auto": the true label is chosen when the accuracy reaches this. */
  threshold?: number;
  /** Why the choice did not rest on a measurement. */
  note?: string;
}

type Selector = Pick<LoadedModels, "selector" | "selectorPreprocess">;

/**
 * Top-1 accuracy of the selector on labelled real images, fed as a run feeds it the decoded candidates (score.ts:
 * images in [0, 1]; with `--compat authors` in the decoder's range [-1, 1], unnormalised). `classes[label].modelIndex`
 * is the selector's index of data-set label `label`.
 */
export function heldOutAccuracy(
  models: Selector,
  ds: Dataset,
  classes: readonly ClassSpec[],
  options: { batchSize: number; compat: "paper" | "authors"; device: string },
): number {
  if (ds.classes.length !== classes.length)
    throw new Error(`${ds.source.path}: ${ds.classes.length} classes, but the preset has ${classes.length}`);
  let correct = 0;
  noGrad(() => {
    for (let lo = 0; lo < ds.labels.length; lo += options.batchSize) {
      const idx = Array.from({ length: Math.min(options.batchSize, ds.labels.length - lo) }, (_, i) => lo + i);
      const pred = tidy(() => {
        const x = batch(ds, idx).x.to(options.device);
        return argmax(
          classifyImages(models, options.compat === "authors" ? x.mul(2).sub(1) : x, options),
          1,
        ).toNumbers();
      });
      pred.forEach((p, i) => {
        if (p === classes[ds.labels[idx[i]]].modelIndex) correct++;
      });
    }
  });
  return correct / ds.labels.length;
}

export interface ConditionRequest {
  condition: Condition;
  autoConditionThreshold: number;
  preset: PresetName;
  /** All of the preset's classes, in label order. */
  presetClasses: readonly ClassSpec[];
  /** What the preset uses when "auto" has nothing to judge by. */
  presetCondition: "true" | "null";
  batchSize: number;
  compat: "paper" | "authors";
  device: string;
}

/** Decides c^ (see the top of this file). */
export function chooseCondition(
  r: ConditionRequest,
  models: Selector & Pick<LoadedModels, "selectorAccuracy">,
): ConditionChoice {
  if (r.condition !== "auto") return { requested: r.condition, chosen: r.condition };
  const threshold = r.autoConditionThreshold;
  const decide = (accuracy: number) => (accuracy >= threshold ? "true" : "null");
  const heldOut = HELD_OUT[r.preset];
  if (heldOut) {
    const ds = loadDataSpec(heldOut, "train");
    try {
      const accuracy = heldOutAccuracy(models, ds, r.presetClasses, r);
      return {
        requested: "auto",
        chosen: decide(accuracy),
        accuracy,
        source: heldOut,
        images: ds.labels.length,
        threshold,
      };
    } finally {
      ds.images.dispose();
    }
  }
  if (models.selectorAccuracy !== undefined) {
    const note = `the ${r.preset} preset has no held-out images to measure the selector on; using the validation accuracy recorded in the selector file`;
    return {
      requested: "auto",
      chosen: decide(models.selectorAccuracy),
      accuracy: models.selectorAccuracy,
      source: "selector file (val_accuracy)",
      threshold,
      note,
    };
  }
  const note = `the ${r.preset} preset has no held-out images and the selector file records no accuracy; using the preset's condition (${r.presetCondition})`;
  return { requested: "auto", chosen: r.presetCondition, threshold, note };
}
