// Files shipped in the package's assets/ folder (class lists, the embedded Fashion-MNIST models).
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

let root: string | undefined;

/** The package root: the nearest folder above this module that holds package.json and assets/. */
export function packageRoot(): string {
  if (root) return root;
  let d = dirname(fileURLToPath(import.meta.url));
  while (!(existsSync(join(d, "package.json")) && existsSync(join(d, "assets")))) {
    const up = dirname(d);
    if (up === d) throw new Error("cao2: cannot find the package's assets/ folder");
    d = up;
  }
  return (root = d);
}

export const assetPath = (rel: string) => join(packageRoot(), "assets", rel);
