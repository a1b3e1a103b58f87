// The image classifiers that serve as evaluation students, soft-label teachers and distillation selectors, described by
// a small spec: a record states exactly what was trained, a checkpoint's spec is read off its keys and shapes (via
// io/architecture.ts) instead of being typed in, and a cao2 model file's description maps to and from it.
import { InputError } from "../errors.js";
import { guessArchitecture, type ShapeMap } from "../io/architecture.js";
import type { Tensor } from "../torch/index.js";
import { createConvNet, type ConvNetNorm } from "./convnet.js";
import { createEfficientNetB0, EFFICIENTNET_B0_DROPOUT, EFFICIENTNET_B0_STOCHASTIC_DEPTH } from "./efficientnet.js";
import { createMobileNetV2, MOBILENET_V2_DROPOUT } from "./mobilenet.js";
import type { Model, ModelOptions } from "./module.js";
import { createResNetAP, RESNET_AP_DEFAULTS, type ResNetAPDepth, type ResNetAPStem } from "./resnet-ap.js";
import { createResNet, type Norm2dKind, RESNET_DEFAULTS, type ResNetDepth, type ResNetStem } from "./resnet.js";
import type { Preprocess, SavedModel } from "./saved.js";

/** A model with class logits and pooled penultimate features (what the selector's representative strategy uses). */
export type Classifier = Model & {
  readonly config: { numClasses: number };
  readonly numFeatures: number;
  /** [N, C, H, W] -> [N, numClasses]. */
  forward(x: Tensor): Tensor;
  /** [N, C, H, W] -> [N, numFeatures]. */
  features(x: Tensor): Tensor;
};

interface Common {
  numClasses: number;
  inChannels: number;
}

export type ClassifierSpec =
  | ({ kind: "convnet"; depth: number; width: number; norm: ConvNetNorm; imageSize: number } & Common)
  | ({ kind: "resnet"; depth: ResNetDepth; norm: Norm2dKind; stem: ResNetStem } & Common)
  | ({ kind: "resnetap"; depth: ResNetAPDepth; norm: Norm2dKind; stem: ResNetAPStem } & Common)
  | ({ kind: "mobilenet_v2"; norm: "batch"; dropout: number } & Common)
  | ({ kind: "efficientnet_b0"; norm: "batch"; dropout: number; stochasticDepth: number } & Common);

export type ClassifierKind = ClassifierSpec["kind"];
export const CLASSIFIER_KINDS: readonly ClassifierKind[] = [
  "convnet",
  "resnet",
  "resnetap",
  "mobilenet_v2",
  "efficientnet_b0",
];

/** "resnet18", "convnet3", "resnetap10", "mobilenet_v2", "efficientnet_b0": the names --arch takes. */
export const archName = (s: ClassifierSpec) => ("depth" in s ? `${s.kind}${s.depth}` : s.kind);

/**
 * A randomly initialised classifier (each family's own init). ConvNets take the input at `imageSize` with first
 * padding 1: 32x32 inputs end at 4x4 after three pools whatever the channel count (the DC code's padding 3 for
 * 1-channel data exists to grow 28x28 MNIST images to that size; the presets resize them to 32x32 instead).
 */
export function buildClassifier(spec: ClassifierSpec, opts: ModelOptions = {}): Classifier {
  const { numClasses, inChannels } = spec;
  switch (spec.kind) {
    case "convnet": {
      const { depth, width, norm, imageSize } = spec;
      return createConvNet({ depth, width, norm, numClasses, inChannels, imageSize, firstPadding: 1 }, opts);
    }
    case "resnet":
      return createResNet({ depth: spec.depth, norm: spec.norm, stem: spec.stem, numClasses, inChannels }, opts);
    case "resnetap":
      return createResNetAP({ depth: spec.depth, norm: spec.norm, stem: spec.stem, numClasses, inChannels }, opts);
    case "mobilenet_v2":
      return createMobileNetV2({ numClasses, inChannels, dropout: spec.dropout }, opts);
    case "efficientnet_b0":
      return createEfficientNetB0(
        { numClasses, inChannels, dropout: spec.dropout, stochasticDepth: spec.stochasticDepth },
        opts,
      );
  }
}

