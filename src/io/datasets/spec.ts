// Data-set arguments of the CLI: "fashion-mnist" (Debian's copy, or FASHION_MNIST_DIR), "fashion-mnist:train",
// "fashion-mnist:test", or the path of an ImageFolder.
import { loadFashionMnist } from "./idx.js";
import { loadImageFolder, type ImageFolderOptions } from "./imagefolder.js";
import type { Dataset } from "./dataset.js";

export function loadDataSpec(spec: string, defaultSplit: "train" | "test", o: ImageFolderOptions = {}): Dataset {
  const m = /^fashion-mnist(?::(train|test))?$/.exec(spec);
  if (m) return loadFashionMnist((m[1] as "train" | "test" | undefined) ?? defaultSplit, process.env.FASHION_MNIST_DIR);
  return loadImageFolder(spec, o);
}
