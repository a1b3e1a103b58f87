// The in-memory data set that the readers (idx.ts, imagefolder.ts) return and distillation / evaluation consume.
// Images stay uint8 as read (60k x 28 x 28 is 47 MB instead of 188 MB as float); `batch` makes the float [0, 1]
// tensors that models take.
import * as torch from "../../torch/index.js";
import type { Tensor } from "../../torch/index.js";
import { toUnitFloat } from "../image.js";

/** Where a data set came from, for result records. */
export interface DatasetSource {
  /** The reader: "idx" (MNIST-style files) or "image-folder". */
  format: "idx" | "image-folder";
  /** The folder that was read. */
  path: string;
  /** Number of files read. */
  fileCount: number;
  /** SHA-256 over what was read (each reader documents exactly what it hashes). */
  sha256: string;
  /** Per-file digests where the file count is small (the idx reader). */
  files?: { path: string; sha256: string }[];
  /** How the class order (= label numbering) was decided: "sorted folder names", "list", or the class-list file. */
  classOrder?: string;
  /** Unreadable images left out (--skip-corrupt), with each one's error. */
  skipped?: { count: number; files: { file: string; error: string }[] };
}

export interface Dataset {
  /** [N, C, H, W] uint8 in 0..255 as read; consumers may also build float32 sets in [0, 1] (see `batch`). */
  images: Tensor;
  /** Label per image, an index into `classes`. */
  labels: Int32Array;
  /** Class names; label i means classes[i]. Write this mapping into every result. */
  classes: string[];
  source: DatasetSource;
}

/** Labels as the int64 tensor that losses take. */
export function labelsTensor(labels: ArrayLike<number>): Tensor {
  return torch.fromArray(BigInt64Array.from(Array.from(labels, BigInt)), [labels.length]);
}

/** Image indices of each class, ascending: result[c] lists the images with label c. */
export function indicesByClass(ds: Pick<Dataset, "labels" | "classes">): number[][] {
  const out: number[][] = ds.classes.map(() => []);
  ds.labels.forEach((l, i) => out[l].push(i));
  return out;
}

/** The images at `indices` (in that order) with their labels; classes and source are shared. */
export function subset(ds: Dataset, indices: readonly number[]): Dataset {
  const images = torch.tidy(() => torch.indexSelect(ds.images, 0, labelsTensor(indices)));
  return { images, labels: Int32Array.from(indices, (i) => ds.labels[i]), classes: ds.classes, source: ds.source };
}

/** A training batch: x = float32 [B, C, H, W] in [0, 1], y = int64 [B]. */
export function batch(ds: Dataset, indices: readonly number[]): { x: Tensor; y: Tensor } {
  const x = torch.tidy(() => toUnitFloat(torch.indexSelect(ds.images, 0, labelsTensor(indices))));
  return { x, y: labelsTensor(Array.from(indices, (i) => ds.labels[i])) };
}
