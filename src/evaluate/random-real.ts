// The real-image baselines: IPC real training images per class (drawn at random, or chosen by the selector: see
// distill/select-real.ts), written as an ImageFolder of PNGs that `cao2 evaluate` (or torchvision's ImageFolder)
// reads with the same labels: class folders named "<zero-padded label>_<folder-safe name>" so that sorting gives
// label order, a classes.txt listing them in label order, and a manifest.json with the source, seed and chosen
// indices. The folder appears whole or not at all: it is written beside the target under a temporary name and
// renamed at the end.
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { classFolder, folderSafe } from "../io/datasets/imagefolder.js";
import { InputError } from "../errors.js";
import { type Dataset, type DatasetSource, sampleRandomPerClass } from "../io/datasets/index.js";
import { encodePng } from "../io/png.js";
import { CLASS_LIST_FILE } from "../io/datasets/imagefolder.js";
import * as torch from "../torch/index.js";
import { withPath, writeJsonAtomic } from "../util/atomic.js";

export const MANIFEST_FORMAT = "cao2-random-real/1";
export const SELECTED_REAL_FORMAT = "cao2-selected-real/1";

export interface RandomRealOptions {
  source: Dataset;
  /** How the user named the source (e.g. "fashion-mnist"), for the manifest. */
  sourceName: string;
  ipc: number;
  seed: number;
  out: string;
}

export interface RandomRealManifest {
  format: string;
  createdAt: string;
  source: { name: string } & DatasetSource;
  ipc: number;
  seed: number;
  selection: string;
  /** What else decided the selection (the selected-real baseline: selector, strategy, pools). */
  details?: Record<string, unknown>;
  classes: { label: number; name: string; folder: string }[];
  /** Source indices in file order (class by class, ascending within a class). */
  indices: number[];
  images: { file: string; label: number; sourceIndex: number }[];
}

/** Refuses an existing --out unless it is an empty folder. */
function checkTarget(out: string): void {
  if (!existsSync(out)) return;
  if (!statSync(out).isDirectory()) throw new InputError(`${out}: exists and is not a folder`);
  if (readdirSync(out).length > 0) throw new InputError(`${out}: folder is not empty; choose a new output folder`);
}

const RANDOM_SELECTION =
  "per class, in label order: torch randperm of the class's image indices from one Generator(seed); the first IPC, sorted";

/** Writes the baseline; returns its manifest. */
export function writeRandomReal(options: RandomRealOptions): RandomRealManifest {
  const { indices } = sampleRandomPerClass(options.source, options.ipc, options.seed);
  return writeRealImages({ ...options, indices, format: MANIFEST_FORMAT, selection: RANDOM_SELECTION });
}

/** Writes the source images at `indices` (class by class) as a baseline folder; returns its manifest. */
export function writeRealImages(
  options: RandomRealOptions & {
    indices: number[];
    format: string;
    selection: string;
    details?: Record<string, unknown>;
  },
): RandomRealManifest {
  const out = resolve(options.out);
  checkTarget(out);
  const indices = options.indices;
  const classes = options.source.classes.map((name, label) => ({
    label,
    name,
    folder: classFolder({ label, id: folderSafe(name) }, options.source.classes.length),
  }));
  const tmp = join(dirname(out), `.${basename(out)}.${process.pid}.tmp`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  try {
    for (const c of classes) mkdirSync(join(tmp, c.folder));
    const width = String(options.ipc - 1).length;
    const counts = classes.map(() => 0);
    const images = indices.map((sourceIndex) => {
      const label = options.source.labels[sourceIndex];
      const file = join(classes[label].folder, `${String(counts[label]++).padStart(width, "0")}.png`);
      const [c, h, w] = options.source.images.shape.slice(1);
      const data = torch.tidy(() =>
        options.source.images.select(0, sourceIndex).permute(1, 2, 0).contiguous().toBytes(),
      );
      writeFileSync(join(tmp, file), encodePng({ width: w, height: h, channels: c as 1 | 3, data }));
      return { file, label, sourceIndex };
    });
    writeFileSync(join(tmp, CLASS_LIST_FILE), classes.map((c) => c.folder).join("\n") + "\n");
    const manifest: RandomRealManifest = {
      format: options.format,
      createdAt: new Date().toISOString(),
      source: { name: options.sourceName, ...options.source.source },
      ipc: options.ipc,
      seed: options.seed,
      selection: options.selection,
      ...(options.details ? { details: options.details } : {}),
      classes,
      indices,
      images,
    };
    writeJsonAtomic(join(tmp, "manifest.json"), manifest);
    renameSync(tmp, out); // rename(2) replaces an empty folder

    return manifest;
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw withPath(e, out); // a full disk's error names no file: name the output being written
  }
}
