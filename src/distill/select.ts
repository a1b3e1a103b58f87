// Stage 1b of Algorithm 1, objective-guided selection: from a class's pool of m x IPC candidates, keep IPC of them
// using the selector's softmax probabilities (paper Section 3.2 and 3.4).
//
//   confident        correct predictions, most confident (probability of the class) first    (paper default, low IPC)
//   least-confident  correct predictions, least confident first                               (paper, high IPC)
//   correct          correct predictions in a random order
//   random           any candidates in a random order
//   el2n             lowest EL2N score first over all candidates, EL2N = || softmax(p) - onehot(c) ||_2 (Paul et al.)
//   representative   correct predictions grouped into IPC clusters by k-means on the selector's penultimate features
//                    (cosine); the candidate nearest each cluster's centre is kept, largest cluster first. Not in the
//                    paper: it keeps the pool's spread (diversity) where the confidence orders keep its most typical
//                    part, in the spirit of prototype selection (D4M) and Minimax's representativeness + diversity.
//   mmd              correct predictions chosen one at a time so that the kept set's distribution matches the class's
//                    real training images (a reference sample): each step adds the candidate that most lowers the
//                    maximum mean discrepancy under a Gaussian kernel on pixels (kernelHerding below). Not in the
//                    paper: it corrects the generator's narrow spread toward the data's, where the confidence orders
//                    keep the most typical samples; chosen for the Fashion-MNIST default on its validation split
//                    (docs/results/validation.md).
//   auto             confident below `autoIpcThreshold` images per class, least-confident from it on (Section 3.4)
//
// When fewer than IPC candidates are correct the rest is filled from the incorrect ones: at random (the paper: "we
// supplement ... by randomly selecting from the remaining images") or, with fill "ordered" (the released code), in the
// strategy's own order. The confidence orders rank by the probability of the class (the paper's reading), or, with
// rankBy "max" (the released code), by the largest probability, which for an incorrect candidate is that of the
// class it was taken for (for a correct one the two are the same).

import { shuffled } from "../util/seed.js";

export const STRATEGIES = [
  "confident",
  "least-confident",
  "correct",
  "random",
  "el2n",
  "representative",
  "mmd",
  "auto",
] as const;
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
  /** Deterministic source of randomness in [0, 1) for the random orders and the k-means initialisation. */
  random: () => number;
  /** For `representative` (L2-normalised selector features) and `mmd` (pixels): row-major [candidates x dim]. */
  features?: { data: Float32Array; dim: number };
  /** For `mmd`: the class's real images in the space of `features`, row-major [images x dim]. */
  reference?: Float32Array;
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
  if (!Number.isInteger(n))
    throw new Error(`probabilities of length ${probs.length} do not divide into ${numClasses} classes`);
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

/** `auto` switches from confident to least-confident at this IPC by default (the paper's high-IPC setting). */
export const AUTO_IPC_THRESHOLD = 50;

export function resolveStrategy(
  strategy: Strategy,
  ipc: number,
  autoIpcThreshold = AUTO_IPC_THRESHOLD,
): Exclude<Strategy, "auto"> {
  if (strategy !== "auto") return strategy;
  return ipc >= autoIpcThreshold ? "least-confident" : "confident";
}

export function selectCandidates(cands: readonly Candidate[], target: number, options: SelectOptions): Selection {
  if (options.ipc < 1) throw new Error(`IPC must be at least 1, got ${options.ipc}`);
  if (cands.length < options.ipc)
    throw new Error(`the pool holds ${cands.length} candidates, fewer than IPC ${options.ipc}`);
  const strategy = resolveStrategy(options.strategy, options.ipc, options.autoIpcThreshold);
  // Ties break by pool index so that the order never depends on the sort implementation.
  const key = options.rankBy === "max" ? (c: Candidate) => c.maxConfidence : (c: Candidate) => c.confidence;
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
      order = shuffled(cands, options.random);
      break;
    case "representative":
    case "mmd": {
      if (!options.features) throw new Error(`the ${strategy} strategy needs the candidates' features`);
      if (strategy === "mmd" && !options.reference)
        throw new Error("the mmd strategy needs the real reference images' features");
      const correct = cands.filter((c) => c.prediction === target);
      const picked =
        strategy === "mmd"
          ? kernelHerding(correct, options.features, options.reference!, options.ipc)
          : correct.length <= options.ipc
            ? correct
            : clusterCentres(correct, options.features, options.ipc, options.random);
      const pickedSet = new Set(picked);
      // Below IPC correct candidates, the rest follow in confidence order (the fill rule decides their order).
      order = [...picked, ...[...cands].sort(byConfidence(1)).filter((c) => !pickedSet.has(c))];
      break;
    }
  }
  // random and el2n rank every candidate; the others keep correct predictions first.
  if (strategy === "random" || strategy === "el2n")
    return { selected: order.slice(0, options.ipc).map((c) => c.index), strategy, filled: 0 };
  const correct = order.filter((c) => c.prediction === target);
  const chosen = correct.slice(0, options.ipc);
  const missing = options.ipc - chosen.length;
  if (missing > 0) {
    const rest = order.filter((c) => c.prediction !== target);
    chosen.push(...(options.fill === "ordered" ? rest : shuffled(rest, options.random)).slice(0, missing));
  }
  return { selected: chosen.map((c) => c.index), strategy, filled: Math.max(0, missing) };
}

/**
 * k-means (k = `k`, cosine similarity on L2-normalised rows, k-means++ initialisation from `random`, Lloyd
 * iterations until the assignment is stable or 50 rounds) over the candidates' features; returns, for each cluster,
 * the member most similar to its centre (ties: lower pool index), the largest cluster first (ties: lower pool index).
 */
