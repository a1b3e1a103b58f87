// The ImageNet subsets' class lists (assets/imagenet/): a class's label in a subset is its LINE ORDER in the subset
// file, its ImageNet-1k index (what ImageNet-trained models address it by) its line in class_indices.txt.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { assetPath } from "../../util/assets.js";

export const IMAGENET_SUBSETS = ["imagewoof", "imagenette", "imagenet-100", "imagenet-1k"] as const;
export type ImageNetSubset = (typeof IMAGENET_SUBSETS)[number];

const SUBSET_FILES: Record<ImageNetSubset, string> = {
  imagewoof: "class_woof.txt",
  imagenette: "class_nette.txt",
  "imagenet-100": "class100.txt",
  "imagenet-1k": "class_indices.txt",
};

export interface ImageNetClass {
  /** Position in the subset file. */
  label: number;
  /** Line in class_indices.txt. */
  modelIndex: number;
  /** The wnid, e.g. n02086240. */
  id: string;
  /** The first of its names in class_names.txt. */
  name: string;
}

function readList(file: string): string[] {
  return readFileSync(assetPath(join("imagenet", file)), "utf8")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l.length > 0);
}

/** A subset's classes in label order. */
export function imagenetSubsetClasses(subset: ImageNetSubset): ImageNetClass[] {
  const wnids = readList("class_indices.txt");
  const names = readList("class_names.txt");
  const index = new Map(wnids.map((w, i) => [w, i]));
  const file = SUBSET_FILES[subset];
  return readList(file).map((wnid, label) => {
    const modelIndex = index.get(wnid);
    if (modelIndex === undefined) throw new Error(`assets/imagenet/${file}: ${wnid} is not an ImageNet-1k class`);
    return { label, modelIndex, id: wnid, name: names[modelIndex].split(",")[0] };
  });
}
