// What a DiT checkpoint's keys and shapes say without building a model, shared by architecture recognition
// (io/architecture.ts) and the model (models/dit.ts): the paper's model sizes, and the DiffFit-style scales
// ("gammas") of a Minimax-fine-tuned DiT (docs/minimax.md): which blocks carry them, their keys and shapes.

/** Depth, width and heads of the DiT paper's model sizes (its Table 1). */
export const DIT_SIZES: Readonly<
  Record<"S" | "B" | "L" | "XL", { depth: number; hiddenSize: number; numHeads: number }>
> = {
  S: { depth: 12, hiddenSize: 384, numHeads: 6 },
  B: { depth: 12, hiddenSize: 768, numHeads: 12 },
  L: { depth: 24, hiddenSize: 1024, numHeads: 16 },
  XL: { depth: 28, hiddenSize: 1152, numHeads: 16 },
};

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
