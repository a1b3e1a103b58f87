// The soft-label teacher, checked against the evaluation (classes, input channels) before any training starts. A cao2
// model file describes itself (architecture, input size and normalisation, classes); any other checkpoint (safetensors
// or PyTorch .pt/.pth, read without executing code) is a state dict whose architecture is read off its keys and shapes.
import { InputError } from "../errors.js";
import { loadStateDict } from "../io/checkpoint.js";
import { resizeImages } from "../io/image.js";
import { buildModel, type Preprocess, readModelMetaOfKind } from "../models/saved.js";
import * as torch from "../torch/index.js";
import type { Tensor } from "../torch/index.js";
import { matchClasses } from "../io/datasets/sets.js";
import type { EvalPreset } from "./presets.js";
import {
  archName,
  buildClassifier,
  type Classifier,
  CLASSIFIER_KINDS,
  type ClassifierSpec,
  classifierSpecOf,
  specOfSaved,
} from "../models/classifiers.js";

export interface Teacher {
  model: Classifier;
  spec: ClassifierSpec;
  path: string;
  /** The input the teacher was trained on, when its file records it (cao2 model files). */
  preprocess?: Preprocess;
  /** Logits for the student's input (preset size and normalisation), converted to the teacher's input first. */
  forward(x: Tensor): Tensor;
}

export interface TeacherOptions {
  preset: EvalPreset;
  /** The training set's class names, label by label. */
  classes: readonly string[];
  /** When given, the checkpoint must be this architecture ("resnet18", "convnet3", ...). */
  arch?: string;
  device?: string;
}

/** A state dict; a "module." prefix on every key (DataParallel) is dropped. */
function readStateDict(path: string): Map<string, Tensor> {
  const sd = loadStateDict(path);
  const keys = [...sd.keys()];
  if (keys.length > 0 && keys.every((k) => k.startsWith("module.")))
    return new Map(keys.map((k) => [k.slice(7), sd.get(k)!]));
  return sd;
}

/** The model and its spec, from a cao2 model file's description or from the state dict's keys. */
function readTeacher(
  path: string,
  o: TeacherOptions,
): { model: Classifier; spec: ClassifierSpec; preprocess?: Preprocess } {
  const meta = readModelMetaOfKind(path, CLASSIFIER_KINDS, "a classifier");
  const sd = readStateDict(path);
  try {
    if (!meta) {
      const spec = classifierSpecOf(new Map([...sd].map(([k, t]) => [k, t.shape])), o.preset.imageSize, path);
      const model = buildClassifier(spec, { device: o.device });
      model.loadStateDict(sd);
      return { model, spec };
    }
    matchClasses(o.classes, meta.classes, { data: "the training set", test: `the teacher ${path}` });
    const spec = specOfSaved(meta);
    const model = buildModel(meta, o.device) as Classifier;
    model.loadStateDict(sd);
    return { model, spec, preprocess: meta.preprocess };
  } finally {
    for (const t of sd.values()) t.dispose();
  }
}

/**
 * Student input -> teacher input: undo the preset's normalisation, resize to the teacher's size, apply the teacher's
 * normalisation. Identity when they agree (or the file does not say).
 */
function inputAdapter(preset: EvalPreset, pre: Preprocess | undefined): ((x: Tensor) => Tensor) | undefined {
  if (!pre) return undefined;
  const same = (a: number[], b: number[]) => a.length === b.length && a.every((v, i) => Math.abs(v - b[i]) < 1e-7);
  if (pre.size === preset.imageSize && same(pre.mean, preset.mean) && same(pre.std, preset.std)) return undefined;
  const col = (v: number[], like: Tensor) => torch.fromArray(Float32Array.from(v), [1, v.length, 1, 1]).to(like.device);
  return (x) =>
    torch.tidy(() => {
      let raw = x.mul(col(preset.std, x)).add(col(preset.mean, x));
      if (pre.size !== preset.imageSize) raw = resizeImages(raw, [pre.size, pre.size]);
      return raw.sub(col(pre.mean, x)).div(col(pre.std, x));
    });
}

export function loadTeacher(path: string, options: TeacherOptions): Teacher {
  const { model, spec, preprocess } = readTeacher(path, options);
  if (options.arch !== undefined && options.arch !== archName(spec))
    throw new InputError(`${path}: the checkpoint is a ${archName(spec)}, not a ${options.arch}`);
  if (spec.numClasses !== options.classes.length)
    throw new InputError(
      `${path}: the teacher has ${spec.numClasses} outputs but the data set has ${options.classes.length} classes`,
    );
  if (spec.inChannels !== options.preset.channels)
    throw new InputError(
      `${path}: the teacher takes ${spec.inChannels}-channel input but the ${options.preset.name} preset gives ${options.preset.channels} channels`,
    );
  model.freeze();
  const adapt = inputAdapter(options.preset, preprocess);
  return {
    model,
    spec,
    path,
    preprocess,
    forward: adapt ? (x) => torch.tidy(() => model.forward(adapt(x))) : (x) => model.forward(x),
  };
}
