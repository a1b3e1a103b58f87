// Training and test sets for an evaluation: the named built-in set or an ImageFolder, brought to the preset's size
// and channels, and the check that both sets mean the same classes by the same labels.
import { InputError } from "../errors.js";
import { type Dataset, loadDataSpec, sampleRandomPerClass } from "../io/datasets/index.js";
import { resizeImages } from "../io/image.js";
import { classFolder, folderSafe } from "../io/datasets/imagefolder.js";
import type { EvalPreset } from "./presets.js";

/**
 * Loads a training (`split` "train") or test set: a Fashion-MNIST name (io/datasets/spec.ts) or an ImageFolder path (read with the preset's
 * channel count), optionally a seeded stratified subset of `perClass` images per class, resized to the preset's size.
 */
export function loadEvalSet(spec: string, split: "train" | "test", preset: EvalPreset, subset?: { perClass: number; seed: number }): Dataset {
  const ds = loadDataSpec(spec, split, { channels: preset.channels });
  return fitToPreset(subset ? sampleRandomPerClass(ds, subset.perClass, subset.seed).dataset : ds, preset);
}

/**
 * The images at the preset's size (bilinear, rounded back to uint8 as a PIL resize would; 28x28 Fashion-MNIST becomes
 * 32x32). Channels must already match: the ImageFolder reader converts, the idx reader gives grey images. When a
 * resize happens, the input's image tensor is freed (the result replaces the input).
 */
export function fitToPreset(ds: Dataset, preset: EvalPreset): Dataset {
  const [, c, h, w] = ds.images.shape;
  if (c !== preset.channels) throw new InputError(`${ds.source.path}: ${c}-channel images, but the ${preset.name} preset takes ${preset.channels}`);
  if (h === preset.imageSize && w === preset.imageSize) return ds;
  const images = resizeImages(ds.images, [preset.imageSize, preset.imageSize]);
  ds.images.dispose();
  return { ...ds, images };
}

export interface ClassPair {
  label: number;
  data: string;
  test: string;
}

/**
 * Pairs the training set's classes with the test set's, label by label. A training class matches when its name
 * equals the test class's, or is the folder name cao2 writes for it (zero-padded label, "_", the name with unsafe
 * characters replaced: "0_T-shirt-top" for label 0 "T-shirt/top"). Anything else would silently score a wrong
 * mapping, so different class counts or names are input errors.
 */
export function matchClasses(data: readonly string[], test: readonly string[], where: { data: string; test: string }): ClassPair[] {
  if (data.length !== test.length)
    throw new InputError(`${where.data} has ${data.length} classes but ${where.test} has ${test.length}; they must be the same classes in the same order`);
  return data.map((d, label) => {
    const t = test[label];
    const folder = classFolder({ label, id: folderSafe(t) }, test.length);
    if (d !== t && d !== folder && d !== folderSafe(t))
      throw new InputError(`class ${label} is '${d}' in ${where.data} but '${t}' in ${where.test}; the class lists must match label by label`);
    return { label, data: d, test: t };
  });
}
