// DiffFit-style scales ("gammas") of a Minimax-fine-tuned DiT (docs/minimax.md): which blocks carry them, their
// checkpoint keys and shapes, and the parameter subset that Minimax fine-tuning trains. Names only (no tensors), so
// architecture recognition can use it without building a model.
import type { Tensor } from "../torch/index.js";
import type { Model } from "./module.js";

/** Minimax places the gammas in the leading half of the blocks (14 of DiT-XL/2's 28). */
export const minimaxGammaBlocks = (depth: number): number => Math.floor(depth / 2);

/** The four gamma keys of block i with their shapes (H = hidden size), in the order the block uses them. */
export function gammaKeys(block: number, hidden: number): [string, number[]][] {
  const b = `blocks.${block}`;
  return [
    [`${b}.attn.gamma1`, [3 * hidden]],
    [`${b}.attn.gamma2`, [hidden]],
    [`${b}.gamma1`, [hidden]],
    [`${b}.gamma2`, [hidden]],
  ];
}

/** Any gamma key of any block: "blocks.3.gamma1" -> 3. */
export function gammaKeyBlock(key: string): number | null {
  const m = /^blocks\.(\d+)\.(?:attn\.)?gamma[12]$/.exec(key);
  return m ? Number(m[1]) : null;
}

/**
 * The parameters Minimax fine-tuning trains: every name containing "bias", "norm", "gamma" or "y_embed" (DiT's
 * LayerNorms have no weights, so in practice all biases, the gammas and the label table); the rest stays frozen.
 */
export const isDiffFitTrainable = (name: string): boolean => /bias|norm|gamma|y_embed/.test(name);

/** The model's trainable subset under that rule, by state-dict key. */
export function diffFitParameters(model: Model): Map<string, Tensor> {
  return new Map([...model.namedParameters()].filter(([k]) => isDiffFitTrainable(k)));
}
