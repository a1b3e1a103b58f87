// The JSON files a run keeps to be resumed (distill's run settings and class records, evaluate's saved repeats,
// a training log). A file a crash, a full disk or a hand edit left unreadable is one input error naming the file
// and how to recover, never a SyntaxError or a crash further on.
import { readFileSync } from "node:fs";
import { InputError } from "../errors.js";

/** What a state file is and how the user recovers from a broken one ("delete it to redo class 3"). */
export interface StateFileInfo {
  what: string;
  recover: string;
}

export const corruptState = (path: string, f: StateFileInfo, why: string) =>
  new InputError(`${path}: corrupt ${f.what} (${why}); ${f.recover}`);

/** Parses `text` read from `path`; `valid` checks the shape the reader relies on. */
export function parseStateJson<T>(path: string, text: string, f: StateFileInfo, valid: (v: unknown) => boolean): T {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw corruptState(path, f, `not JSON: ${(e as Error).message}`);
  }
  if (!valid(v)) throw corruptState(path, f, "not the content cao2 writes there");
  return v as T;
}

export const readStateJson = <T>(path: string, f: StateFileInfo, valid: (v: unknown) => boolean): T =>
  parseStateJson<T>(path, readFileSync(path, "utf8"), f, valid);

/** A plain JSON object (not an array, not null). */
export const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);
