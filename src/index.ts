// cao2's library API. The tensor engine is a separate entry point: import * as torch from "cao2/torch".
export { InputError } from "./errors.js";

// checkpoints
export {
  loadStateDict,
  openCheckpoint,
  loadInto,
  detectFormat,
  type Checkpoint,
  type LoadOptions as CheckpointLoadOptions,
} from "./io/checkpoint.js";
export { saveSafetensors, loadSafetensors, SafetensorsFile } from "./io/safetensors.js";
export { guessArchitecture, requireArchitecture, type ArchitectureGuess } from "./io/architecture.js";

// models
export { createDiT, ditConfig, DiT, type DiTConfig, type DiTLoadOptions } from "./models/dit.js";
export { diffFitParameters, isDiffFitTrainable } from "./models/difffit.js";
export { minimaxGammaBlocks } from "./io/dit-layout.js";
export { createAutoencoderKL, AutoencoderKL, type AutoencoderKLConfig } from "./models/autoencoder.js";
export { createResNet, ResNet, type ResNetConfig } from "./models/resnet.js";
export { createConvNet, ConvNet, type ConvNetConfig } from "./models/convnet.js";
export { createResNetAP, ResNetAP, type ResNetAPConfig } from "./models/resnet-ap.js";
export { createMobileNetV2, MobileNetV2, type MobileNetV2Config } from "./models/mobilenet.js";
export { createEfficientNetB0, EfficientNetB0, type EfficientNetB0Config } from "./models/efficientnet.js";
export { buildClassifier, classifierSpecOf, type Classifier, type ClassifierSpec } from "./models/classifiers.js";
export { Model, type LoadOptions, type ModelOptions } from "./models/module.js";
export { StateDictError, type LoadReport } from "./io/state-dict.js";
export { saveModel, loadSavedModel, readModelMeta, type SavedModel, type Preprocess } from "./models/saved.js";

// diffusion
export { GaussianDiffusion } from "./diffusion/gaussian.js";
export { sample, type SampleOptions } from "./diffusion/samplers.js";
export { trainingLosses } from "./diffusion/losses.js";

// distillation (Algorithm 1)
export { runDistill, type DistillConfig, type DistillEvent, type Manifest } from "./distill/run.js";
export { loadModels, loadDiT, type LoadedModels } from "./distill/models.js";
export { selectCandidates, scoreCandidates, STRATEGIES, type Strategy } from "./distill/select.js";
export { refineLatents, perImageObjective, type RefineOptions } from "./distill/refine.js";
export { presetClasses, recipeDefaults, PRESETS, type PresetName } from "./distill/presets.js";

// data
export {
  loadFashionMnist,
  loadImageFolder,
  loadDataSpec,
  splitTrainVal,
  sampleRandomPerClass,
  type Dataset,
} from "./io/datasets/index.js";
export { encodePng, decodePng } from "./io/png.js";
