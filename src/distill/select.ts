// Stage 1b of Algorithm 1, objective-guided selection: from a class's pool of m x IPC candidates, keep IPC of them
// using the selector's softmax probabilities (paper Section 3.2 and 3.4).
//
//   confident        correct predictions, most confident (probability of the class) first    (paper default, low IPC)
//   least-confident  correct predictions, least confident first                               (paper, high IPC)
//   correct          correct predictions in a random order
//   random           any candidates in a random order
//   el2n             lowest EL2N score first over all candidates, EL2N = || softmax(p) - onehot(c) ||_2 (Paul et al.)
//   auto             confident below `autoIpcThreshold` images per class, least-confident from it on (Section 3.4)
//
// When fewer than IPC candidates are correct the rest is filled from the incorrect ones: at random (the paper: "we
// supplement ... by randomly selecting from the remaining images") or, with fill "ordered" (the released code), in the
// strategy's own order. The confidence orders rank by the probability of the class (the paper's reading), or, with
// rankBy "max" (the released code), by the largest probability, which for an incorrect candidate is that of the
// class it was taken for (for a correct one the two are the same).

import { shuffled } from "../util/seed.js";

export const STRATEGIES = ["confident", "least-confident", "correct", "random", "el2n", "auto"] as const;
export type Strategy = (typeof STRATEGIES)[number];
export type FillRule = "random" | "ordered";

export interface Candidate {
  /** Index in the class's pool. */
  index: number;
  /** The selector's argmax class. */
  prediction: number;
  /** Softmax probability of the conditioned class. */
  confidence: number;
  /** The largest softmax probability (that of `prediction`). */
  maxConfidence: number;
  /** EL2N score of the candidate. */
  el2n: number;
}

export interface SelectOptions {
  strategy: Strategy;
  ipc: number;
  fill: FillRule;
  /** What the confidence orders rank by: the class's probability (default) or the largest probability. */
  rankBy?: "class" | "max";
  /** For `auto`: IPC at and above which least-confident is used (default 50, the paper's high-IPC setting). */
  autoIpcThreshold?: number;
  /** Deterministic source of randomness in [0, 1) for the random orders. */
  random: () => number;
}

export interface Selection {
  /** Pool indices in selection order. */
  selected: number[];
  /** The strategy actually applied (auto resolved). */
  strategy: Exclude<Strategy, "auto">;
  /** How many of the selected were filled in from incorrect predictions. */
  filled: number;
}

/** Per-candidate records from the selector's class probabilities (rows of `probs`, one per candidate). */
export function scoreCandidates(probs: Float32Array | Float64Array, numClasses: number, target: number): Candidate[] {
  const n = probs.length / numClasses;
  if (!Number.isInteger(n)) throw new Error(`probabilities of length ${probs.length} do not divide into ${numClasses} classes`);
  const out: Candidate[] = [];
  for (let i = 0; i < n; i++) {
    const row = probs.subarray(i * numClasses, (i + 1) * numClasses);
    let arg = 0;
    let sq = 0;
    for (let k = 0; k < numClasses; k++) {
      if (row[k] > row[arg]) arg = k;
      const d = row[k] - (k === target ? 1 : 0);
      sq += d * d;
    }
    out.push({ index: i, prediction: arg, confidence: row[target], maxConfidence: row[arg], el2n: Math.sqrt(sq) });
  }
  return out;
}

export function resolveStrategy(strategy: Strategy, ipc: number, autoIpcThreshold = 50): Exclude<Strategy, "auto"> {
  if (strategy !== "auto") return strategy;
  return ipc >= autoIpcThreshold ? "least-confident" : "confident";
}

export function selectCandidates(cands: readonly Candidate[], target: number, o: SelectOptions): Selection {
  if (o.ipc < 1) throw new Error(`IPC must be at least 1, got ${o.ipc}`);
  if (cands.length < o.ipc) throw new Error(`the pool holds ${cands.length} candidates, fewer than IPC ${o.ipc}`);
  const strategy = resolveStrategy(o.strategy, o.ipc, o.autoIpcThreshold);
  // Ties break by pool index so that the order never depends on the sort implementation.
  const key = o.rankBy === "max" ? (c: Candidate) => c.maxConfidence : (c: Candidate) => c.confidence;
  const byConfidence = (dir: 1 | -1) => (a: Candidate, b: Candidate) => dir * (key(b) - key(a)) || a.index - b.index;
  let order: Candidate[];
  switch (strategy) {
    case "confident":
      order = [...cands].sort(byConfidence(1));
      break;
    case "least-confident":
      order = [...cands].sort(byConfidence(-1));
      break;
    case "el2n":
      order = [...cands].sort((a, b) => a.el2n - b.el2n || a.index - b.index);
      break;
    case "correct":
    case "random":
      order = shuffled(cands, o.random);
      break;
  }
  // random and el2n rank every candidate; the others keep correct predictions first.
  if (strategy === "random" || strategy === "el2n") return { selected: order.slice(0, o.ipc).map((c) => c.index), strategy, filled: 0 };
  const correct = order.filter((c) => c.prediction === target);
  const chosen = correct.slice(0, o.ipc);
  const missing = o.ipc - chosen.length;
  if (missing > 0) {
    const rest = order.filter((c) => c.prediction !== target);
    chosen.push(...(o.fill === "ordered" ? rest : shuffled(rest, o.random)).slice(0, missing));
  }
  return { selected: chosen.map((c) => c.index), strategy, filled: Math.max(0, missing) };
}
