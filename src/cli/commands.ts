// The commands and their one-line summaries, in the order `cao2 --help` lists them (main.ts); each command's own
// --help opens with the same line. Nothing here loads a command's code.
export const SUMMARIES = {
  inspect: "List a checkpoint's tensors and guess its architecture",
  convert: "Rewrite a checkpoint as safetensors, optionally in float16/bfloat16/float32",
  baseline: "Write a baseline training set: random-real = IPC random real images per class (ImageFolder of PNGs)",
  evaluate: "Train students on a distilled set (hard- or soft-label protocol); test top-1 mean ± std",
  distill: "Distil a data set with CaO2 (pool -> select -> refine -> write)",
  sample: "Generate class-conditional samples (PNG grid) and optionally score them with a selector",
  accuracy: "Top-1 accuracy of a classifier on a labelled data set (optionally on autoencoder reconstructions)",
  figure: "Figure 4 of the paper: selected images before and after refinement and their amplified difference",
  report: "An HTML report of a distillation run and its evaluation records (opens offline in a browser)",
  train: "Train the small models of the embedded default (classifier, autoencoder, DiT) or fine-tune a DiT (Minimax)",
} as const;

export type CommandName = keyof typeof SUMMARIES;
