// Evaluation records (`cao2 evaluate --json`) for a report: read, checked to be records, and, for a run's report,
// checked to have trained on that run's images. The check compares the training set's digest the record holds
// (source.sha256, see io/datasets/imagefolder.ts) with the digest of the run folder as evaluate would read it, so a
// record of another set (another IPC, another seed, a copy with one image changed) is refused by name.
import { readFileSync } from "node:fs";
import { InputError } from "../errors.js";
import type { EvaluationRecord } from "../evaluate/run.js";
import { RECORD_FORMAT } from "../evaluate/run.js";

export interface EvalEntry {
  path: string;
  /** The training set's name in charts: the caller's, else the record's. */
  label: string;
  record: EvaluationRecord;
}

export function readEvalRecord(path: string, label?: string): EvalEntry {
  let r: EvaluationRecord;
  try {
    r = JSON.parse(readFileSync(path, "utf8")) as EvaluationRecord;
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code) throw e;
    throw new InputError(
      `${path}: not readable as JSON (an evaluation record from cao2 evaluate --json): ${err.message.split("\n")[0]}`,
    );
  }
  const ok =
    r?.format === RECORD_FORMAT &&
    typeof r.config?.protocol === "string" &&
    Number.isInteger(r.config.ipc) &&
    typeof r.data?.source?.sha256 === "string" &&
    Array.isArray(r.repeats) &&
    r.repeats.every((x) => Array.isArray(x?.curve)) &&
    typeof r.summary?.best?.mean === "number";
  if (!ok)
    throw new InputError(
      `${path}: not a cao2 evaluation record (expected format "${RECORD_FORMAT}" with config, data, repeats and summary)`,
    );
  return { path, label: label ?? r.data.name, record: r };
}

/** Refuses a record whose training set is not the run folder's images (digest `runDigest`). */
export function checkSameTrainingSet(e: EvalEntry, runFolder: string, runDigest: string): void {
  const src = e.record.data.source;
  if (src.sha256 !== runDigest)
    throw new InputError(
      `${e.path}: evaluates the training set '${e.record.data.name}' (${src.format}, ${src.fileCount} files, sha256 ${src.sha256.slice(0, 12)}), ` +
        `not the images of ${runFolder} (sha256 ${runDigest.slice(0, 12)}); give records of this run, or report them without a run folder`,
    );
}
