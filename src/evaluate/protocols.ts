// The two evaluation protocols of docs/evaluation.md: their settings (from schedule.ts and the data-set preset), their
// training-time augmentation pipelines, and one training step's loss.
//
// hard (Minimax / IDC train.py): SGD lr 0.01, momentum 0.9, wd 5e-4, batch 64, MultiStep x0.2 at 2E/3 and 5E/6
//   (ImageNet with 100+ classes: lr 0.1, wd 1e-4, batch at least 128, as IDC's argument.py sets them);
//   per image RandomResizedCrop(scale 0.5-1) -> flip -> ColorJitter(0.4, 0.4, 0.4; IDC's own blends) -> Lighting(0.1)
//   -> normalise; per batch CutMix (p 1, beta 1) with loss lam * CE(y) + (1 - lam) * CE(y_partner).
// soft (RDED validation/main.py): AdamW lr 1e-3, wd 0.01 on weights with 2+ dimensions only, factor
//   0.5 (1 + cos(pi e / E / 2)) per epoch; per image ShufflePatches(2) -> RandomResizedCrop(scale 0.5-1) -> flip ->
//   normalise; per batch CutMix (beta 1); the teacher (eval mode) labels the mixed batch online, and the loss is
//   KL(softmax(t / T) || softmax(s / T)) batchmean at T = 20.
import { InputError } from "../errors.js";
import type { Norm2dKind } from "../models/resnet.js";
import * as torch from "../torch/index.js";
import type { Generator, Optimizer, Precision, Tensor } from "../torch/index.js";
import { normalize } from "../io/image.js";
import { colorJitter, cutmix, lighting, randomHorizontalFlip, randomResizedCrop, shufflePatches } from "./augment.js";
import { cutmixCrossEntropy, softLabelKl } from "./losses.js";
import type { EvalPreset } from "./presets.js";
import {
  everyNEpochs,
  hardEpochs,
  hardLr,
  hardTestEpochs,
  type Protocol,
  scaleEpochs,
  softBatchSize,
  softLr,
  softTestEpochs,
} from "./schedule.js";
import type { Classifier } from "../models/classifiers.js";
import { BATCH_NORM_ONLY, checkStudentNorm, type StudentArch } from "./students.js";

export const PROTOCOLS = ["hard", "soft"] as const;
export type { Protocol } from "./schedule.js";

/**
 * "protocol": the protocol's per-image augmentations; "crop-flip": only its RandomResizedCrop and flip (a plain
 * trainer, so that a training set is also judged without the colour, lighting and patch-shuffle augmentations);
 * "none": only normalisation (e.g. whole-data sanity runs).
 */
export const AUGMENT_CHOICES = ["protocol", "crop-flip", "none"] as const;
export type AugmentChoice = (typeof AUGMENT_CHOICES)[number];

export type OptimizerSettings =
  | { name: "sgd"; lr: number; momentum: number; weightDecay: number }
  | { name: "adamw"; lr: number; betas: [number, number]; weightDecay: number; weightDecayOn: string };

/** The settings a user gave on the command line in place of the protocol's (recorded as given). */
export interface SettingOverrides {
  epochs?: number;
  batchSize?: number;
  lr?: number;
  weightDecay?: number;
}

/** IDC's argument.py for ImageNet with nclass >= 100 (Minimax evaluates with the same code). */
export const IMAGENET_LARGE = { minClasses: 100, lr: 0.1, weightDecay: 1e-4, minBatch: 128 } as const;

/** Everything that decides a run, as written into the record. */
export interface ProtocolSettings {
  protocol: Protocol;
  arch: StudentArch;
  norm: Norm2dKind;
  /** Images per class the epoch rule used (the largest class of the training set). */
  ipc: number;
  /** The protocol's epoch count before the preset's scale, the scale, and the epochs run. */
  protocolEpochs: number;
  epochScale: number;
  epochs: number;
  batchSize: number;
  optimizer: OptimizerSettings;
  lrSchedule: string;
  augment: AugmentChoice;
  augmentations: string[];
  cutmix: { p: number; beta: number } | null;
  /** Soft-label temperature. */
  temperature: number | null;
  /** Epochs (counted from 1) after which the test set is evaluated. */
  testEpochs: number[];
  /** The protocol's branch for large ImageNet subsets, when it applies (hard protocol, imagenet preset, 100+ classes). */
  branch: string | null;
  /** Values given with --epochs, --batch-size, --lr, --wd, which replace the protocol's. */
  overrides: SettingOverrides;
}

