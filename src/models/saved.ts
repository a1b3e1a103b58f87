// Models saved by cao2 carry what is needed to rebuild and use them in the safetensors metadata (key "cao2"): the
// model kind and configuration, the input preprocessing and the class names. A user's own checkpoint without it
// is described by flags instead (see the CLI commands).
import { InputError } from "../errors.js";
import { loadStateDict, openCheckpoint } from "../io/checkpoint.js";
import { saveSafetensors } from "../io/safetensors.js";
import { type AutoencoderKL, type AutoencoderKLConfig, createAutoencoderKL } from "./autoencoder.js";
import { type ConvNet, type ConvNetConfig, createConvNet } from "./convnet.js";
import { createDiT, type DiT, type DiTConfig } from "./dit.js";
import { tidy } from "../torch/index.js";
import type { Model } from "./module.js";
import { createResNet, type ResNet, type ResNetConfig } from "./resnet.js";

/** How a classifier's input is prepared from images in [0, 1]: resize to size x size, then (x - mean) / std. */
export interface Preprocess {
  size: number;
  channels: number;
  mean: number[];
  std: number[];
}

export type SavedModel =
  | { kind: "resnet"; config: ResNetConfig; preprocess: Preprocess; classes: string[] }
  | { kind: "convnet"; config: ConvNetConfig; preprocess: Preprocess; classes: string[] }
  | { kind: "dit"; config: DiTConfig; classes: string[] }
  | { kind: "autoencoder"; config: AutoencoderKLConfig; scalingFactor: number };

export type BuiltModel = ResNet | ConvNet | DiT | AutoencoderKL;

/** Writes the model's state dict with its description (atomic). */
export function saveModel(path: string, model: Model, meta: SavedModel, extra: Record<string, string> = {}): void {
  saveSafetensors(path, model.stateDict(), { ...extra, cao2: JSON.stringify(meta) });
}

/** The description stored with a cao2 model, or undefined for other checkpoints (any format). */
export function readModelMeta(path: string): SavedModel | undefined {
  const ck = openCheckpoint(path);
  try {
    const raw = ck.metadata.cao2;
    return raw ? (JSON.parse(raw) as SavedModel) : undefined;
  } finally {
    ck.close();
  }
}

/** Copies a checkpoint's tensors into a model (through the model's own key handling). */
export function fillFromFile<M extends Model>(model: M, path: string): M {
  tidy(() => void model.loadStateDict(loadStateDict(path)));
  return model;
}

/** Builds a model from its description (weights left at zero; load them next). */
export function buildModel(meta: SavedModel, device = "cpu"): BuiltModel {
  switch (meta.kind) {
    case "resnet":
      return createResNet(meta.config, { device });
    case "convnet":
      return createConvNet(meta.config, { device });
    case "dit":
      return createDiT(meta.config, {}, { device, init: false });
    case "autoencoder":
      return createAutoencoderKL(meta.config, { device, init: "zeros" });
  }
}

/**
 * A file's cao2 description when it has one, refused unless it is one of `kinds`; `expected` names them in the error
 * ("a DiT") and `what` names the file (default: its path).
 */
export function readModelMetaOfKind<K extends SavedModel["kind"]>(
  path: string,
  kinds: readonly K[],
  expected: string,
  what = path,
): Extract<SavedModel, { kind: K }> | undefined {
  const meta = readModelMeta(path);
  if (meta && !(kinds as readonly string[]).includes(meta.kind)) throw new InputError(`${what}: expected ${expected}, but it holds a cao2 ${meta.kind} model`);
  return meta as Extract<SavedModel, { kind: K }> | undefined;
}

/** Loads a cao2-saved model of the expected kind. */
export function loadSavedModel<K extends SavedModel["kind"]>(
  path: string,
  kind: K,
  device = "cpu",
): { model: BuiltModel; meta: Extract<SavedModel, { kind: K }> } {
  const meta = readModelMetaOfKind(path, [kind], `${/^[aeiou]/.test(kind) ? "an" : "a"} ${kind}`);
  if (!meta) throw new InputError(`${path}: not a cao2 model file (no "cao2" metadata); describe the model with flags instead`);
  return { model: fillFromFile(buildModel(meta, device), path), meta };
}

/** Loads a cao2-saved classifier (ResNet or ConvNet) with its input preprocessing; `what` names it in errors. */
export function loadSavedClassifier(path: string, what = path, device = "cpu"): { net: ResNet | ConvNet; preprocess: Preprocess } {
  const expected = "a cao2 classifier model file (ResNet or ConvNet)";
  const meta = readModelMetaOfKind(path, ["resnet", "convnet"], expected, what);
  if (!meta) throw new InputError(`${what}: expected ${expected}, but it holds no "cao2" metadata`);
  return { net: fillFromFile(buildModel(meta, device) as ResNet | ConvNet, path), preprocess: meta.preprocess };
}
