// Output of a distillation run, an ImageFolder that other tools read as it is (torchvision's ImageFolder counts every
// folder in the root as a class, hidden ones included, so the root holds class folders and plain files only):
//   <out>/<label>_<id>/<i>.png        the distilled images (RGB or grey, as the autoencoder makes them)
//   <out>/classes.txt                 the class folders in label order (cao2's ImageFolder reader uses it)
//   <out>/manifest.json               written last: config (with the state folder), seeds, model hashes, versions,
//                                     every image's record
// The run's state lives beside it, in <out>.cao2/ (or the folder given with --state):
//   <state>/run.json                  the run's settings, checked by --resume
//   <state>/classes/<label>.json      a finished class (written after its images; a class without it is redone)
//   <state>/classes/<label>.stream    --compat authors: the run's random stream after the class (for --resume)
//   <state>/locks/<label>.lock        a class being distilled, and by whom (src/util/lock-file.ts; removed when done)
//   <state>/locks/manifest.lock       the process writing the manifest
//   <state>/pre-refine/<class>/...    optional: the selected images before refinement (--save-pre-refine)
//   <state>/latents/<class>.safetensors  optional: pool, selected and refined latents (--save-latents)
// Outputs written before the state moved keep it in <out>/.cao2/; they are resumed, read and figured where they are.
// Every file is written atomically; the manifest exists only once every class is done, so an interrupted run never
// looks complete.
import { existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import { tensorToPng } from "../io/image.js";
import { saveSafetensors } from "../io/safetensors.js";
import type { Tensor } from "../torch/index.js";
import { writeFileAtomic, writeJsonAtomic } from "../util/atomic.js";
import { isRecord, readStateJson } from "../util/state-file.js";
import { classFolder } from "../io/datasets/imagefolder.js";
import type { ClassSpec } from "./presets.js";
import type { ClassTimings } from "./pipeline.js";

export interface RunLayout {
  /** The ImageFolder root. */
  out: string;
  /** The run's state folder (outside `out`, except in outputs written before the state moved). */
  state: string;
}

/** Where outputs written before the state moved keep it: a hidden folder inside the output. */
export const legacyStateDir = (out: string) => join(out, ".cao2");
/** The default state folder of an output: its sibling `<out>.cao2`. */
export const defaultStateDir = (out: string) => `${resolve(out)}.cao2`;
export const runFile = (layout: RunLayout) => join(layout.state, "run.json");

/**
 * The layout of a run in `out`: the state folder given, else that of a run already there (beside the output, or
 * inside it for outputs written before the state moved), else the default beside the output.
 */
export function runLayout(out: string, state?: string): RunLayout {
  if (state !== undefined) return { out, state };
  const legacy = legacyStateDir(out);
  const hasRun = (dir: string) => existsSync(join(dir, "run.json"));
  return { out, state: !hasRun(defaultStateDir(out)) && hasRun(legacy) ? legacy : defaultStateDir(out) };
}

const recordPath = (l: RunLayout, label: number) => join(l.state, "classes", `${label}.json`);
export const locksDir = (layout: RunLayout) => join(layout.state, "locks");
export const classLockPath = (layout: RunLayout, label: number) => join(locksDir(layout), `${label}.lock`);
export const manifestLockPath = (layout: RunLayout) => join(locksDir(layout), "manifest.lock");
export const streamPath = (layout: RunLayout, label: number) => join(layout.state, "classes", `${label}.stream`);

export interface ImageRecord {
  file: string;
  poolIndex: number;
  /** Selector's view of the candidate before refinement. */
  prediction: number;
  confidence: number;
  el2n: number;
  /** Refinement objective averaged over t in 1..T^ with the image's fixed noise (NaN without refinement). */
  lossBefore: number;
  lossAfter: number;
  /** `--compat authors`: the noise bank row of the image's refinement noise. */
  noiseRow?: number;
  /** Selector's view of the final image. */
  refinedPrediction: number;
  refinedConfidence: number;
}

/** The process that distilled a class (how the work was spread; not part of the result). */
export interface ClassWorker {
  host: string;
  pid: number;
  /** "K/N" for a shard of the run, null for a process that ran the whole run. */
  shard: string | null;
  /** The scheduler task (e.g. "slurm:1234_2"), if any. */
  task?: string;
}

export interface ClassRecord {
  label: number;
  modelIndex: number;
  id: string;
  name: string;
  folder: string;
  strategy: string;
  /** Images filled in from incorrect predictions. */
  filled: number;
  condition: { kind: "true" | "null"; label: number };
  items: ImageRecord[];
  /** Every candidate of the pool: the selector's prediction and its confidence in the class. */
  pool: { prediction: number; confidence: number }[];
  /** With --order refine-select: the same for every refined candidate (what selection ranked). */
  refinedPool?: { prediction: number; confidence: number }[];
  timings: ClassTimings;
  worker?: ClassWorker;
}

export interface ClassOutput {
  images: Tensor;
  preRefine?: Tensor;
  latents?: { pool: Tensor; selected: Tensor; refined: Tensor };
  /** The state of the run's random stream after this class (`--compat authors`, whose classes share one stream). */
  stream?: Uint8Array;
  items: Omit<ImageRecord, "file">[];
  pool: ClassRecord["pool"];
  refinedPool?: ClassRecord["pool"];
  strategy: string;
  filled: number;
  condition: ClassRecord["condition"];
  timings: ClassTimings;
  worker?: ClassWorker;
}

function writePngs(dir: string, images: Tensor, width: number): string[] {
  // What an interrupted attempt at the class left (images, a temporary file) goes; the record comes after the images.
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const files: string[] = [];
  for (let i = 0; i < images.size(0); i++) {
    const name = `${String(i).padStart(width, "0")}.png`;
    const img = images.select(0, i);
    writeFileAtomic(join(dir, name), tensorToPng(img));
    img.dispose();
    files.push(name);
  }
  return files;
}

/** Writes a class's images (and extras), then its record, which marks the class as done. */
export function writeClass(layout: RunLayout, c: ClassSpec, numClasses: number, output: ClassOutput): ClassRecord {
  const folder = classFolder(c, numClasses);
  const width = String(output.images.size(0) - 1).length;
  const files = writePngs(join(layout.out, folder), output.images, width);
  if (output.preRefine) writePngs(join(layout.state, "pre-refine", folder), output.preRefine, width);
  if (output.latents) {
    mkdirSync(join(layout.state, "latents"), { recursive: true });
    saveSafetensors(join(layout.state, "latents", `${folder}.safetensors`), output.latents);
  }
  const record: ClassRecord = {
    label: c.label,
    modelIndex: c.modelIndex,
    id: c.id,
    name: c.name,
    folder,
    strategy: output.strategy,
    filled: output.filled,
    condition: output.condition,
    items: output.items.map((it, i) => ({ file: `${folder}/${files[i]}`, ...it })),
    pool: output.pool,
    refinedPool: output.refinedPool,
    timings: output.timings,
    worker: output.worker,
  };
  mkdirSync(join(layout.state, "classes"), { recursive: true });
  if (output.stream) writeFileAtomic(streamPath(layout, c.label), output.stream);
  writeJsonAtomic(recordPath(layout, c.label), record);
  return record;
}

/** The record of a finished class, if there is one. */
export function readClassRecord(layout: RunLayout, label: number): ClassRecord | undefined {
  const p = recordPath(layout, label);
  if (!existsSync(p)) return undefined;
  const what = {
    what: `record of finished class ${label}`,
    recover: `delete it to redo class ${label} (the other finished classes are kept)`,
  };
  return readStateJson<ClassRecord>(
    p,
    what,
    (v) =>
      isRecord(v) && v.label === label && Array.isArray(v.items) && v.items.every(isRecord) && Array.isArray(v.pool),
  );
}

/** The random stream's state saved after a finished class, if there is one. */
export function readStreamState(layout: RunLayout, label: number): Uint8Array | undefined {
  const p = streamPath(layout, label);
  return existsSync(p) ? new Uint8Array(readFileSync(p)) : undefined;
}

export function writeClassList(layout: RunLayout, classes: readonly ClassSpec[], numClasses: number): void {
  writeFileAtomic(join(layout.out, "classes.txt"), classes.map((c) => classFolder(c, numClasses) + "\n").join(""));
}
