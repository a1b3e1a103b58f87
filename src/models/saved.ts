// Models saved by cao2 carry what is needed to rebuild and use them in the safetensors metadata (key "cao2"): the
// model kind and configuration, the input preprocessing and the class names. A user's own checkpoint without it
// is described by flags instead (see the CLI commands).
//
// The description comes from the file, so it is checked before any model is built from it: it must be JSON of the
// right form; every size in it must be one the file's own tensors can hold (a count of blocks at most the number of
// tensors, a width at most the largest dimension of a tensor that holds data, a side length within the image pixel
// limit); and the model it describes, built on the "meta" device (shapes only, no memory), must have exactly the
// file's keys and shapes. A 376-byte file asking for a DiT of depth 1,000,000 is refused in milliseconds.
import { InputError } from "../errors.js";
import { type Checkpoint, loadStateDict, openCheckpoint } from "../io/checkpoint.js";
import { readLimits } from "../io/limits.js";
import { saveSafetensors } from "../io/safetensors.js";
import { checkStateDict } from "../io/state-dict.js";
import { type AutoencoderKL, type AutoencoderKLConfig, createAutoencoderKL } from "./autoencoder.js";
import { type ConvNet, type ConvNetConfig, createConvNet } from "./convnet.js";
import { createDiT, type DiT, type DiTConfig } from "./dit.js";
import { tidy } from "../torch/index.js";
import type { Model } from "./module.js";
import { createEfficientNetB0, type EfficientNetB0, type EfficientNetB0Config } from "./efficientnet.js";
import { createMobileNetV2, type MobileNetV2, type MobileNetV2Config } from "./mobilenet.js";
import { createResNetAP, type ResNetAP, type ResNetAPConfig } from "./resnet-ap.js";
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
  | { kind: "resnetap"; config: ResNetAPConfig; preprocess: Preprocess; classes: string[] }
  | { kind: "mobilenet_v2"; config: MobileNetV2Config; preprocess: Preprocess; classes: string[] }
  | { kind: "efficientnet_b0"; config: EfficientNetB0Config; preprocess: Preprocess; classes: string[] }
  | { kind: "dit"; config: DiTConfig; classes: string[] }
  | { kind: "autoencoder"; config: AutoencoderKLConfig; scalingFactor: number };

export type BuiltModel = ResNet | ConvNet | ResNetAP | MobileNetV2 | EfficientNetB0 | DiT | AutoencoderKL;

/** Writes the model's state dict with its description (atomic). */
export function saveModel(path: string, model: Model, meta: SavedModel, extra: Record<string, string> = {}): void {
  saveSafetensors(path, model.stateDict(), { ...extra, cao2: JSON.stringify(meta) });
}

/**
 * The description stored with a cao2 model, or undefined for other checkpoints (any format). Checked against the
 * file's tensors (see the file comment): what it returns builds a model the file fills exactly.
 */
export function readModelMeta(path: string): SavedModel | undefined {
  const ck = openCheckpoint(path);
  try {
    const raw = ck.metadata.cao2;
    if (raw === undefined) return undefined;
    const meta = parseModelMeta(raw, path);
    checkAgainstTensors(meta, ck);
    return meta;
  } finally {
    ck.close();
  }
}

const KINDS = ["resnet", "convnet", "resnetap", "mobilenet_v2", "efficientnet_b0", "dit", "autoencoder"] as const;
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const isNumberList = (v: unknown): v is number[] =>
  Array.isArray(v) && v.every((x) => typeof x === "number" && Number.isFinite(x));

/** The JSON of a description, with the form of each part checked (the values are checked against the file next). */
function parseModelMeta(raw: string, path: string): SavedModel {
  const bad = (msg: string): never => {
    throw new InputError(`${path}: the "cao2" metadata ${msg}`);
  };
  let m: unknown;
  try {
    m = JSON.parse(raw);
  } catch (e) {
    return bad(`is not valid JSON (${(e as Error).message}); expected a cao2 model description`);
  }
  if (!isObject(m)) return bad("is not a JSON object; expected a cao2 model description");
  if (!(KINDS as readonly unknown[]).includes(m.kind))
    bad(`names kind ${JSON.stringify(m.kind)?.slice(0, 40)}; expected one of ${KINDS.join(", ")}`);
  if (!isObject(m.config)) bad(`has no config object`);
  for (const [k, v] of Object.entries(m.config as object)) {
    const ok =
      typeof v === "boolean" ||
      typeof v === "string" ||
      (typeof v === "number" && Number.isFinite(v)) ||
      isNumberList(v);
    if (!ok)
      bad(
        `config.${k} is ${JSON.stringify(v)?.slice(0, 40)}; expected a number, a list of numbers, a string or a boolean`,
      );
  }
  if (m.kind !== "autoencoder") {
    if (!Array.isArray(m.classes) || !m.classes.every((c) => typeof c === "string")) bad("has no list of class names");
  } else if (typeof m.scalingFactor !== "number" || !Number.isFinite(m.scalingFactor) || m.scalingFactor <= 0) {
    bad("has no positive scalingFactor");
  }
  if (m.kind !== "dit" && m.kind !== "autoencoder") {
    const p = m.preprocess;
    const okPre =
      isObject(p) &&
      (p.channels === 1 || p.channels === 3) &&
      Number.isSafeInteger(p.size) &&
      (p.size as number) > 0 &&
      isNumberList(p.mean) &&
      isNumberList(p.std) &&
      p.mean.length === p.channels &&
      p.std.length === p.channels &&
      p.std.every((x) => x > 0);
    if (!okPre)
      bad("has no valid preprocess {size, channels: 1 or 3, mean and std with one value per channel, std > 0}");
  }
  return m as unknown as SavedModel;
}

