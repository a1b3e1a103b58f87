// Output of a distillation run, an ImageFolder that other tools read:
//   <out>/<label>_<id>/<i>.png      the distilled images (RGB or grey, as the autoencoder makes them)
//   <out>/classes.txt               the class folders in label order (cao2's ImageFolder reader uses it)
//   <out>/manifest.json             written last: config, seeds, model hashes, versions, every image's record
//   <out>/.cao2/run.json            the run's settings, checked by --resume
//   <out>/.cao2/classes/<label>.json  a finished class (written after its images; a class without it is redone)
//   <out>/.cao2/classes/<label>.stream  --compat authors: the run's random stream after the class (for --resume)
//   <out>/.cao2/pre-refine/...      optional: the selected images before refinement (--save-pre-refine)
//   <out>/.cao2/latents/...         optional: pool, selected and refined latents (--save-latents)
// Hidden folders are skipped by ImageFolder readers, so the extras never become classes. Every file is written
// atomically; the manifest exists only once every class is done, so an interrupted run never looks complete.
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { tensorToPng } from "../io/image.js";
import { saveSafetensors } from "../io/safetensors.js";
import type { Tensor } from "../torch/index.js";
import { writeFileAtomic, writeJsonAtomic } from "../util/atomic.js";
import { isRecord, readStateJson } from "../util/state-file.js";
import { type ClassSpec, classFolder } from "./presets.js";
import type { ClassTimings } from "./pipeline.js";

export interface RunLayout {
  out: string;
}

export const stateDir = (l: RunLayout) => join(l.out, ".cao2");
const recordPath = (l: RunLayout, label: number) => join(stateDir(l), "classes", `${label}.json`);
export const streamPath = (l: RunLayout, label: number) => join(stateDir(l), "classes", `${label}.stream`);

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
  timings: ClassTimings;
}

export interface ClassOutput {
  images: Tensor;
  preRefine?: Tensor;
  latents?: { pool: Tensor; selected: Tensor; refined: Tensor };
  /** The state of the run's random stream after this class (`--compat authors`, whose classes share one stream). */
  stream?: Uint8Array;
  items: Omit<ImageRecord, "file">[];
  pool: ClassRecord["pool"];
  strategy: string;
  filled: number;
  condition: ClassRecord["condition"];
  timings: ClassTimings;
}

function writePngs(dir: string, images: Tensor, width: number): string[] {
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
export function writeClass(l: RunLayout, c: ClassSpec, numClasses: number, o: ClassOutput): ClassRecord {
  const folder = classFolder(c, numClasses);
  const width = String(o.images.size(0) - 1).length;
  const files = writePngs(join(l.out, folder), o.images, width);
  if (o.preRefine) writePngs(join(stateDir(l), "pre-refine", folder), o.preRefine, width);
  if (o.latents) {
    mkdirSync(join(stateDir(l), "latents"), { recursive: true });
    saveSafetensors(join(stateDir(l), "latents", `${folder}.safetensors`), o.latents);
  }
  const record: ClassRecord = {
    label: c.label,
    modelIndex: c.modelIndex,
    id: c.id,
    name: c.name,
    folder,
    strategy: o.strategy,
    filled: o.filled,
    condition: o.condition,
    items: o.items.map((it, i) => ({ file: `${folder}/${files[i]}`, ...it })),
    pool: o.pool,
    timings: o.timings,
  };
  mkdirSync(join(stateDir(l), "classes"), { recursive: true });
  if (o.stream) writeFileAtomic(streamPath(l, c.label), o.stream);
  writeJsonAtomic(recordPath(l, c.label), record);
  return record;
}

/** The record of a finished class, if there is one. */
export function readClassRecord(l: RunLayout, label: number): ClassRecord | undefined {
  const p = recordPath(l, label);
  if (!existsSync(p)) return undefined;
  const what = { what: `record of finished class ${label}`, recover: `delete it to redo class ${label} (the other finished classes are kept)` };
  return readStateJson<ClassRecord>(p, what, (v) => isRecord(v) && v.label === label && Array.isArray(v.items) && v.items.every(isRecord) && Array.isArray(v.pool));
}

/** The random stream's state saved after a finished class, if there is one. */
export function readStreamState(l: RunLayout, label: number): Uint8Array | undefined {
  const p = streamPath(l, label);
  return existsSync(p) ? new Uint8Array(readFileSync(p)) : undefined;
}

export function writeClassList(l: RunLayout, classes: readonly ClassSpec[], numClasses: number): void {
  writeFileAtomic(join(l.out, "classes.txt"), classes.map((c) => classFolder(c, numClasses) + "\n").join(""));
}
