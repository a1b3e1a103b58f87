// `--init`: a recipe that starts from a finished run's weights instead of a fresh initialisation. The file must be a
// cao2 model of the same kind and architecture; its path and hash join the run's settings, so `--resume` refuses a
// different starting point.
import { InputError } from "../errors.js";
import { sha256File } from "../io/files.js";
import type { Model } from "../models/module.js";
import { fillFromFile, readModelMeta, type SavedModel } from "../models/saved.js";

type Saved<K extends SavedModel["kind"]> = Extract<SavedModel, { kind: K }>;

/** What decides "the same architecture": the fields' names (for the message) and their values in a config. */
export interface ArchFields<C> {
  names: string;
  of(config: C): unknown[];
}

/** Fills `model` (built from `config`) from the cao2 model file `path`; returns the file's description. */
export function warmStart<K extends SavedModel["kind"]>(
  model: Model,
  path: string,
  kind: K,
  config: Saved<K>["config"],
  arch: ArchFields<Saved<K>["config"]>,
): Saved<K> {
  const meta = readModelMeta(path);
  if (meta?.kind !== kind) throw new InputError(`--init ${path}: expected a cao2 ${kind} model file`);
  const saved = meta as Saved<K>;
  const [want, got] = [JSON.stringify(arch.of(config)), JSON.stringify(arch.of(saved.config as Saved<K>["config"]))];
  if (want !== got)
    throw new InputError(`--init ${path}: its architecture [${arch.names}] = ${got} differs from this run's ${want}`);
  fillFromFile(model, path);
  return saved;
}

/** The settings an --init adds to a run's checkpointed configuration (none without one). */
export const initSettings = (init: string | undefined) => (init ? { init, initSha256: sha256File(init) } : {});