export interface SettingsOptions {
  protocol: Protocol;
  arch: StudentArch;
  preset: EvalPreset;
  /** Largest number of training images in a class. */
  ipc: number;
  numClasses: number;
  /** Training images in all. */
  setSize: number;
  /** Overrides (undefined = the protocol's value). */
  norm?: Norm2dKind;
  epochs?: number;
  batchSize?: number;
  lr?: number;
  weightDecay?: number;
  augment?: AugmentChoice;
  cutmix?: boolean;
  /** Test every N epochs (hard) / every N epochs in the last 20% (soft). */
  testEvery?: number;
}

export const SOFT_TEMPERATURE = 20;
const SOFT_EPOCHS = 300;

export function protocolSettings(options: SettingsOptions): ProtocolSettings {
  const { protocol, preset } = options;
  const hard = protocol === "hard";
  const protocolEpochs = hard ? hardEpochs(options.ipc, options.numClasses) : SOFT_EPOCHS;
  const epochScale =
    options.epochs !== undefined
      ? options.epochs / protocolEpochs
      : hard
        ? preset.hardEpochScale
        : preset.softEpochScale;
  const epochs = options.epochs ?? scaleEpochs(protocolEpochs, epochScale);
  for (const [k, v] of [
    ["epochs", epochs],
    ["batch size", options.batchSize],
    ["test interval", options.testEvery],
  ] as const) {
    if (v !== undefined && !(Number.isInteger(v) && v >= 1))
      throw new InputError(`${k} must be a positive integer, got ${v}`);
  }
  if (options.lr !== undefined && !(options.lr > 0))
    throw new InputError(`learning rate must be positive, got ${options.lr}`);
  if (options.weightDecay !== undefined && !(options.weightDecay >= 0))
    throw new InputError(`weight decay must be 0 or more, got ${options.weightDecay}`);
  const large = hard && preset.name === "imagenet" && options.numClasses >= IMAGENET_LARGE.minClasses;
  const overrides: SettingOverrides = {};
  for (const k of ["epochs", "batchSize", "lr", "weightDecay"] as const)
    if (options[k] !== undefined) overrides[k] = options[k];
  // The hard protocol's instance norm, except for the students that exist only with batch norm.
  const norm = options.norm ?? (hard && !BATCH_NORM_ONLY.includes(options.arch) ? "instance" : "batch");
  checkStudentNorm(options.arch, norm);
  const augment = options.augment ?? "protocol";
  const cropFlip = ["RandomResizedCrop(scale 0.5-1)", "RandomHorizontalFlip"];
  const perImage =
    augment === "none"
      ? []
      : augment === "crop-flip"
        ? cropFlip
        : hard
          ? [...cropFlip, "ColorJitter(0.4, 0.4, 0.4; IDC)", "Lighting(0.1; ImageNet PCA)"]
          : ["ShufflePatches(2)", ...cropFlip];
  const testEpochs = hard
    ? options.testEvery !== undefined
      ? everyNEpochs(epochs, options.testEvery)
      : hardTestEpochs(epochs, preset.hardTestCount)
    : softTestEpochs(epochs, options.testEvery ?? preset.softTestEvery);
  return {
    protocol,
    arch: options.arch,
    norm,
    ipc: options.ipc,
    protocolEpochs,
    epochScale,
    epochs,
    batchSize:
      options.batchSize ??
      (hard ? (large ? IMAGENET_LARGE.minBatch : 64) : softBatchSize(options.ipc, options.numClasses, options.setSize)),
    optimizer: hard
      ? {
          name: "sgd",
          lr: options.lr ?? (large ? IMAGENET_LARGE.lr : 0.01),
          momentum: 0.9,
          weightDecay: options.weightDecay ?? (large ? IMAGENET_LARGE.weightDecay : 5e-4),
        }
      : {
          name: "adamw",
          lr: options.lr ?? 1e-3,
          betas: [0.9, 0.999],
          weightDecay: options.weightDecay ?? 0.01,
          weightDecayOn: "weights with 2+ dimensions",
        },
    lrSchedule: hard ? "MultiStep: x0.2 at floor(2E/3) and floor(5E/6)" : "0.5 * (1 + cos(pi * e / E / 2)) per epoch",
    augment,
    augmentations: [...perImage, `Normalize(mean ${preset.mean}, std ${preset.std})`],
    cutmix: (options.cutmix ?? true) ? { p: 1, beta: 1 } : null,
    temperature: hard ? null : SOFT_TEMPERATURE,
    testEpochs,
    branch: large
      ? `ImageNet, ${IMAGENET_LARGE.minClasses}+ classes: lr ${IMAGENET_LARGE.lr}, wd ${IMAGENET_LARGE.weightDecay}, batch >= ${IMAGENET_LARGE.minBatch}`
      : null,
    overrides,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Augmentation pipelines (x in [0, 1], [N, C, H, W] at the preset size)
// ---------------------------------------------------------------------------------------------------------------

/** The protocol's per-image augmentations followed by normalisation. */
export function augmentBatch(x: Tensor, gen: Generator, s: ProtocolSettings, preset: EvalPreset): Tensor {
  return torch.tidy(() => {
    let y = x;
    if (s.augment !== "none") {
      const full = s.augment === "protocol";
      const size = [x.size(2), x.size(3)] as const;
      if (full && s.protocol === "soft") y = shufflePatches(y, gen, 2);
      y = randomResizedCrop(y, gen, { size, scale: [0.5, 1] });
      y = randomHorizontalFlip(y, gen);
      if (full && s.protocol === "hard") {
        y = colorJitter(y, gen, { brightness: 0.4, contrast: 0.4, saturation: 0.4, style: "idc" });
        y = lighting(y, gen, { alphastd: 0.1 });
      }
    }
    return normalize(y, preset.mean, preset.std);
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Optimisers and one step's loss
// ---------------------------------------------------------------------------------------------------------------

export interface Trainer {
  optimizer: Optimizer<{ lr: number }>;
  /** Learning rate of 0-based epoch e (set on every parameter group before the epoch). */
  lr(epoch: number): number;
  /** The loss of one batch: x in [0, 1] and labels y, both on the model's device; augmentation draws from gen. */
  loss(x: Tensor, y: Tensor, gen: Generator): Tensor;
}

export function makeOptimizer(student: Classifier, options: OptimizerSettings): Optimizer<{ lr: number }> {
  if (options.name === "sgd")
    return new torch.SGD(student.parameters(), {
      lr: options.lr,
      momentum: options.momentum,
      weightDecay: options.weightDecay,
    });
  // RDED's get_parameters: weight decay on parameters named "...weight" with 2+ dimensions, none on the rest
  const decay: Tensor[] = [];
  const rest: Tensor[] = [];
  for (const [name, p] of student.namedParameters()) (name.includes("weight") && p.ndim > 1 ? decay : rest).push(p);
  return new torch.AdamW(
    [
      { params: decay, weightDecay: options.weightDecay },
      { params: rest, weightDecay: 0 },
    ],
    { lr: options.lr, betas: options.betas },
  );
}

/** Where and in what arithmetic the networks run: the device, and fp32 or a mixed precision (torch/autocast.ts). */
export interface RunAt {
  device: string;
  precision: Precision;
}
/** fp32 runs the model as it is, on whatever device it is (the device only matters to autocast). */
const FP32: RunAt = { device: "cpu", precision: "fp32" };

/** The model's forward at a precision, its logits back in fp32: the losses and everything after them stay fp32. */
export const forwardAt =
  (model: Pick<Classifier, "forward">, at: RunAt) =>
  (x: Tensor): Tensor =>
    torch.autocastToFloat(at.device, at.precision, () => model.forward(x));

export function hardTrainer(student: Classifier, s: ProtocolSettings, preset: EvalPreset, at = FP32): Trainer {
  const forward = forwardAt(student, at);
  return {
    optimizer: makeOptimizer(student, s.optimizer),
    lr: (e) => hardLr(s.optimizer.lr, e, s.epochs),
    loss: (x, y, gen) =>
      torch.tidy(() => {
        const a = augmentBatch(x, gen, s, preset);
        if (!s.cutmix) return torch.F.crossEntropy(forward(a), y);
        const m = cutmix(a, gen, s.cutmix);
        return cutmixCrossEntropy(forward(m.images), y, m.partner, m.lam);
      }),
  };
}

/** The teacher must be in eval mode; its logits are computed without gradients on the student's (mixed) input. */
export function softTrainer(
  student: Classifier,
  teacher: Pick<Classifier, "forward">,
  s: ProtocolSettings,
  preset: EvalPreset,
  at = FP32,
): Trainer {
  const T = s.temperature ?? SOFT_TEMPERATURE;
  const [forward, teach] = [forwardAt(student, at), forwardAt(teacher, at)];
  return {
    optimizer: makeOptimizer(student, s.optimizer),
    lr: (e) => softLr(s.optimizer.lr, e, s.epochs),
    loss: (x, _y, gen) =>
      torch.tidy(() => {
        const a = augmentBatch(x, gen, s, preset);
        const input = s.cutmix ? cutmix(a, gen, s.cutmix).images : a;
        const target = torch.noGrad(() => teach(input));
        return softLabelKl(forward(input), target, T);
      }),
  };
}
