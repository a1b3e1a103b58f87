// The soft-label teacher: a classifier state dict whose architecture is read off its keys and shapes, checked against
// the evaluation (classes, input channels) before any training starts.
import { extname } from "node:path";
import { InputError } from "../errors.js";
import { loadSafetensors } from "../io/safetensors.js";
import type { Tensor } from "../torch/index.js";
import type { EvalPreset } from "./presets.js";
import { archName, buildClassifier, type Classifier, type ClassifierSpec, inferClassifierSpec } from "./students.js";

export interface Teacher {
  model: Classifier;
  spec: ClassifierSpec;
  path: string;
}

export interface TeacherOptions {
  preset: EvalPreset;
  numClasses: number;
  /** When given, the checkpoint must be this architecture ("resnet18", "convnet3", ...). */
  arch?: string;
  device?: string;
}

/** A state dict from a safetensors file; a "module." prefix on every key (DataParallel) is dropped. */
function readStateDict(path: string): Map<string, Tensor> {
  if ([".pt", ".pth", ".bin", ".tar"].includes(extname(path).toLowerCase()))
    throw new InputError(`${path}: PyTorch checkpoints are not readable yet; convert the state dict to safetensors`);
  const sd = loadSafetensors(path);
  const keys = [...sd.keys()];
  if (keys.length > 0 && keys.every((k) => k.startsWith("module."))) return new Map(keys.map((k) => [k.slice(7), sd.get(k)!]));
  return sd;
}

export function loadTeacher(path: string, o: TeacherOptions): Teacher {
  const sd = readStateDict(path);
  const spec = inferClassifierSpec(sd, o.preset.imageSize, path);
  if (o.arch !== undefined && o.arch !== archName(spec)) throw new InputError(`${path}: the checkpoint is a ${archName(spec)}, not a ${o.arch}`);
  if (spec.numClasses !== o.numClasses)
    throw new InputError(`${path}: the teacher has ${spec.numClasses} outputs but the data set has ${o.numClasses} classes`);
  if (spec.inChannels !== o.preset.channels)
    throw new InputError(`${path}: the teacher takes ${spec.inChannels}-channel input but the ${o.preset.name} preset gives ${o.preset.channels} channels`);
  const model = buildClassifier(spec, { device: o.device });
  model.loadStateDict(sd);
  for (const t of sd.values()) t.dispose();
  model.eval();
  for (const p of model.parameters()) p.requiresGrad_(false);
  return { model, spec, path };
}
