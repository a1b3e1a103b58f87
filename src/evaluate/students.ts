// The classifiers the protocols train (students) or query (soft-label teachers): ConvNet-D and ResNets, described by a
// small spec so that a record can state exactly what was trained, and so that a teacher checkpoint's architecture can
// be read off its keys and shapes instead of being typed in.
import { InputError } from "../errors.js";
import { createConvNet, type ConvNetNorm } from "../models/convnet.js";
import type { Model } from "../models/module.js";
import { createResNet, type ModelPlacement, type Norm2dKind, type ResNetDepth, type ResNetStem } from "../models/resnet.js";
import type { Tensor } from "../torch/index.js";

export const STUDENT_ARCHS = ["convnet3", "resnet18", "resnet50", "resnet101"] as const;
export type StudentArch = (typeof STUDENT_ARCHS)[number];

/** A model with class logits: forward([N, C, H, W]) -> [N, numClasses]. */
export type Classifier = Model & { forward(x: Tensor): Tensor };

export type ClassifierSpec =
  | { kind: "convnet"; depth: number; width: number; norm: ConvNetNorm; numClasses: number; inChannels: number; imageSize: number }
  | { kind: "resnet"; depth: ResNetDepth; norm: Norm2dKind; stem: ResNetStem; numClasses: number; inChannels: number };

export const archName = (s: ClassifierSpec) => `${s.kind}${s.depth}`;

export interface StudentOptions {
  numClasses: number;
  inChannels: number;
  imageSize: number;
  norm: Norm2dKind;
  /** ResNet stem: "cifar" for small images (RDED's resnet18_modified), "imagenet" otherwise. */
  stem: ResNetStem;
}

/** The spec of a named student: ConvNet-3 is width 128 (the DD standard); ResNets are torchvision's. */
export function studentSpec(arch: StudentArch, o: StudentOptions): ClassifierSpec {
  const common = { numClasses: o.numClasses, inChannels: o.inChannels };
  if (arch === "convnet3") return { kind: "convnet", depth: 3, width: 128, norm: o.norm, imageSize: o.imageSize, ...common };
  const depth = Number(arch.slice("resnet".length)) as ResNetDepth;
  return { kind: "resnet", depth, norm: o.norm, stem: o.stem, ...common };
}

/**
 * A randomly initialised classifier (PyTorch's default inits). ConvNets take the input at the preset size with first
 * padding 1: 32x32 inputs end at 4x4 after three pools whatever the channel count (the DC code's padding 3 for
 * 1-channel data exists to grow 28x28 MNIST images to that size; the presets resize them to 32x32 instead).
 */
export function buildClassifier(spec: ClassifierSpec, placement: ModelPlacement = {}): Classifier {
  if (spec.kind === "convnet") {
    const { depth, width, norm, numClasses, inChannels, imageSize } = spec;
    return createConvNet({ depth, width, norm, numClasses, inChannels, imageSize, firstPadding: 1 }, placement);
  }
  const { depth, norm, stem, numClasses, inChannels } = spec;
  return createResNet({ depth, norm, stem, numClasses, inChannels }, placement);
}

// ---------------------------------------------------------------------------------------------------------------
// Architecture from a state dict (soft-label teachers)
// ---------------------------------------------------------------------------------------------------------------

/** torchvision's blocks per stage: basic blocks for 18/34, bottlenecks for 50/101/152. */
const RESNET_LAYOUTS: Record<string, ResNetDepth> = {
  "basic:2,2,2,2": 18,
  "basic:3,4,6,3": 34,
  "bottleneck:3,4,6,3": 50,
  "bottleneck:3,4,23,3": 101,
  "bottleneck:3,8,36,3": 152,
};

/** Number of blocks under `prefix.<i>.` (i = 0, 1, ...). */
function countIndexed(keys: Set<string>, prefix: string, probe: string): number {
  let n = 0;
  while (keys.has(`${prefix}.${n}.${probe}`)) n++;
  return n;
}

/**
 * Reads a classifier's architecture off its state dict: torchvision ResNets (depth from the block counts, stem from
 * conv1's kernel, batch norm if running statistics are present, else instance norm) and ConvNet-D (depth from the
 * conv layers, width from the first conv, norm from the layer after each conv). `where` names the file in errors.
 * The ConvNet input size is taken to be `imageSize` (checked when the weights are loaded).
 */
export function inferClassifierSpec(sd: ReadonlyMap<string, Tensor>, imageSize: number, where: string): ClassifierSpec {
  const keys = new Set(sd.keys());
  const shape = (k: string) => sd.get(k)!.shape;
  if (keys.has("conv1.weight") && keys.has("fc.weight")) {
    const kind = keys.has("layer1.0.conv3.weight") ? "bottleneck" : "basic";
    const blocks = [1, 2, 3, 4].map((s) => countIndexed(keys, `layer${s}`, "conv1.weight"));
    const depth = RESNET_LAYOUTS[`${kind}:${blocks.join(",")}`];
    if (!depth) throw new InputError(`${where}: a ResNet with ${kind} blocks [${blocks}] per stage is not ResNet-18/34/50/101/152`);
    const k = shape("conv1.weight")[2];
    if (k !== 3 && k !== 7) throw new InputError(`${where}: conv1 has a ${k}x${k} kernel; expected 7x7 (ImageNet stem) or 3x3 (small-image stem)`);
    return {
      kind: "resnet",
      depth,
      norm: keys.has("bn1.running_mean") ? "batch" : "instance",
      stem: k === 3 ? "cifar" : "imagenet",
      numClasses: shape("fc.weight")[0],
      inChannels: shape("conv1.weight")[1],
    };
  }
  if (keys.has("features.0.weight") && keys.has("classifier.weight")) {
    // conv, norm, ReLU, pool per block (stride 4 in the Sequential), or conv, ReLU, pool without a norm (stride 3)
    const withNorm = keys.has("features.1.weight");
    const stride = withNorm ? 4 : 3;
    let depth = 0;
    while (keys.has(`features.${depth * stride}.weight`)) depth++;
    return {
      kind: "convnet",
      depth,
      width: shape("features.0.weight")[0],
      norm: !withNorm ? "none" : keys.has("features.1.running_mean") ? "batch" : "instance",
      numClasses: shape("classifier.weight")[0],
      inChannels: shape("features.0.weight")[1],
      imageSize,
    };
  }
  throw new InputError(`${where}: not a ResNet (conv1/fc keys) or ConvNet (features/classifier keys) state dict`);
}
