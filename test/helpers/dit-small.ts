// The small random DiT of tools/reference/models_dit.py (config and weights from its fixtures), used by the model and
// the diffusion parity tests.
import { readFileSync } from "node:fs";
import { loadSafetensors } from "../../src/io/safetensors.js";
import { createDiT, type DiT, type DiTConfig } from "../../src/models/dit.js";
import type { Tensor } from "../../src/torch/index.js";
import { fixture } from "./fixtures.js";

/** A DiT configuration written by tools/reference/models_dit.py beside its fixture (snake_case, upstream names). */
export function ditConfigFromFixture(ref: Record<string, unknown>): DiTConfig {
  return {
    inputSize: ref.input_size as number,
    patchSize: ref.patch_size as number,
    inChannels: ref.in_channels as number,
    hiddenSize: ref.hidden_size as number,
    depth: ref.depth as number,
    numHeads: ref.num_heads as number,
    mlpRatio: ref.mlp_ratio as number,
    classDropoutProb: ref.class_dropout_prob as number,
    numClasses: ref.num_classes as number,
    learnSigma: ref.learn_sigma as boolean,
    gammaBlocks: ((ref.use_gamma as boolean[] | undefined) ?? []).filter(Boolean).length,
  };
}

export const SMALL_DIT: DiTConfig = ditConfigFromFixture(
  JSON.parse(readFileSync(fixture("models", "dit_small.json"), "utf8")),
);

export const smallDiTWeights = () => loadSafetensors(fixture("models", "dit_small.safetensors"));

/** The reference's small model with its weights, in eval mode. */
export function smallDiT(sd: Map<string, Tensor> = smallDiTWeights()): DiT {
  const m = createDiT(SMALL_DIT, { init: "zeros" });
  m.loadStateDict(sd);
  return m.eval();
}
