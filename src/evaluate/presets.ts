// Per-data-set evaluation settings: input size and channels, normalisation, the ResNet stem, and how the protocols'
// epoch counts and test cadence scale for the data set (docs/evaluation.md: "image size and epoch counts scale with the
// data set"). docs/evaluation.md records how the Fashion-MNIST numbers were chosen.
import type { SetFormat } from "../io/datasets/sets.js";
import type { ResNetStem } from "../models/resnet.js";

export const EVAL_PRESETS = ["fashion-mnist", "imagenet"] as const;
export type EvalPresetName = (typeof EVAL_PRESETS)[number];

export interface EvalPreset extends SetFormat {
  name: EvalPresetName;
  /** Per-channel normalisation after augmentation, as torchvision's Normalize. */
  mean: number[];
  std: number[];
  resnetStem: ResNetStem;
  /** Multiplies the hard-label protocol's epoch count (1 = Minimax/IDC's numbers). */
  hardEpochScale: number;
  /** Test evaluations over a hard-label run (the protocol: 100, every E/100 epochs). */
  hardTestCount: number;
  /** Multiplies the soft-label protocol's 300 epochs. */
  softEpochScale: number;
  /** Soft-label test interval in epochs within the last 20% of the run (the protocol: 10). */
  softTestEvery: number;
}

export const PRESETS: Record<EvalPresetName, EvalPreset> = {
  // Fashion-MNIST: 28x28 grey images upsampled to 32x32 so that ConvNet-3 ends at 4x4 and ResNets can use the
  // small-image stem. mean/std of the 60k training images at 28x28 (0.28604, 0.35302; DC/IDC use 0.2861, 0.3530).
  // Epochs are scaled so that one IPC-10 ConvNet-3 hard-label repeat fits in about 10 minutes on 2 shared CPU cores
  // (measured: 411 s for 100 epochs and 5 test passes, 74.2% top-1; docs/evaluation.md); a 10k-image test pass costs
  // as much as ~20 such epochs, so the test passes are thinned too. Soft: 60 of 300 epochs, tests every 4 epochs in
  // the last 20% (52, 56, 60), about 7 minutes with a ResNet-18 teacher.
  "fashion-mnist": {
    name: "fashion-mnist",
    imageSize: 32,
    testResize: null,
    channels: 1,
    mean: [0.286],
    std: [0.353],
    resnetStem: "cifar",
    hardEpochScale: 0.05,
    hardTestCount: 5,
    softEpochScale: 0.2,
    softTestEvery: 4,
  },
  // ImageNet and its subsets at the protocols' own numbers (ImageNet mean/std, 224x224, ImageNet stem; validation
  // images Resize(256) -> CenterCrop(224)).
  imagenet: {
    name: "imagenet",
    imageSize: 224,
    testResize: 256,
    channels: 3,
    mean: [0.485, 0.456, 0.406],
    std: [0.229, 0.224, 0.225],
    resnetStem: "imagenet",
    hardEpochScale: 1,
    hardTestCount: 100,
    softEpochScale: 1,
    softTestEvery: 10,
  },
};
