// Reads what `cao2 distill` left in a folder, finished or not: the manifest of a finished run, or, for a run still
// in progress (or stopped), its saved settings and the records of the classes done so far. The run state lives in
// `<out>/.cao2/` in older runs and in a folder outside the ImageFolder root in newer ones (the manifest names it);
// both are read.
import { existsSync, readFileSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { InputError } from "../errors.js";
import type { Manifest } from "../distill/run.js";
import type { ClassSpec } from "../distill/presets.js";
import { classFolder } from "../io/datasets/imagefolder.js";
import type { ClassRecord } from "../distill/write.js";

export interface RunClass {
  label: number;
  modelIndex: number;
  folder: string;
  id: string;
  name: string;
  /** Undefined while the class is not finished. */
  record?: ClassRecord;
}

export interface RunData {
  folder: string;
  /** True when the manifest exists (every class finished). */
  complete: boolean;
  /** The run-state folder (class records, pre-refinement images), when there is one. */
  stateDir?: string;
  config: Record<string, unknown>;
  /** Only in a finished run's manifest. */
  manifest?: Pick<Manifest, "tool" | "created" | "models" | "seeds" | "distillSeconds">;
  classes: RunClass[];
}

function readJson<T>(path: string, what: string): T {
  try {
    return JSON.parse(readFileSync(path, "utf8")) as T;
  } catch (e) {
    throw new InputError(`${path}: not readable as JSON (${what}): ${(e as Error).message.split("\n")[0]}`);
  }
}

/**
 * Where a run keeps its state: the folder given, else the one its manifest records (`config.state`), else the sibling
 * `<out>.cao2/` (newer runs; also a moved run's), else `<out>/.cao2/` (runs written before the state moved out).
 */
function findStateDir(folder: string, given?: string, recorded?: unknown): string | undefined {
  if (given !== undefined) {
    if (!existsSync(given) || !statSync(given).isDirectory())
      throw new InputError(
        `--state ${given}: no such folder (the run's state folder, as given to cao2 distill --state)`,
      );
    return given;
  }
  const candidates = [
    typeof recorded === "string" ? recorded : undefined,
    `${resolve(folder)}.cao2`,
    join(folder, ".cao2"),
  ];
  return candidates.find((d) => d !== undefined && existsSync(d) && statSync(d).isDirectory());
}

/** Checks the fields the report reads, so that a foreign JSON file is refused by name rather than half-drawn. */
function checkRecord(r: ClassRecord, where: string): ClassRecord {
  const ok =
    r !== null &&
    typeof r === "object" &&
    Number.isInteger(r.label) &&
    Array.isArray(r.items) &&
    Array.isArray(r.pool) &&
    typeof r.timings === "object" &&
    r.items.every((it) => typeof it?.file === "string" && typeof it.confidence === "number");
  if (!ok)
    throw new InputError(
      `${where}: not a cao2 class record (expected label, items with file and confidence, pool, timings)`,
    );
  return r;
}

/** Reads a run folder (and its state folder, when not where cao2 distill puts it by default); a folder without a
 * manifest or run state is refused. */
export function readRun(folder: string, state?: string): RunData {
  if (!existsSync(folder) || !statSync(folder).isDirectory())
    throw new InputError(`${folder}: no such folder (expected the --out folder of cao2 distill)`);
  const manifestPath = join(folder, "manifest.json");
  if (existsSync(manifestPath)) {
    const m = readJson<Manifest & Record<string, unknown>>(manifestPath, "the run's manifest");
    if (
      m?.tool?.name !== "cao2" ||
      !Array.isArray(m.records) ||
      !Array.isArray(m.classes) ||
      typeof m.config !== "object"
    )
      throw new InputError(
        `${manifestPath}: not a cao2 distill manifest (expected tool.name "cao2", config, classes and records)`,
      );
    const byLabel = new Map(m.records.map((r, i) => [r.label, checkRecord(r, `${manifestPath} records[${i}]`)]));
    return {
      folder,
      complete: true,
      stateDir: findStateDir(folder, state, m.config.state),
      config: m.config,
      manifest: {
        tool: m.tool,
        created: m.created,
        models: m.models,
        seeds: m.seeds,
        distillSeconds: m.distillSeconds,
      },
      classes: m.classes.map((c) => ({ ...c, record: byLabel.get(c.label) })),
    };
  }
  const stateDir = findStateDir(folder, state);
  const runFile = stateDir && join(stateDir, "run.json");
  if (!runFile || !existsSync(runFile))
    throw new InputError(
      `${folder}: not a cao2 run (no manifest.json, and no run state in ${state ?? `${resolve(folder)}.cao2/ or ${join(folder, ".cao2")}/`})`,
    );
  const config = readJson<Record<string, unknown> & { classes?: ClassSpec[]; numClasses?: number }>(
    runFile,
    "the run's settings",
  );
  if (!Array.isArray(config.classes) || !Number.isInteger(config.numClasses))
    throw new InputError(`${runFile}: not cao2 run settings (expected classes and numClasses)`);
  const numClasses = config.numClasses!;
  return {
    folder,
    complete: false,
    stateDir,
    config,
    classes: config.classes.map((c) => {
      const p = join(stateDir!, "classes", `${c.label}.json`);
      const record = existsSync(p) ? checkRecord(readJson<ClassRecord>(p, `class ${c.label}'s record`), p) : undefined;
      return {
        label: c.label,
        modelIndex: c.modelIndex,
        folder: classFolder(c, numClasses),
        id: c.id,
        name: c.name,
        record,
      };
    }),
  };
}

/** The image a class record names, before refinement, when the run kept it (--save-pre-refine). */
export function preRefinePath(run: RunData, file: string): string | undefined {
  if (!run.stateDir) return undefined;
  const p = join(run.stateDir, "pre-refine", file);
  return existsSync(p) ? p : undefined;
}

/** Whether a folder is a cao2 distill output (finished or not), e.g. to suggest the right report command. */
export function isDistillRun(folder: string): boolean {
  try {
    readRun(folder);
    return true;
  } catch (e) {
    if (e instanceof InputError) return false;
    throw e;
  }
}
