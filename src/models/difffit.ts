// The parameter subset that Minimax fine-tuning of a DiT trains (docs/minimax.md). Which blocks carry the DiffFit
// scales ("gammas") and their checkpoint keys are in io/dit-layout.ts, where checkpoint recognition reads them too.
import type { Tensor } from "../torch/index.js";
import type { Model } from "./module.js";

/**
 * The parameters Minimax fine-tuning trains: every name containing "bias", "norm", "gamma" or "y_embed" (DiT's
 * LayerNorms have no weights, so in practice all biases, the gammas and the label table); the rest stays frozen.
 */
export const isDiffFitTrainable = (name: string): boolean => /bias|norm|gamma|y_embed/.test(name);

/** The model's trainable subset under that rule, by state-dict key. */
export function diffFitParameters(model: Model): Map<string, Tensor> {
  return new Map([...model.namedParameters()].filter(([k]) => isDiffFitTrainable(k)));
}
