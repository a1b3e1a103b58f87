// `cao2 distill --out X --status`: where a run stands, read from its state folder alone (no models, nothing
// written): each class done (by which process), running (its lock's holder and heartbeat) or missing, and whether
// the manifest has been written.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { InputError } from "../errors.js";
import { type LockState, readLock, staleReason } from "../util/lock-file.js";
import { isRecord, readStateJson } from "../util/state-file.js";
import type { ClassSpec } from "./presets.js";
import { type ClassRecord, classLockPath, readClassRecord, runFile, type RunLayout, runLayout } from "./write.js";

export type ClassState =
  | { class: ClassSpec; state: "done"; record: ClassRecord }
  /** `stale`: why the lock would be taken over by the next process that wants the class. */
  | { class: ClassSpec; state: "running"; lock: LockState; stale?: string }
  | { class: ClassSpec; state: "missing" };

export interface RunStatus {
  layout: RunLayout;
  classes: ClassState[];
  manifest: boolean;
}

const isClassSpec = (v: unknown): v is ClassSpec =>
  isRecord(v) &&
  typeof v.label === "number" &&
  typeof v.modelIndex === "number" &&
  typeof v.id === "string" &&
  typeof v.name === "string";

export function runStatus(out: string, state: string | undefined, staleAfterS: number): RunStatus {
  const layout = runLayout(out, state);
  const path = runFile(layout);
  if (!existsSync(path))
    throw new InputError(
      `no cao2 run in ${out}: its state folder ${layout.state} holds no run.json (give the run's --state if it was started with one)`,
    );
  const key = readStateJson<{ classes: ClassSpec[] }>(
    path,
    { what: "run settings", recover: "the run cannot be checked or continued: start it again in a new --out" },
    (v) => isRecord(v) && Array.isArray(v.classes) && v.classes.every(isClassSpec),
  );
  const classes = key.classes.map((c): ClassState => {
    const record = readClassRecord(layout, c.label);
    if (record) return { class: c, state: "done", record };
    const lock = readLock(classLockPath(layout, c.label));
    return lock
      ? { class: c, state: "running", lock, stale: staleReason(lock, staleAfterS) }
      : { class: c, state: "missing" };
  });
  return { layout, classes, manifest: existsSync(join(out, "manifest.json")) };
}
