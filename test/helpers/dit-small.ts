// The small random DiT of tools/reference/models_dit.py (config and weights from its fixtures), used by the model and
// the diffusion parity tests.
import { readFileSync } from "node:fs";
import { loadSafetensors } from "../../src/io/safetensors.js";
import { createDiT, type DiT, type DiTConfig } from "../../src/models/dit.js";
import type { Tensor } from "../../src/torch/index.js";
import { fixture } from "./fixtures.js";

const ref = JSON.parse(readFileSync(fixture("models", "dit_small.json"), "utf8"));
export const SMALL_DIT: DiTConfig = {
  inputSize: ref.input_size,
  patchSize: ref.patch_size,
  inChannels: ref.in_channels,
  hiddenSize: ref.hidden_size,
  depth: ref.depth,
  numHeads: ref.num_heads,
  mlpRatio: ref.mlp_ratio,
  classDropoutProb: ref.class_dropout_prob,
  numClasses: ref.num_classes,
  learnSigma: ref.learn_sigma,
  gammaBlocks: 0,
};

export const smallDiTWeights = () => loadSafetensors(fixture("models", "dit_small.safetensors"));

/** The reference's small model with its weights, in eval mode. */
export function smallDiT(sd: Map<string, Tensor> = smallDiTWeights()): DiT {
  const m = createDiT(SMALL_DIT, {}, { init: false });
  m.loadStateDict(sd);
  return m.eval();
}
