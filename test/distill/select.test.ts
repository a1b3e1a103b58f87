import assert from "node:assert/strict";
import { test } from "node:test";
import {
  type Candidate,
  resolveStrategy,
  scoreCandidates,
  selectCandidates,
  type SelectOptions,
} from "../../src/distill/select.js";
import { randomSource } from "../../src/util/seed.js";

// A stub selector: rows of class probabilities for 8 candidates of class 1 (3 classes).
const PROBS = new Float32Array([
  0.1,
  0.8,
  0.1, // 0 correct, conf 0.8
  0.6,
  0.3,
  0.1, // 1 wrong
  0.05,
  0.9,
  0.05, // 2 correct, 0.9
  0.2,
  0.5,
  0.3, // 3 correct, 0.5
  0.1,
  0.2,
  0.7, // 4 wrong
  0.3,
  0.4,
  0.3, // 5 correct, 0.4
  0.45,
  0.1,
  0.45, // 6 wrong (tie between 0 and 2 -> argmax 0)
  0.0,
  0.99,
  0.01, // 7 correct, 0.99
]);
const cands = scoreCandidates(PROBS, 3, 1);
const opts = (o: Partial<SelectOptions>): SelectOptions => ({
  strategy: "confident",
  ipc: 3,
  fill: "random",
  random: randomSource(1),
  ...o,
});

test("scores record prediction, class confidence and EL2N of every candidate", () => {
  assert.equal(cands.length, 8);
  assert.deepEqual(
    cands.map((c) => c.prediction),
    [1, 0, 1, 1, 2, 1, 0, 1],
  );
  assert.ok(Math.abs(cands[2].confidence - 0.9) < 1e-6);
  // EL2N of candidate 0: sqrt(0.1^2 + 0.2^2 + 0.1^2)
  assert.ok(Math.abs(cands[0].el2n - Math.sqrt(0.06)) < 1e-6);
});

test("confident keeps the most confident correct candidates", () => {
  assert.deepEqual(selectCandidates(cands, 1, opts({})).selected, [7, 2, 0]);
});

test("least-confident keeps the least confident correct candidates", () => {
  assert.deepEqual(selectCandidates(cands, 1, opts({ strategy: "least-confident" })).selected, [5, 3, 0]);
});

test("correct keeps only correct candidates, in a seeded random order", () => {
  const a = selectCandidates(cands, 1, opts({ strategy: "correct", ipc: 5 }));
  assert.deepEqual([...a.selected].sort(), [0, 2, 3, 5, 7]);
  const b = selectCandidates(cands, 1, opts({ strategy: "correct", ipc: 5 }));
  assert.deepEqual(a.selected, b.selected);
  assert.equal(a.filled, 0);
});

test("random ignores correctness and is reproducible under a seed", () => {
  const a = selectCandidates(cands, 1, opts({ strategy: "random", ipc: 8 }));
  assert.deepEqual([...a.selected].sort(), [0, 1, 2, 3, 4, 5, 6, 7]);
  const orders = new Set(
    [1, 2, 3, 4, 5].map((s) =>
      selectCandidates(cands, 1, opts({ strategy: "random", ipc: 8, random: randomSource(s) })).selected.join(),
    ),
  );
  assert.ok(orders.size > 1, "different seeds give different orders");
});

test("el2n takes the lowest scores over all candidates", () => {
  const sel = selectCandidates(cands, 1, opts({ strategy: "el2n", ipc: 2 }));
  assert.deepEqual(sel.selected, [7, 2]);
});

test("fill-up: with too few correct candidates the rest comes from incorrect ones", () => {
  const ordered = selectCandidates(cands, 1, opts({ ipc: 7, fill: "ordered" }));
  // correct by confidence, then incorrect by their (low) confidence in class 1: 1 (0.3), 4 (0.2) — 6 (0.1) left out.
  assert.deepEqual(ordered.selected, [7, 2, 0, 3, 5, 1, 4]);
  assert.equal(ordered.filled, 2);
  const random = selectCandidates(cands, 1, opts({ ipc: 7, fill: "random" }));
  assert.deepEqual(random.selected.slice(0, 5), [7, 2, 0, 3, 5]);
  assert.equal(new Set(random.selected.slice(5).map((i) => [1, 4, 6].includes(i))).has(false), false);
});

test("rankBy max (the released code): incorrect candidates are ranked by their largest probability", () => {
  // Wrong ones: 1 (max 0.6, class 0.3), 4 (max 0.7, class 0.2), 6 (max 0.45, class 0.1).
  assert.ok(Math.abs(cands[4].maxConfidence - 0.7) < 1e-6);
  const conf = selectCandidates(cands, 1, opts({ ipc: 7, fill: "ordered", rankBy: "max" }));
  assert.deepEqual(conf.selected, [7, 2, 0, 3, 5, 4, 1]);
  const least = selectCandidates(
    cands,
    1,
    opts({ strategy: "least-confident", ipc: 7, fill: "ordered", rankBy: "max" }),
  );
  assert.deepEqual(least.selected, [5, 3, 0, 2, 7, 6, 1]);
  // For correct candidates the largest probability is the class's: the same order as rankBy "class".
  assert.deepEqual(selectCandidates(cands, 1, opts({ ipc: 5, rankBy: "max" })).selected, [7, 2, 0, 3, 5]);
});

test("auto: most confident at low IPC, least confident at high IPC", () => {
  assert.equal(resolveStrategy("auto", 1), "confident");
  assert.equal(resolveStrategy("auto", 10), "confident");
  assert.equal(resolveStrategy("auto", 50), "least-confident");
  assert.equal(resolveStrategy("auto", 10, 10), "least-confident");
  assert.equal(selectCandidates(cands, 1, opts({ strategy: "auto", ipc: 3 })).strategy, "confident");
});

