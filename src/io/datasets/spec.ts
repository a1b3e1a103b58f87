// Data-set arguments of the CLI: a named part of Fashion-MNIST (Debian's copy, or FASHION_MNIST_DIR) or the path of
// an ImageFolder. Names: "fashion-mnist" (the training split where a training set is read, the test split where a
// test set is), and "fashion-mnist:<part>" or "fashion-mnist-<part>" for part train, test, val or fit.
//
// The validation split ("val") is the part of the training split that every shipped model held out: the classifier,
// autoencoder and DiT recipes all split with seed deriveSeed(0, "split") and hold out the first 500 / 200 / 200
// images of each class's seeded permutation, so the first 200 per class (2,000 images) were seen by none of them.
// "fit" is the rest of the training split (58,000 images). Settings are chosen on "val"; "test" is read for final
// tables only.
import { deriveSeed } from "../../util/seed.js";
import type { Dataset } from "./dataset.js";
import { FASHION_MNIST_DIR, loadFashionMnist } from "./idx.js";
import { loadImageFolder, type ImageFolderOptions } from "./imagefolder.js";
import { splitTrainVal } from "./split.js";

/** Images per class held out by all three shipped models' recipes (the smallest of their validation parts). */
export const FASHION_MNIST_VAL_PER_CLASS = 200;

export const FASHION_MNIST_PARTS = ["train", "test", "val", "fit"] as const;
export type FashionMnistPart = (typeof FASHION_MNIST_PARTS)[number];

/** The part a data-set argument names, or undefined for a folder path. */
export function fashionMnistPart(spec: string, defaultSplit: "train" | "test"): FashionMnistPart | undefined {
  if (spec === "fashion-mnist") return defaultSplit;
  const m = /^fashion-mnist[:-](train|test|val|fit)$/.exec(spec);
  return m ? (m[1] as FashionMnistPart) : undefined;
}

/** Where the idx files are read from: FASHION_MNIST_DIR in the environment, else Debian's dataset-fashion-mnist. */
export const fashionMnistDir = (): string => process.env.FASHION_MNIST_DIR || FASHION_MNIST_DIR;

/** One part of Fashion-MNIST; "val" and "fit" record the part in the source path so result records tell them apart. */
export function loadFashionMnistPart(part: FashionMnistPart): Dataset {
  if (part === "test" || part === "train") return loadFashionMnist(part, fashionMnistDir());
  const all = loadFashionMnist("train", fashionMnistDir());
  const split = splitTrainVal(all, { valPerClass: FASHION_MNIST_VAL_PER_CLASS, seed: deriveSeed(0, "split") });
  all.images.dispose();
  const [keep, drop] = part === "val" ? [split.val, split.train] : [split.train, split.val];
  drop.images.dispose();
  return { ...keep, source: { ...keep.source, path: `${keep.source.path}#${part}` } };
}

export function loadDataSpec(spec: string, defaultSplit: "train" | "test", options: ImageFolderOptions = {}): Dataset {
  const part = fashionMnistPart(spec, defaultSplit);
  return part ? loadFashionMnistPart(part) : loadImageFolder(spec, options);
}
