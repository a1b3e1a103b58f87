// The Minimax criterion on tiny tensors: each term against values worked out by hand, and the per-class FIFO memories.
import assert from "node:assert/strict";
import { test } from "node:test";
import { ClassMemories, cosineSimilarity, minimaxTerms } from "../../src/train/minimax-criterion.js";
import * as torch from "../../src/torch/index.js";

const t2 = (rows: number[][]) => torch.tensor(rows, { dtype: "float32" });
const close = (a: number, b: number, what: string) =>
  assert.ok(Math.abs(a - b) <= 1e-6 * Math.max(1, Math.abs(b)), `${what}: ${a} vs ${b}`);

test("cosine similarity of every pair of rows", () => {
  const cos = cosineSimilarity(
    t2([
      [1, 0],
      [1, 1],
    ]),
    t2([
      [0, 1],
      [3, 4],
    ]),
  ).toNumbers();
  // [1,0].[0,1] = 0; [1,0].[3,4]/5 = 0.6; [1,1].[0,1]/sqrt2; [1,1].[3,4]/(5 sqrt2) = 7/(5 sqrt2)
  [0, 0.6, 1 / Math.SQRT2, 7 / (5 * Math.SQRT2)].forEach((v, i) => close(cos[i], v, `cos[${i}]`));
});

test("L_pos = 1 - the least similar pair, L_neg = the most similar pair, each weighted and divided by the classes in the batch", () => {
  const mem = new ClassMemories(4);
  // class 0 has seen real items [1,0], [0,1] and pseudo embeddings [1,1], [1,-1]
  mem.update(
    t2([
      [1, 0],
      [0, 1],
    ]),
    t2([
      [1, 1],
      [1, -1],
    ]),
    [0, 0],
  );
  // the batch: one item of class 0 and one of class 1 (no memory yet: skipped, but it counts in n_classes = 2)
  const w = { lambdaPos: 0.002, lambdaNeg: 0.008 };
  const terms = minimaxTerms(
    t2([
      [3, 4],
      [1, 0],
    ]),
    [0, 1],
    mem,
    w,
  );
  // cos([3,4], real) = 0.6, 0.8 -> L_pos = 1 - 0.6 = 0.4;
  // cos([3,4], pseudo) = 7/(5 sqrt2), -1/(5 sqrt2) -> L_neg = 7/(5 sqrt2)
  close(terms.pos.item(), (0.002 * 0.4) / 2, "pos");
  close(terms.neg.item(), (0.008 * (7 / (5 * Math.SQRT2))) / 2, "neg");
  assert.deepEqual(terms.classes, [0]);
  // several batch items of a class: min and max run over every (item, memory row) pair
  const two = minimaxTerms(
    t2([
      [3, 4],
      [0, 1],
      [5, 5],
    ]),
    [0, 0, 0],
    mem,
    { lambdaPos: 1, lambdaNeg: 1 },
  );
  // pairs with real: [0,1] vs [1,0] gives cos 0 (the least); pairs with pseudo: [5,5] vs [1,1] gives 1 (the most)
  close(two.pos.item(), 1, "pos, three items");
  close(two.neg.item(), 1, "neg, three items");
});

test("no class with a memory: both terms are zero", () => {
  const terms = minimaxTerms(t2([[3, 4]]), [5], new ClassMemories(2), { lambdaPos: 1, lambdaNeg: 1 });
  assert.equal(terms.pos.item(), 0);
  assert.equal(terms.neg.item(), 0);
  assert.deepEqual(terms.classes, []);
});

test("the terms carry gradients to the pseudo embeddings through the selected pair only", () => {
  const mem = new ClassMemories(4);
  mem.update(
    t2([
      [1, 0],
      [0, 1],
    ]),
    t2([
      [1, 1],
      [1, -1],
    ]),
    [0, 0],
  );
  const p = t2([[3, 4]]).requiresGrad_(true);
  minimaxTerms(p, [0], mem, { lambdaPos: 1, lambdaNeg: 0 }).pos.backward();
  // d/dp (1 - cos(p, [1,0])) = -(e1/|p| - p p_x/|p|^3) = -([1,0]/5 - [3,4]*3/125)
  const g = p.grad!.toNumbers();
  close(g[0], -(1 / 5 - 9 / 125), "grad x");
  close(g[1], -(0 - 12 / 125), "grad y");
});

test("memories: FIFO per class of the given capacity, in batch order, oldest dropped first", () => {
  const mem = new ClassMemories(3);
  const rows = (k: number, base: number) => t2(Array.from({ length: k }, (_, i) => [base + i, 0]));
  mem.update(rows(3, 0), rows(3, 100), [0, 1, 0]); // class 0: items 0, 2; class 1: item 1
  assert.deepEqual(mem.realOf(0)!.toNumbers(), [0, 0, 2, 0]);
  assert.deepEqual(mem.pseudoOf(1)!.toNumbers(), [101, 0]);
  mem.update(rows(2, 10), rows(2, 110), [0, 0]); // class 0 holds 4 > 3: item 0 leaves
  assert.deepEqual(mem.realOf(0)!.toNumbers(), [2, 0, 10, 0, 11, 0]);
  assert.deepEqual(mem.pseudoOf(0)!.toNumbers(), [102, 0, 110, 0, 111, 0]);
  assert.equal(mem.size(0), 3);
  assert.equal(mem.size(1), 1);
  assert.equal(mem.size(2), 0);
  assert.equal(mem.realOf(2), undefined);
  mem.update(rows(5, 20), rows(5, 120), [0, 0, 0, 0, 0]); // more than the capacity at once: the last 3
  assert.deepEqual(mem.realOf(0)!.toNumbers(), [22, 0, 23, 0, 24, 0]);
  // items of any shape are stored flattened, detached
  const x = torch.ones([2, 2, 1, 2]).requiresGrad_(true);
  mem.update(x.mul(2), x.mul(3), [4, 4]);
  assert.deepEqual(mem.realOf(4)!.shape, [2, 4]);
  assert.equal(mem.pseudoOf(4)!.requiresGrad, false);
});

test("memories: state dict round trip, and a saved state that does not fit is refused", () => {
  const mem = new ClassMemories(3);
  mem.update(
    t2([
      [1, 2],
      [3, 4],
      [5, 6],
    ]),
    t2([
      [7, 8],
      [9, 10],
      [11, 12],
    ]),
    [2, 0, 2],
  );
  const sd = mem.stateDict();
  assert.deepEqual([...sd.keys()].sort(), ["pseudo.0", "pseudo.2", "real.0", "real.2"]);
  const back = new ClassMemories(3);
  back.loadStateDict(sd);
  for (const [k, v] of back.stateDict()) assert.deepEqual(v.toNumbers(), sd.get(k)!.toNumbers(), k);
  assert.throws(() => new ClassMemories(1).loadStateDict(sd), /'real.2' holds 2 rows, more than the memory size 1/);
  assert.throws(() => back.loadStateDict(new Map([["real.0", t2([[1, 2]])]])), /class 0 has 1 real and 0 pseudo rows/);
  assert.throws(() => back.loadStateDict(new Map([["other", t2([[1, 2]])]])), /unexpected entry 'other'/);
  assert.throws(() => new ClassMemories(0), /memory size must be a positive integer/);
});
