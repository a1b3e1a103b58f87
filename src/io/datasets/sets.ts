// Training and test sets (of an evaluation, or a distillation's reference images): the named built-in set or an
// ImageFolder, brought to a preset's size and channels, and the check that two sets mean the same classes by the same
// labels.
import { InputError } from "../../errors.js";
import { resizeImages } from "../image.js";
import type { ImageTransform } from "../resample.js";
import type { Dataset } from "./dataset.js";
import { classFolder, classFolders, folderSafe } from "./imagefolder.js";
import { type ImageNetSubset, imagenetSubsetClasses } from "./imagenet-classes.js";
import { fashionMnistPart, loadFashionMnistPart } from "./spec.js";
import { sampleRandomPerClass } from "./split.js";
import { type ImageSet, memoryImageSet, openImageFolderSet } from "./stream.js";

/** What a set is brought to: the evaluation presets (src/evaluate/presets.ts) and distillation's reference images. */
export interface SetFormat {
  name: string;
  /** Training images are resized (bilinear, as PIL) to size x size; so are test images unless testResize is set. */
  imageSize: number;
  /** Test images of an ImageFolder: Resize(testResize) on the shorter side, then CenterCrop(imageSize); null: resized. */
  testResize: number | null;
  channels: 1 | 3;
}

/** How an ImageFolder's images become the preset's input: training images resized, test images as testResize says. */
export function presetTransform(preset: SetFormat, split: "train" | "test"): ImageTransform {
  const s = preset.imageSize;
  return split === "test" && preset.testResize !== null
    ? { resizeShorter: preset.testResize, centerCrop: s }
    : { resize: [s, s] };
}

/**
 * The class folders of `root` in the subset's label order (its class file's line order). The folder of a class is its
 * wnid (the authors' layout, and ImageNet's own) or cao2's `<label>_<wnid>`. A class without a folder, one with both,
 * or a folder that is no class of the subset is an input error: a partial or wrong mapping is never used.
 */
export function subsetClassFolders(root: string, subset: ImageNetSubset): string[] {
  const classes = imagenetSubsetClasses(subset);
  const have = new Set(classFolders(root));
  const names = classes.map((c) => {
    const options = [c.id, classFolder(c, classes.length)];
    const found = options.filter((f) => have.has(f));
    if (found.length === 0)
      throw new InputError(`${root}: no folder for class ${c.label} of ${subset} (${options.join(" or ")})`);
    if (found.length > 1)
      throw new InputError(`${root}: class ${c.label} of ${subset} has two folders, ${found.join(" and ")}`);
    return found[0];
  });
  const used = new Set(names);
  const extra = [...have].filter((f) => !used.has(f));
  if (extra.length)
    throw new InputError(
      `${root}: ${extra.length} folder(s) are no class of ${subset}: ${extra.slice(0, 3).join(", ")}${extra.length > 3 ? ", ..." : ""}`,
    );
  return names;
}

export interface EvalSetOptions {
  /** Label order from an ImageNet subset's class list (folders named by wnid or as cao2 writes them). */
  classList?: ImageNetSubset;
  /** A seeded stratified sample of this many images per class. */
  perClass?: { count: number; seed: number };
  /** Leave unreadable images of an ImageFolder out (counted in its source) instead of stopping. */
  skipCorrupt?: boolean;
  /** See FolderSetOptions.memoryBudget. */
  memoryBudget?: number;
  onProgress?: (done: number, total: number) => void;
}

/**
 * Opens a training (`split` "train") or test set: a Fashion-MNIST name (io/datasets/spec.ts), resized to the preset's
 * size in memory, or an ImageFolder of any size and mixed image sizes, read with the preset's channels and transform
 * (presetTransform) and streamed when large (io/datasets/stream.ts).
 */
export async function loadEvalSet(
  spec: string,
  split: "train" | "test",
  preset: SetFormat,
  options: EvalSetOptions = {},
): Promise<ImageSet> {
  const part = fashionMnistPart(spec, split);
  if (part && options.classList)
    throw new InputError(
      `${spec}: a class list (--subset ${options.classList}) applies to ImageFolders of ImageNet classes, not Fashion-MNIST`,
    );
  if (part) {
    const ds = loadFashionMnistPart(part);
    const [h, w] = ds.images.shape.slice(2);
    const resized = h !== preset.imageSize || w !== preset.imageSize;
    const transform = resized
      ? `Resize((${preset.imageSize}, ${preset.imageSize}), bilinear antialiased, torch)`
      : "none";
    return memoryImageSet(
      fitToPreset(
        options.perClass ? sampleRandomPerClass(ds, options.perClass.count, options.perClass.seed).dataset : ds,
        preset,
      ),
      transform,
    );
  }
  const set = await openImageFolderSet(spec, {
    classes: options.classList && subsetClassFolders(spec, options.classList),
    channels: preset.channels,
    transform: presetTransform(preset, split),
    perClass: options.perClass,
    skipCorrupt: options.skipCorrupt,
    memoryBudget: options.memoryBudget,
    onProgress: options.onProgress,
  });
  if (options.classList) set.source.classOrder = `${options.classList} (assets/imagenet/ class list)`;
  return set;
}

/**
 * The images at the preset's size (bilinear, rounded back to uint8 as a PIL resize would; 28x28 Fashion-MNIST becomes
 * 32x32). Channels must already match: the ImageFolder reader converts, the idx reader gives grey images. When a
 * resize happens, the input's image tensor is freed (the result replaces the input).
 */
export function fitToPreset(ds: Dataset, preset: SetFormat): Dataset {
  const [, c, h, w] = ds.images.shape;
  if (c !== preset.channels)
    throw new InputError(
      `${ds.source.path}: ${c}-channel images, but the ${preset.name} preset takes ${preset.channels}`,
    );
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
export function matchClasses(
  data: readonly string[],
  test: readonly string[],
  where: { data: string; test: string },
): ClassPair[] {
  if (data.length !== test.length)
    throw new InputError(
      `${where.data} has ${data.length} classes but ${where.test} has ${test.length}; they must be the same classes in the same order`,
    );
  return data.map((d, label) => {
    const t = test[label];
    const folder = classFolder({ label, id: folderSafe(t) }, test.length);
    if (d !== t && d !== folder && d !== folderSafe(t))
      throw new InputError(
        `class ${label} is '${d}' in ${where.data} but '${t}' in ${where.test}; the class lists must match label by label`,
      );
    return { label, data: d, test: t };
  });
}
