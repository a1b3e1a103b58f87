// The students the protocols train, by the names --arch takes: ConvNet-D (the DD codes' width-128 ConvNet at depths
// 3-6), torchvision ResNets, IDC/Minimax's ResNet-AP-10, and torchvision's MobileNetV2 and EfficientNet-B0 (RDED's
// students). The classifiers themselves, and reading one's spec off a checkpoint, are in models/classifiers.ts.
import { InputError } from "../errors.js";
import type { ClassifierSpec } from "../models/classifiers.js";
import { EFFICIENTNET_B0_DROPOUT, EFFICIENTNET_B0_STOCHASTIC_DEPTH } from "../models/efficientnet.js";
import { MOBILENET_V2_DROPOUT } from "../models/mobilenet.js";
import { resnetAPStem } from "../models/resnet-ap.js";
import type { Norm2dKind, ResNetDepth, ResNetStem } from "../models/resnet.js";

export const STUDENT_ARCHS = [
  "convnet3",
  "convnet4",
  "convnet5",
  "convnet6",
  "resnet18",
  "resnet50",
  "resnet101",
  "resnetap10",
  "mobilenet_v2",
  "efficientnet_b0",
] as const;
export type StudentArch = (typeof STUDENT_ARCHS)[number];

/** Students that exist only with batch norm (torchvision's layouts and checkpoints have running statistics). */
export const BATCH_NORM_ONLY: readonly StudentArch[] = ["mobilenet_v2", "efficientnet_b0"];

export function checkStudentNorm(arch: StudentArch, norm: Norm2dKind): void {
  if (BATCH_NORM_ONLY.includes(arch) && norm !== "batch")
    throw new InputError(`${arch} is built with batch norm only (torchvision's layout); got --norm ${norm}`);
}

export interface StudentOptions {
  numClasses: number;
  inChannels: number;
  imageSize: number;
  norm: Norm2dKind;
  /** ResNet stem: "cifar" for small images (RDED's resnet18_modified), "imagenet" otherwise. */
  stem: ResNetStem;
}

/**
 * The spec of a named student: ConvNet-D is width 128 (the DD standard); ResNets are torchvision's; ResNet-AP takes
 * IDC's stem for the image size; the mobile nets keep torchvision's dropout (and B0's stochastic depth).
 */
export function studentSpec(arch: StudentArch, options: StudentOptions): ClassifierSpec {
  const common = { numClasses: options.numClasses, inChannels: options.inChannels };
  checkStudentNorm(arch, options.norm);
  if (arch === "mobilenet_v2") return { kind: "mobilenet_v2", norm: "batch", dropout: MOBILENET_V2_DROPOUT, ...common };
  if (arch === "efficientnet_b0")
    return {
      kind: "efficientnet_b0",
      norm: "batch",
      dropout: EFFICIENTNET_B0_DROPOUT,
      stochasticDepth: EFFICIENTNET_B0_STOCHASTIC_DEPTH,
      ...common,
    };
  if (arch === "resnetap10")
    return { kind: "resnetap", depth: 10, norm: options.norm, stem: resnetAPStem(options.imageSize), ...common };
  if (arch.startsWith("convnet"))
    return {
      kind: "convnet",
      depth: Number(arch.slice("convnet".length)),
      width: 128,
      norm: options.norm,
      imageSize: options.imageSize,
      ...common,
    };
  const depth = Number(arch.slice("resnet".length)) as ResNetDepth;
  return { kind: "resnet", depth, norm: options.norm, stem: options.stem, ...common };
}