/** torchvision's blocks per stage: basic blocks for 18/34, bottlenecks for 50/101/152. */
const RESNET_LAYOUTS: Record<string, ResNetDepth> = {
  "basic:2,2,2,2": 18,
  "basic:3,4,6,3": 34,
  "bottleneck:3,4,6,3": 50,
  "bottleneck:3,4,23,3": 101,
  "bottleneck:3,8,36,3": 152,
};
const RESNETAP_LAYOUTS: Record<string, ResNetAPDepth> = { "1,1,1,1": 10, "2,2,2,2": 18, "3,4,6,3": 34 };

/**
 * A classifier's spec from its state dict's keys and shapes: torchvision ResNets (stem from conv1's kernel, batch norm
 * if running statistics are present, else instance norm), IDC's ResNet-AP (stem from the first conv's kernel, and
 * between mid and small from `imageSize`), torchvision's MobileNetV2 and EfficientNet-B0, and ConvNet-D (input size
 * taken to be `imageSize`, checked when the weights are loaded). `where` names the file in errors.
 */
export function classifierSpecOf(shapes: ShapeMap, imageSize: number, where: string): ClassifierSpec {
  const g = guessArchitecture(shapes);
  const n = (k: string) => g!.config[k] as number;
  const common = () => ({ numClasses: n("numClasses"), inChannels: n("inChannels") });
  switch (g?.family) {
    case "resnet": {
      const kind = g.config.bottleneck ? "bottleneck" : "basic";
      const blocks = g.config.blocks as number[];
      const depth = RESNET_LAYOUTS[`${kind}:${blocks.join(",")}`];
      if (!depth)
        throw new InputError(
          `${where}: a ResNet with ${kind} blocks [${blocks}] per stage is not ResNet-18/34/50/101/152`,
        );
      const k = n("stemKernel");
      if (k !== 3 && k !== 7)
        throw new InputError(
          `${where}: conv1 has a ${k}x${k} kernel; expected 7x7 (ImageNet stem) or 3x3 (small-image stem)`,
        );
      return {
        kind: "resnet",
        depth,
        norm: g.config.norm === "batch" ? "batch" : "instance",
        stem: k === 3 ? "cifar" : "imagenet",
        ...common(),
      };
    }
    case "resnetap": {
      const blocks = g.config.blocks as number[];
      const depth = RESNETAP_LAYOUTS[blocks.join(",")];
      if (!depth)
        throw new InputError(`${where}: a ResNet-AP with [${blocks}] blocks per stage is not ResNet-AP-10/18/34`);
      const k = n("stemKernel");
      if (k !== 3 && k !== 7)
        throw new InputError(
          `${where}: layer0.conv1 has a ${k}x${k} kernel; expected 7x7 (large stem) or 3x3 (mid and small stems)`,
        );
      const stem = k === 7 ? "large" : imageSize <= 64 ? "small" : "mid";
      return { kind: "resnetap", depth, norm: g.config.norm === "batch" ? "batch" : "instance", stem, ...common() };
    }
    case "mobilenet_v2":
      if (g.config.widthMultiplier !== 1)
        throw new InputError(`${where}: ${g.name}; only torchvision's mobilenet_v2 at width 1.0 is built`);
      return { kind: "mobilenet_v2", norm: "batch", dropout: MOBILENET_V2_DROPOUT, ...common() };
    case "efficientnet":
      if (g.config.variant !== "b0")
        throw new InputError(`${where}: ${g.name}; only torchvision's efficientnet_b0 is built`);
      return {
        kind: "efficientnet_b0",
        norm: "batch",
        dropout: EFFICIENTNET_B0_DROPOUT,
        stochasticDepth: EFFICIENTNET_B0_STOCHASTIC_DEPTH,
        ...common(),
      };
    case "convnet": {
      const norm = g.config.norm as ConvNetNorm;
      return { kind: "convnet", depth: n("depth"), width: n("width"), norm, imageSize, ...common() };
    }
  }
  const what = g ? `it holds ${g.name} weights` : "its keys match none";
  throw new InputError(
    `${where}: not a classifier cao2 builds (ResNet, ResNet-AP, ConvNet, MobileNetV2, EfficientNet-B0): ${what}`,
  );
}

