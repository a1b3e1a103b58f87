// Deterministic, stratified selections of a data set: train/validation splits and the random-real baseline
// (IPC real images per class). Randomness comes from a torch Generator seeded with `seed` (one randperm per class,
// classes in label order), so a seed gives the same selection on every machine.
import { InputError } from "../../errors.js";
import * as torch from "../../torch/index.js";
import { type Dataset, indicesByClass, subset } from "./dataset.js";

/** Each class's image indices in a seeded random order. */
function shuffledByClass(ds: Pick<Dataset, "labels" | "classes">, seed: number): number[][] {
  const gen = new torch.Generator(seed);
  return indicesByClass(ds).map((idx) => {
    const perm = torch.tidy(() => torch.randperm(idx.length, { generator: gen }).toNumbers());
    return perm.map((p) => idx[p]);
  });
}

const ascending = (a: number, b: number) => a - b;

export interface SplitOptions {
  /** Fraction of each class that goes to validation (rounded per class), in (0, 1). */
  valFraction?: number;
  /** Or a fixed number of validation images per class. */
  valPerClass?: number;
  seed: number;
}

/**
 * Splits every class separately (stratified). Each part keeps the original order of its images; the index lists
 * refer to `ds`. Every class keeps at least one training image.
 */
export function splitTrainVal(
  ds: Dataset,
  options: SplitOptions,
): { train: Dataset; val: Dataset; trainIndices: number[]; valIndices: number[] } {
  if ((options.valFraction === undefined) === (options.valPerClass === undefined))
    throw new InputError("split: give exactly one of valFraction and valPerClass");
  if (options.valFraction !== undefined && !(options.valFraction > 0 && options.valFraction < 1))
    throw new InputError(`split: valFraction must be in (0, 1), got ${options.valFraction}`);
  if (options.valPerClass !== undefined && !(Number.isInteger(options.valPerClass) && options.valPerClass >= 1))
    throw new InputError(`split: valPerClass must be a positive integer, got ${options.valPerClass}`);
  const trainIndices: number[] = [];
  const valIndices: number[] = [];
  shuffledByClass(ds, options.seed).forEach((idx, c) => {
    const k = options.valPerClass ?? Math.round(idx.length * options.valFraction!);
    if (k >= idx.length)
      throw new InputError(
        `split: class '${ds.classes[c]}' has ${idx.length} images; ${k} for validation would leave none for training`,
      );
    valIndices.push(...idx.slice(0, k));
    trainIndices.push(...idx.slice(k));
  });
  trainIndices.sort(ascending);
  valIndices.sort(ascending);
  return { train: subset(ds, trainIndices), val: subset(ds, valIndices), trainIndices, valIndices };
}

/**
 * The random-real baseline: `ipc` images drawn without replacement from each class. The result is ordered by class,
 * and by original index within a class.
 */
export function sampleRandomPerClass(ds: Dataset, ipc: number, seed: number): { dataset: Dataset; indices: number[] } {
  const indices = randomPerClassIndices(ds, ipc, seed);
  return { dataset: subset(ds, indices), indices };
}

/** The indices sampleRandomPerClass selects, from the labels alone (a set not read yet can be sampled). */
export function randomPerClassIndices(ds: Pick<Dataset, "labels" | "classes">, ipc: number, seed: number): number[] {
  if (!(Number.isInteger(ipc) && ipc >= 1))
    throw new InputError(`images per class must be a positive integer, got ${ipc}`);
  const indices: number[] = [];
  shuffledByClass(ds, seed).forEach((idx, c) => {
    if (idx.length < ipc)
      throw new InputError(
        `class '${ds.classes[c]}' has ${idx.length} images, fewer than the ${ipc} per class asked for`,
      );
    indices.push(...idx.slice(0, ipc).sort(ascending));
  });
  return indices;
}
