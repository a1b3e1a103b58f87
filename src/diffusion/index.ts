// Gaussian diffusion: schedules and respacing, q_sample / posterior / p_mean_variance, training losses, and the
// DDPM / DDIM sampling loops with classifier-free guidance.
export {
  linearBetas,
  spaceTimesteps,
  respacedBetas,
  diffusionTables,
  roundHalfEven,
  type DiffusionTables,
} from "./schedule.js";
export {
  GaussianDiffusion,
  timestepIndices,
  type DiffusionOptions,
  type VarianceType,
  type Timesteps,
  type PMeanVariance,
  type PosteriorMeanVariance,
} from "./gaussian.js";
export { type DiffusionModel, cfgForward } from "./model.js";
export {
  trainingLosses,
  vbTermsBpd,
  normalKl,
  discretizedGaussianLogLikelihood,
  approxStandardNormalCdf,
  meanFlat,
  type TrainingLosses,
  type TrainingLossOptions,
} from "./losses.js";
export { sample, type SampleOptions, type StepProgress } from "./samplers.js";