export function clusterCentres(
  cands: readonly Candidate[],
  features: { data: Float32Array; dim: number },
  k: number,
  random: () => number,
): Candidate[] {
  const n = cands.length;
  const { data, dim } = features;
  const row = (i: number) => data.subarray(cands[i].index * dim, (cands[i].index + 1) * dim);
  const dot = (a: Float32Array | Float64Array, b: Float32Array | Float64Array) => {
    let s = 0;
    for (let d = 0; d < dim; d++) s += a[d] * b[d];
    return s;
  };
  // k-means++: the first centre at random, each next one with probability proportional to its squared distance.
  const centres: Float64Array[] = [Float64Array.from(row(Math.floor(random() * n)))];
  const dist = new Float64Array(n).fill(Infinity);
  while (centres.length < k) {
    const last = centres[centres.length - 1];
    let total = 0;
    for (let i = 0; i < n; i++) {
      dist[i] = Math.min(dist[i], Math.max(0, 2 - 2 * dot(row(i), last)));
      total += dist[i];
    }
    let r = random() * total;
    let next = n - 1;
    for (let i = 0; i < n; i++) {
      r -= dist[i];
      if (r < 0) {
        next = i;
        break;
      }
    }
    centres.push(Float64Array.from(row(next)));
  }
  const assign = new Int32Array(n).fill(-1);
  for (let round = 0; round < 50; round++) {
    let changed = false;
    for (let i = 0; i < n; i++) {
      let best = 0;
      let bestSim = -Infinity;
      centres.forEach((c, j) => {
        const s = dot(row(i), c);
        if (s > bestSim) [best, bestSim] = [j, s];
      });
      if (assign[i] !== best) [assign[i], changed] = [best, true];
    }
    if (!changed) break;
    centres.forEach((c, j) => {
      c.fill(0);
      for (let i = 0; i < n; i++) if (assign[i] === j) row(i).forEach((v, d) => (c[d] += v));
      const norm = Math.hypot(...c) || 1;
      for (let d = 0; d < dim; d++) c[d] /= norm;
    });
  }
  const clusters = centres.map((c, j) => {
    const members = [...assign.keys()].filter((i) => assign[i] === j);
    // Similarities within float32 rounding (1e-6) count as equal and go to the lower pool index.
    const nearest = members.reduce((a, b) => {
      const d = dot(row(b), c) - dot(row(a), c);
      return d > 1e-6 || (d > -1e-6 && cands[b].index < cands[a].index) ? b : a;
    }, members[0]);
    return { size: members.length, nearest };
  });
  return clusters
    .filter((c) => c.size > 0)
    .sort((a, b) => b.size - a.size || cands[a.nearest].index - cands[b.nearest].index)
    .map((c) => cands[c.nearest]);
}

/**
 * Greedy MMD minimisation, kernel herding (Chen, Welling and Smola 2010): picks min(k, candidates) candidates one at a
 * time, each the one that brings the kept set closest to the reference images in maximum mean discrepancy,
 *   MMD^2(S, R) = mean_{s,s' in S} K(s, s') - 2 mean_{s in S, r in R} K(s, r) + const,
 * with the Gaussian kernel K(x, y) = exp(-||x - y||^2 / h) and h the median squared candidate-to-reference distance
 * (the median heuristic). Adding c to the k - 1 kept gives (Kss + 2 sum_{s in S} K(c, s) + 1) / k^2 - 2 (a_S + a(c)) / k,
 * a(c) = mean_r K(c, r): the second term pulls toward where the real images are, the first pushes away from what is
 * already kept. Ties go to the lower pool index. Returns the picks in order.
 */
export function kernelHerding(
  cands: readonly Candidate[],
  features: { data: Float32Array; dim: number },
  reference: Float32Array,
  k: number,
): Candidate[] {
  const { data, dim } = features;
  const n = cands.length;
  const m = reference.length / dim;
  if (!Number.isInteger(m) || m < 1)
    throw new Error(`the reference holds ${reference.length} values, not whole rows of ${dim}`);
  if (n === 0) return [];
  const sqDist = (a: Float32Array, i: number, b: Float32Array, j: number) => {
    let s = 0;
    for (let d = 0, x = i * dim, y = j * dim; d < dim; d++) {
      const v = a[x + d] - b[y + d];
      s += v * v;
    }
    return s;
  };
  const toRef = new Float64Array(n * m);
  cands.forEach((c, i) => {
    for (let j = 0; j < m; j++) toRef[i * m + j] = sqDist(data, c.index, reference, j);
  });
  const h = Float64Array.from(toRef).sort()[Math.floor((n * m) / 2)] || 1;
  const attraction = cands.map((_, i) => {
    let s = 0;
    for (let j = 0; j < m; j++) s += Math.exp(-toRef[i * m + j] / h);
    return s / m;
  });
  const repulsion = new Float64Array(n);
  const taken = new Uint8Array(n);
  const picks: Candidate[] = [];
  let kss = 0;
  let aS = 0;
  while (picks.length < Math.min(k, n)) {
    const size = picks.length + 1;
    let best = -1;
    let bestValue = Infinity;
    for (let i = 0; i < n; i++) {
      if (taken[i]) continue;
      const value = (kss + 2 * repulsion[i] + 1) / (size * size) - (2 * (aS + attraction[i])) / size;
      if (value < bestValue || (value === bestValue && cands[i].index < cands[best].index))
        [best, bestValue] = [i, value];
    }
    taken[best] = 1;
    picks.push(cands[best]);
    kss += 2 * repulsion[best] + 1;
    aS += attraction[best];
    for (let i = 0; i < n; i++)
      if (!taken[i]) repulsion[i] += Math.exp(-sqDist(data, cands[i].index, data, cands[best].index) / h);
  }
  return picks;
}