/** Config entries that count repeated blocks: at most one per tensor of the file. */
const COUNTS = new Set(["depth", "layersPerBlock"]);
/** Config entries that are image or latent side lengths: their square within the pixel limit. */
const SIDES = new Set(["inputSize", "imageSize"]);

/** The description's sizes against the file's tensors (see the file comment), then its model's shapes (on "meta"). */
function checkAgainstTensors(meta: SavedModel, ck: Checkpoint): void {
  const bad = (msg: string): never => {
    throw new InputError(`${ck.path}: the "cao2" metadata ${msg}`);
  };
  let maxDim = 0;
  for (const t of ck.tensors.values()) if (t.numel > 0) for (const d of t.shape) maxDim = Math.max(maxDim, d);
  const count = ck.tensors.size;
  const pixels = readLimits().maxImagePixels;
  const side = (k: string, v: number[]) => {
    const area = v.length === 1 ? v[0] * v[0] : v.reduce((a, b) => a * b, 1);
    if (area > pixels) bad(`asks for ${k} ${v.join("x")}, over the ${pixels}-pixel limit (--max-image-pixels)`);
  };
  const entries = Object.entries(meta.config as unknown as Record<string, unknown>).map(
    ([k, v]) => [k, typeof v === "number" ? [v] : Array.isArray(v) ? (v as number[]) : []] as const,
  );
  for (const [k, values] of entries) {
    if (COUNTS.has(k) && values[0] > count) bad(`asks for ${k} ${values[0]}, but the file holds only ${count} tensors`);
    if (k === "blockOutChannels" && values.length > count)
      bad(`lists ${values.length} blockOutChannels, but the file holds only ${count} tensors`);
    if (SIDES.has(k)) side(k, values);
  }
  const wide = entries.filter(([k, values]) => !COUNTS.has(k) && !SIDES.has(k) && values.some((x) => x > maxDim));
  if (wide.length) {
    const list = wide.map(([k, values]) => `${k} ${values.length === 1 ? values[0] : `[${values}]`}`).join(", ");
    bad(`asks for ${list}, larger than any dimension of the file's tensors (at most ${maxDim})`);
  }
  if ("preprocess" in meta) side("preprocess.size", [meta.preprocess.size]);
  // The model itself, on the meta device: only shapes, so a wrong description costs nothing to build.
  let model: BuiltModel;
  try {
    model = buildModel(meta, "meta");
  } catch (e) {
    return bad(`does not describe a model cao2 can build (${(e as Error).message})`);
  }
  const own = model.stateDict();
  try {
    checkStateDict(own, ck.tensors, true, `the ${meta.kind} its "cao2" metadata describes`);
  } catch (e) {
    throw new InputError(`${ck.path}: ${(e as Error).message}`);
  } finally {
    for (const t of own.values()) t.dispose();
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
    case "resnetap":
      return createResNetAP(meta.config, { device });
    case "mobilenet_v2":
      return createMobileNetV2(meta.config, { device });
    case "efficientnet_b0":
      return createEfficientNetB0(meta.config, { device });
    case "dit":
      return createDiT(meta.config, { device, init: "zeros" });
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
  if (meta && !(kinds as readonly string[]).includes(meta.kind))
    throw new InputError(`${what}: expected ${expected}, but it holds a cao2 ${meta.kind} model`);
  return meta as Extract<SavedModel, { kind: K }> | undefined;
}

/** Loads a cao2-saved model of the expected kind. */
export function loadSavedModel<K extends SavedModel["kind"]>(
  path: string,
  kind: K,
  device = "cpu",
): { model: BuiltModel; meta: Extract<SavedModel, { kind: K }> } {
  const meta = readModelMetaOfKind(path, [kind], `${/^[aeiou]/.test(kind) ? "an" : "a"} ${kind}`);
  if (!meta)
    throw new InputError(`${path}: not a cao2 model file (no "cao2" metadata); describe the model with flags instead`);
  return { model: fillFromFile(buildModel(meta, device), path), meta };
}

/** Loads a cao2-saved classifier (ResNet or ConvNet) with its input preprocessing; `what` names it in errors. */
export function loadSavedClassifier(
  path: string,
  what = path,
  device = "cpu",
): { net: ResNet | ConvNet; preprocess: Preprocess } {
  const expected = "a cao2 classifier model file (ResNet or ConvNet)";
  const meta = readModelMetaOfKind(path, ["resnet", "convnet"], expected, what);
  if (!meta) throw new InputError(`${what}: expected ${expected}, but it holds no "cao2" metadata`);
  return { net: fillFromFile(buildModel(meta, device) as ResNet | ConvNet, path), preprocess: meta.preprocess };
}
