// The real images that the mmd strategy matches (select.ts, kernelHerding): a seeded sample of `perClass` training
// images per class from a data set (a Fashion-MNIST name or an ImageFolder), read at the size of the pixel space the
// candidates are compared in (score.ts, pixelFeatures). They steer which samples are kept; none of them enters the
// distilled set.
import { InputError } from "../errors.js";
import { toUnitFloat } from "../io/image.js";
import {
  type DatasetSource,
  fashionMnistPart,
  imageFolderClasses,
  type ImageSet,
  loadEvalSet,
  matchClasses,
} from "../io/datasets/index.js";
import { IMAGENET_SUBSETS, type ImageNetSubset } from "../io/datasets/imagenet-classes.js";
import { tidy } from "../torch/index.js";
import type { LoadedModels } from "./models.js";
import { type ClassSpec, type PresetName, presetClasses } from "./presets.js";
import { pixelFeatures, pixelSpaceSize } from "./score.js";

/** Where the reference comes from: a data set and how many of its images per class. */
export interface ReferenceSpec {
  data: string;
  perClass: number;
}

export interface Reference {
  source: DatasetSource;
  /** The reference images of a class (its label in the preset), row-major [perClass x dim] in pixelFeatures space. */
  features(c: ClassSpec): Promise<Float32Array>;
  close(): Promise<void>;
}

/**
 * Opens the reference set. Its classes must be the preset's, label by label
 * (Fashion-MNIST names, cao2's class folders, or the wnid folders of an ImageNet subset); the sample is drawn with
 * `seed` from the file list before any image is read.
 */
export async function openReference(
  spec: ReferenceSpec,
  preset: PresetName,
  models: Pick<LoadedModels, "selectorPreprocess">,
  seed: number,
): Promise<Reference> {
  const subset = (IMAGENET_SUBSETS as readonly string[]).includes(preset) ? (preset as ImageNetSubset) : undefined;
  // Read straight at the pixel space's size and channels (training images: resized, not cropped).
  const pre = models.selectorPreprocess;
  const format = {
    name: "mmd pixel-space",
    imageSize: pixelSpaceSize(pre),
    channels: pre.channels === 1 ? (1 as const) : (3 as const),
    testResize: null,
  };
  const where = { data: `--reference ${spec.data}`, test: `the ${preset} preset` };
  // Classes first (an ImageNet subset's are checked by loadEvalSet before it samples), so that a wrong folder is
  // named as such rather than as too small.
  if (!subset && !fashionMnistPart(spec.data, "train"))
    matchClasses(
      imageFolderClasses(spec.data),
      presetClasses(preset).map((c) => c.name),
      where,
    );
  let set: ImageSet;
  try {
    set = await loadEvalSet(spec.data, "train", format, {
      classList: subset,
      perClass: { count: spec.perClass, seed },
    });
  } catch (e) {
    if (e instanceof InputError)
      throw new InputError(
        `--reference ${spec.data}: ${e.message}${/fewer than/.test(e.message) ? " (lower --reference-per-class)" : ""}`,
      );
    throw e;
  }
  return {
    source: set.source,
    async features(c) {
      const indices = [...set.labels.keys()].filter((i) => set.labels[i] === c.label);
      const images = await set.images(indices);
      try {
        return tidy(() => pixelFeatures(models, toUnitFloat(images)).toFloat32Array());
      } finally {
        images.dispose();
      }
    },
    close: () => set.close(),
  };
}
