// Resumable training state in one safetensors file: model weights ("model.<key>"), EMA weights ("ema.<key>"),
// optimiser tensors ("optim.<param index>.<name>"), generator states ("rng.<name>"), a recipe's own tensors
// ("extra.<key>"), and everything else (step, optimiser scalars and hyperparameters, recipe settings) as JSON in the
// metadata. Written atomically, so a crash or Ctrl-C during a save leaves the previous checkpoint intact.
import { existsSync } from "node:fs";
import { SafetensorsFile, saveSafetensors } from "../io/safetensors.js";
import type { Model } from "../models/module.js";
import { type Generator, type Optimizer, type OptimizerState, type Tensor, disposeAll } from "../torch/index.js";
import { InputError } from "../errors.js";
import { corruptState, isRecord, parseStateJson, type StateFileInfo } from "../util/state-file.js";

export interface TrainingParts {
  model: Model;
  ema?: Model;
  optimizer: Optimizer<{ lr: number }>;
  generators?: Record<string, Generator>;
  /** Recipe state held in tensors (e.g. the Minimax class memories), saved as "extra.<key>". */
  extraTensors?: { stateDict(): Map<string, Tensor>; loadStateDict(sd: Map<string, Tensor>): void };
}

export interface SavedInfo {
  step: number;
  /** Recipe settings, checked on resume so a run is not continued with different settings by mistake. */
  config: Record<string, unknown>;
  /** Anything else the recipe wants back (best validation score, epoch, ...). */
  extra?: Record<string, unknown>;
}

export function saveTrainingState(path: string, parts: TrainingParts, info: SavedInfo): void {
  const tensors = new Map<string, Tensor>();
  for (const [k, v] of parts.model.stateDict()) tensors.set(`model.${k}`, v);
  if (parts.ema) for (const [k, v] of parts.ema.stateDict()) tensors.set(`ema.${k}`, v);
  if (parts.extraTensors) for (const [k, v] of parts.extraTensors.stateDict()) tensors.set(`extra.${k}`, v);
  const sd = parts.optimizer.stateDict();
  const scalars: Record<string, Record<string, number>> = {};
  for (const [id, st] of Object.entries(sd.state)) {
    for (const [name, v] of Object.entries(st)) {
      if (typeof v === "number") (scalars[id] ??= {})[name] = v;
      else tensors.set(`optim.${id}.${name}`, v);
    }
  }
  const rngStates: Tensor[] = [];
  for (const [name, g] of Object.entries(parts.generators ?? {})) {
    const s = g.getState();
    rngStates.push(s);
    tensors.set(`rng.${name}`, s);
  }
  try {
    saveSafetensors(path, tensors, {
      step: String(info.step),
      config: JSON.stringify(info.config),
      extra: JSON.stringify(info.extra ?? {}),
      optimizer: JSON.stringify({ paramGroups: sd.paramGroups, scalars }),
    });
  } finally {
    disposeAll(rngStates);
  }
}

/** Restores a state saved by saveTrainingState into the given parts; returns the saved info. */
/** Settings of checkpoints saved before they existed, as those runs had them. */
const RECORDED_BEFORE: Record<string, unknown> = { precision: "fp32" };

export function loadTrainingState(
  path: string,
  parts: TrainingParts,
  expectConfig?: Record<string, unknown>,
): SavedInfo {
  if (!existsSync(path)) throw new InputError(`${path}: no training checkpoint to resume from`);
  const file = SafetensorsFile.open(path);
  let all: Map<string, Tensor>;
  const m = file.metadata;
  try {
    all = new Map(file.keys().map((k) => [k, file.get(k)]));
  } finally {
    file.close();
  }
  const meta: StateFileInfo = {
    what: "training checkpoint",
    recover: "delete it to start the run again (or restore it from a copy)",
  };
  const json = <T>(key: string, text: string | undefined) =>
    parseStateJson<T>(`${path} (metadata '${key}')`, text ?? "", meta, isRecord);
  const step = Number(m.step);
  if (!Number.isSafeInteger(step) || step < 0) throw corruptState(path, meta, `step '${m.step}' is not a step count`);
  const info: SavedInfo = { step, config: json("config", m.config ?? "{}"), extra: json("extra", m.extra ?? "{}") };
  if (expectConfig) {
    // Every setting the recipe names must match; settings a checkpoint records but the recipe no longer uses do not count.
    const saved = { ...RECORDED_BEFORE, ...info.config };
    const diff = Object.keys(expectConfig).filter((k) => JSON.stringify(expectConfig[k]) !== JSON.stringify(saved[k]));
    if (diff.length) {
      throw new InputError(
        `${path}: the checkpoint was made with different settings (${diff.map((k) => `${k}: ${JSON.stringify(saved[k])} -> ${JSON.stringify(expectConfig[k])}`).join(", ")}); use a new output folder or the same settings`,
      );
    }
  }
  const pick = (prefix: string) =>
    new Map([...all].filter(([k]) => k.startsWith(prefix)).map(([k, v]) => [k.slice(prefix.length), v]));
  parts.model.loadStateDict(pick("model."));
  if (parts.ema) parts.ema.loadStateDict(pick("ema."));
  parts.extraTensors?.loadStateDict(pick("extra."));
  const opt = json<{
    paramGroups: OptimizerState<{ lr: number }>["paramGroups"];
    scalars: Record<string, Record<string, number>>;
  }>("optimizer", m.optimizer);
  if (!Array.isArray(opt.paramGroups) || !isRecord(opt.scalars))
    throw corruptState(path, meta, "optimizer state is not what cao2 writes");
  const state: OptimizerState<{ lr: number }>["state"] = {};
  for (const [k, v] of all) {
    const mm = /^optim\.(\d+)\.(.+)$/.exec(k);
    if (mm) (state[Number(mm[1])] ??= {})[mm[2]] = v;
  }
  for (const [id, sc] of Object.entries(opt.scalars)) Object.assign((state[Number(id)] ??= {}), sc);
  parts.optimizer.loadStateDict({ state, paramGroups: opt.paramGroups });
  for (const [name, g] of Object.entries(parts.generators ?? {})) {
    const s = all.get(`rng.${name}`);
    if (!s) throw new InputError(`${path}: no state for generator '${name}'`);
    g.setState(s);
  }
  disposeAll(all);
  return info;
}
