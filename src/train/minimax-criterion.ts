// The Minimax criterion (Gu et al., CVPR 2024, "Efficient Dataset Distillation via Minimax Diffusion"): two terms
// that push a diffusion model's predicted x_0 of each class towards the real data (representativeness) and away
// from its own recent predictions (diversity), against two per-class FIFO memories. docs/minimax.md describes the
// recipe that uses it (src/train/minimax.ts).
//
// For each class c present in the batch whose memory is not empty, with P the batch's pseudo embeddings of class c
// (flattened rows) and cos the cosine-similarity matrix:
//   L_pos(c) = 1 - min_ij cos(P_i, Real_j)     the least similar pair is pulled up
//   L_neg(c) =     max_ij cos(P_i, Pseudo_j)   the most similar pair is pushed down
// each weighted by its lambda and divided by the number of classes in the batch (those with an empty memory count
// too). The memories are updated after the loss, with the batch's items of each class.
import { InputError } from "../errors.js";
import {
  cat,
  disposeAll,
  fromArray,
  keep,
  matmul,
  noGrad,
  outer,
  rsub,
  type Tensor,
  tidy,
  zeros,
} from "../torch/index.js";

export interface MinimaxWeights {
  /** Weight of the representativeness term (the paper's lambda_pos, 0.002). */
  lambdaPos: number;
  /** Weight of the diversity term (lambda_neg, 0.008). */
  lambdaNeg: number;
}

/** cos(a_i, b_j) for the rows of a [n, D] and b [m, D]: (a b^T) / (|a_i| |b_j|), no epsilon (as the reference). */
export function cosineSimilarity(a: Tensor, b: Tensor): Tensor {
  return tidy(() => matmul(a, b.transpose(0, 1)).div(outer(a.norm(2, 1), b.norm(2, 1))));
}

/**
 * Per class, the last `capacity` real latents and the last `capacity` (detached) pseudo embeddings seen, as
 * flattened rows [k, D] in the order they were seen. Saved with the training state (`stateDict`).
 */
export class ClassMemories {
  private readonly real = new Map<number, Tensor>();
  private readonly pseudo = new Map<number, Tensor>();

  constructor(
    readonly capacity: number,
    /** Where restored memories live (the model's device). */
    readonly device = "cpu",
  ) {
    if (!(Number.isInteger(capacity) && capacity >= 1))
      throw new InputError(`memory size must be a positive integer, got ${capacity}`);
  }

  /** Rows held for class c (0 before its first update). */
  size(c: number): number {
    return this.real.get(c)?.size(0) ?? 0;
  }

  realOf(c: number): Tensor | undefined {
    return this.real.get(c);
  }

  pseudoOf(c: number): Tensor | undefined {
    return this.pseudo.get(c);
  }

  /**
   * Appends the batch's items of each class (batch order) to that class's memories, dropping the oldest beyond the
   * capacity. `real` and `pseudo` are [B, ...]; they are detached and copied.
   */
  update(real: Tensor, pseudo: Tensor, labels: readonly number[]): void {
    noGrad(() => {
      for (const [c, rows] of byClass(labels)) {
        this.append(this.real, c, real, rows);
        this.append(this.pseudo, c, pseudo, rows);
      }
    });
  }

  private append(store: Map<number, Tensor>, c: number, items: Tensor, rows: number[]): void {
    const old = store.get(c);
    const next = tidy(() => {
      const picked = items.detach().indexSelect(0, indexTensor(rows, items.device)).flatten(1);
      const all = old ? cat([old, picked], 0) : picked;
      const n = all.size(0);
      return all.narrow(0, Math.max(0, n - this.capacity), Math.min(n, this.capacity)).clone();
    });
    store.set(c, keep(next));
    old?.dispose();
  }

  /** "real.<class>" and "pseudo.<class>" for every class seen. */
  stateDict(): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    for (const [c, t] of this.real) out.set(`real.${c}`, t);
    for (const [c, t] of this.pseudo) out.set(`pseudo.${c}`, t);
    return out;
  }

  /** Replaces the contents with a saved state (copies, on the memories' device). */
  loadStateDict(sd: Map<string, Tensor>): void {
    this.clear();
    for (const [k, t] of sd) {
      const m = /^(real|pseudo)\.(\d+)$/.exec(k);
      if (!m) throw new InputError(`class memories: unexpected entry '${k}'`);
      if (t.size(0) > this.capacity)
        throw new InputError(
          `class memories: '${k}' holds ${t.size(0)} rows, more than the memory size ${this.capacity}`,
        );
      (m[1] === "real" ? this.real : this.pseudo).set(Number(m[2]), keep(tidy(() => t.to(this.device).clone())));
    }
    for (const c of new Set([...this.real.keys(), ...this.pseudo.keys()])) {
      if (this.size(c) !== (this.pseudo.get(c)?.size(0) ?? 0))
        throw new InputError(
          `class memories: class ${c} has ${this.size(c)} real and ${this.pseudo.get(c)?.size(0) ?? 0} pseudo rows`,
        );
    }
  }

  clear(): void {
    disposeAll([...this.real.values(), ...this.pseudo.values()]);
    this.real.clear();
    this.pseudo.clear();
  }
}

export interface MinimaxTerms {
  /** sum over classes of lambda_pos L_pos(c) / n_classes (a scalar tensor; 0 when no class has a memory yet). */
  pos: Tensor;
  /** sum over classes of lambda_neg L_neg(c) / n_classes. */
  neg: Tensor;
  /** Classes that contributed (their memory was not empty). */
  classes: number[];
}

/** The two terms for a batch of pseudo embeddings [B, ...] with class labels, against the memories as they are. */
export function minimaxTerms(
  pseudo: Tensor,
  labels: readonly number[],
  memories: ClassMemories,
  w: MinimaxWeights,
): MinimaxTerms {
  if (pseudo.size(0) !== labels.length)
    throw new InputError(`minimax terms: ${labels.length} labels for ${pseudo.size(0)} pseudo embeddings`);
  return tidy(() => {
    const groups = byClass(labels);
    let pos = zeros([], { device: pseudo.device });
    let neg = zeros([], { device: pseudo.device });
    const classes: number[] = [];
    for (const [c, rows] of groups) {
      const real = memories.realOf(c);
      const past = memories.pseudoOf(c);
      if (!real || !past) continue;
      const p = pseudo.indexSelect(0, indexTensor(rows, pseudo.device)).flatten(1);
      pos = pos.add(rsub(1, cosineSimilarity(p, real).min()).mul(w.lambdaPos).div(groups.size));
      neg = neg.add(cosineSimilarity(p, past).max().mul(w.lambdaNeg).div(groups.size));
      classes.push(c);
    }
    return { pos, neg, classes };
  });
}

/** Batch rows of each class present, classes ascending, rows in batch order. */
function byClass(labels: readonly number[]): Map<number, number[]> {
  const out = new Map<number, number[]>();
  for (const c of [...new Set(labels)].sort((a, b) => a - b)) out.set(c, []);
  labels.forEach((c, i) => out.get(c)!.push(i));
  return out;
}

const indexTensor = (rows: readonly number[], device: string) =>
  fromArray(BigInt64Array.from(rows, BigInt), [rows.length], { device });