/** The cao2 model-file description of a classifier built from `spec`. */
export function savedClassifier(
  spec: ClassifierSpec,
  preprocess: Preprocess,
  classes: string[],
): Extract<SavedModel, { kind: ClassifierKind }> {
  const { numClasses, inChannels } = spec;
  switch (spec.kind) {
    case "convnet": {
      const { depth, width, norm, imageSize } = spec;
      return {
        kind: "convnet",
        config: { depth, width, norm, numClasses, inChannels, imageSize, firstPadding: 1 },
        preprocess,
        classes,
      };
    }
    case "resnet":
      return {
        kind: "resnet",
        config: { depth: spec.depth, norm: spec.norm, stem: spec.stem, numClasses, inChannels },
        preprocess,
        classes,
      };
    case "resnetap":
      return {
        kind: "resnetap",
        config: { depth: spec.depth, norm: spec.norm, stem: spec.stem, numClasses, inChannels },
        preprocess,
        classes,
      };
    case "mobilenet_v2":
      return { kind: "mobilenet_v2", config: { numClasses, inChannels, dropout: spec.dropout }, preprocess, classes };
    case "efficientnet_b0":
      return {
        kind: "efficientnet_b0",
        config: { numClasses, inChannels, dropout: spec.dropout, stochasticDepth: spec.stochasticDepth },
        preprocess,
        classes,
      };
  }
}

/** The spec of a classifier a cao2 model file describes (its defaults filled in). */
export function specOfSaved(meta: Extract<SavedModel, { kind: ClassifierKind }>): ClassifierSpec {
  const size = meta.preprocess.size;
  switch (meta.kind) {
    case "convnet": {
      const c = meta.config;
      return {
        kind: "convnet",
        depth: c.depth ?? 3,
        width: c.width ?? 128,
        norm: c.norm ?? "instance",
        numClasses: c.numClasses,
        inChannels: c.inChannels ?? 3,
        imageSize: size,
      };
    }
    case "resnet": {
      const c = meta.config;
      return {
        kind: "resnet",
        depth: c.depth,
        norm: c.norm ?? RESNET_DEFAULTS.norm,
        stem: c.stem ?? RESNET_DEFAULTS.stem,
        numClasses: c.numClasses,
        inChannels: c.inChannels ?? 3,
      };
    }
    case "resnetap": {
      const c = meta.config;
      return {
        kind: "resnetap",
        depth: c.depth,
        norm: c.norm ?? RESNET_AP_DEFAULTS.norm,
        stem: c.stem ?? RESNET_AP_DEFAULTS.stem,
        numClasses: c.numClasses,
        inChannels: c.inChannels ?? 3,
      };
    }
    case "mobilenet_v2": {
      const c = meta.config;
      return {
        kind: "mobilenet_v2",
        norm: "batch",
        dropout: c.dropout ?? MOBILENET_V2_DROPOUT,
        numClasses: c.numClasses,
        inChannels: c.inChannels ?? 3,
      };
    }
    case "efficientnet_b0": {
      const c = meta.config;
      const sd = c.stochasticDepth ?? EFFICIENTNET_B0_STOCHASTIC_DEPTH;
      return {
        kind: "efficientnet_b0",
        norm: "batch",
        dropout: c.dropout ?? EFFICIENTNET_B0_DROPOUT,
        stochasticDepth: sd,
        numClasses: c.numClasses,
        inChannels: c.inChannels ?? 3,
      };
    }
  }
}