test("bad requests are refused", () => {
  assert.throws(() => selectCandidates(cands, 1, opts({ ipc: 0 })), /IPC must be at least 1/);
  assert.throws(() => selectCandidates(cands.slice(0, 2) as Candidate[], 1, opts({ ipc: 3 })), /fewer than IPC/);
});

// Features for the representative strategy: 2-D unit vectors. The correct candidates form two groups, 0, 2, 3 at 0,
// 10, 20 degrees and 5, 7 at 170, 180; the wrong ones (1, 4, 6) sit near the first group's centre and must not count.
const unit = (deg: number) => [Math.cos((deg * Math.PI) / 180), Math.sin((deg * Math.PI) / 180)];
const FEATS = { data: Float32Array.from([0, 9, 10, 20, 11, 170, 12, 180].flatMap(unit)), dim: 2 };

test("representative: one candidate per k-means cluster of the correct ones, nearest its centre, largest cluster first", () => {
  for (const seed of [1, 2, 3, 4]) {
    const s = selectCandidates(
      cands,
      1,
      opts({ strategy: "representative", ipc: 2, features: FEATS, random: randomSource(seed) }),
    );
    // {0, 2, 3}: centre at 10 degrees -> 2; {5, 7}: both 5 degrees from the centre -> the lower pool index, 5
    assert.deepEqual(s.selected, [2, 5], `seed ${seed}`);
    assert.equal(s.filled, 0);
  }
});

test("representative: with no more correct candidates than IPC all of them are kept, then the fill rule", () => {
  const s = selectCandidates(cands, 1, opts({ strategy: "representative", ipc: 6, features: FEATS }));
  assert.deepEqual(s.selected.slice(0, 5).sort(), [0, 2, 3, 5, 7]);
  assert.equal(s.filled, 1);
  assert.ok([1, 4, 6].includes(s.selected[5]));
  assert.throws(() => selectCandidates(cands, 1, opts({ strategy: "representative" })), /features/);
});

// Features for the mmd strategy: 1-D positions. The real images sit at 0 and 10 (two modes); the correct candidates
// are at 1 (pool index 0), 2 (2), 3 (3), 9 (5) and 5 (7); the wrong ones (1, 4, 6) sit on a mode and must not count.
const POSITIONS = [1, 10, 2, 3, 0, 9, 10, 5];
const MMD_FEATS = { data: Float32Array.from(POSITIONS), dim: 1 };
const REFERENCE = Float32Array.from([0, 0, 0, 10, 10, 10]);

test("mmd: keeps a sample near each mode of the real images, not two of one mode or the one in the middle", () => {
  const s = selectCandidates(cands, 1, opts({ strategy: "mmd", ipc: 2, features: MMD_FEATS, reference: REFERENCE }));
  // 1 and 9 are equally close to the data (the lower pool index first); 2 or 3 would repeat the first mode.
  assert.deepEqual(s.selected, [0, 5]);
  assert.equal(s.filled, 0);
  // confident keeps the middle one (7, at 5) and two of the same mode
  assert.deepEqual(selectCandidates(cands, 1, opts({ ipc: 2 })).selected, [7, 2]);
});

/** MMD^2 between the positions of `set` and the reference, from its definition (bandwidth h). */
function mmd2(set: number[], ref: number[], h: number): number {
  const k = (x: number, y: number) => Math.exp(-((x - y) ** 2) / h);
  const mean = (xs: number[], ys: number[]) =>
    xs.reduce((s, x) => s + ys.reduce((t, y) => t + k(x, y), 0), 0) / (xs.length * ys.length);
  return mean(set, set) - 2 * mean(set, ref) + mean(ref, ref);
}

test("mmd: every pick minimises the MMD of the kept set to the reference, computed from scratch", () => {
  const r = randomSource(5);
  const positions = Array.from({ length: 8 }, () => r() * 20 - 5);
  const ref = Array.from({ length: 7 }, () => r() * 12);
  const correct = cands.filter((c) => c.prediction === 1).map((c) => c.index);
  // The median heuristic over the correct candidates' squared distances to the reference.
  const d2 = correct
    .flatMap((i) => ref.map((y) => (Math.fround(positions[i]) - Math.fround(y)) ** 2))
    .sort((a, b) => a - b);
  const h = d2[Math.floor(d2.length / 2)];
  const kept: number[] = [];
  while (kept.length < 4) {
    const rest = correct.filter((i) => !kept.includes(i));
    const score = (i: number) =>
      mmd2(
        [...kept, i].map((j) => Math.fround(positions[j])),
        ref.map(Math.fround),
        h,
      );
    kept.push(rest.reduce((a, b) => (score(b) < score(a) - 1e-12 ? b : a)));
  }
  const s = selectCandidates(
    cands,
    1,
    opts({
      strategy: "mmd",
      ipc: 4,
      features: { data: Float32Array.from(positions), dim: 1 },
      reference: Float32Array.from(ref),
    }),
  );
  assert.deepEqual(s.selected, kept);
});

test("mmd: with no more correct candidates than IPC all of them are kept, then the fill rule; it needs both feature sets", () => {
  const s = selectCandidates(cands, 1, opts({ strategy: "mmd", ipc: 6, features: MMD_FEATS, reference: REFERENCE }));
  assert.deepEqual(s.selected.slice(0, 5).sort(), [0, 2, 3, 5, 7]);
  assert.equal(s.filled, 1);
  assert.throws(() => selectCandidates(cands, 1, opts({ strategy: "mmd", features: MMD_FEATS })), /reference/);
  assert.throws(() => selectCandidates(cands, 1, opts({ strategy: "mmd", reference: REFERENCE })), /features/);
});
