// `cao2 evaluate --merge`: one evaluation's repeats, run as separate jobs (`--repeat K`, e.g. the tasks of a Slurm
// array), combined into the record one process running them all would write. The parts must be of one evaluation:
// the same settings, data, test set, class mapping and teacher (only the device, threads and times may differ),
// each repeat exactly once, none missing.
import { InputError } from "../errors.js";
import { isRecord, readStateJson } from "../util/state-file.js";
import { type EvaluationRecord, RECORD_FORMAT, summarise } from "./run.js";

const isPart = (v: unknown): boolean =>
  isRecord(v) &&
  v.format === RECORD_FORMAT &&
  isRecord(v.config) &&
  typeof v.config.repeats === "number" &&
  Array.isArray(v.repeats) &&
  v.repeats.every(isRecord) &&
  (v.part === undefined || (isRecord(v.part) && typeof v.part.repeat === "number"));

/** What must be equal in every part: all of the record but the run's own times, device and threads. */
function identity(r: EvaluationRecord): Record<string, unknown> {
  const { device: _d, threads: _t, ...config } = r.config;
  return { config, data: r.data, test: r.test, classMapping: r.classMapping, teacher: r.teacher };
}

/** The first key (as a path, e.g. "config.seed") where two values differ. */
function firstDifference(a: unknown, b: unknown, path: string): string | undefined {
  if (JSON.stringify(a) === JSON.stringify(b)) return undefined;
  if (isRecord(a) && isRecord(b)) {
    for (const k of Object.keys({ ...a, ...b })) {
      const d = firstDifference(a[k], b[k], path ? `${path}.${k}` : k);
      if (d) return d;
    }
  }
  return path;
}

export function mergeRepeatRecords(paths: readonly string[]): EvaluationRecord {
  const parts = paths.map((path) => ({
    path,
    record: readStateJson<EvaluationRecord>(
      path,
      { what: "evaluation record", recover: "write it again with cao2 evaluate --repeat K --json" },
      isPart,
    ),
  }));
  for (const { path, record } of parts) {
    if (!record.part || record.repeats.length !== 1 || record.repeats[0].repeat !== record.part.repeat) {
      throw new InputError(
        `${path}: not the record of a single repeat (written without --repeat K); --merge combines records of cao2 evaluate --repeat K`,
      );
    }
  }
  const first = parts[0];
  const want = identity(first.record);
  for (const p of parts.slice(1)) {
    const diff = firstDifference(want, identity(p.record), "");
    if (diff)
      throw new InputError(
        `${p.path} is of another evaluation than ${first.path}: ${diff} differs; merge only the repeats of one evaluation`,
      );
  }
  const n = first.record.config.repeats;
  const byRepeat = new Map<number, string>();
  for (const { path, record } of parts) {
    const r = record.part!.repeat;
    if (byRepeat.has(r))
      throw new InputError(`repeat ${r} is in both ${byRepeat.get(r)} and ${path}; give each repeat once`);
    byRepeat.set(r, path);
  }
  const missing = Array.from({ length: n }, (_, i) => i).filter((i) => !byRepeat.has(i));
  if (missing.length)
    throw new InputError(
      `the evaluation has ${n} repeats (0..${n - 1}) and repeat${missing.length > 1 ? "s" : ""} ${missing.join(", ")} ${missing.length > 1 ? "are" : "is"} missing; run cao2 evaluate --repeat K for ${missing.length > 1 ? "them" : "it"}`,
    );
  const sorted = parts.slice().sort((a, b) => a.record.part!.repeat - b.record.part!.repeat);
  const repeats = sorted.map((p) => p.record.repeats[0]);
  const { part: _part, ...rest } = first.record;
  return {
    ...rest,
    createdAt: new Date().toISOString(),
    resumedRepeats: 0,
    repeats,
    summary: summarise(repeats),
    // The compute time of the parts together (they may have run at once).
    wallSeconds: sorted.reduce((s, p) => s + p.record.wallSeconds, 0),
    mergedFrom: sorted.map(({ path, record }) => ({
      path,
      repeat: record.part!.repeat,
      device: record.config.device,
      createdAt: record.createdAt,
      wallSeconds: record.wallSeconds,
    })),
  };
}
