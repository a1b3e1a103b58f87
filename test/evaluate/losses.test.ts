// The protocols' losses against plain-JS formulas on fixed logits.
import assert from "node:assert/strict";
import { test } from "node:test";
import { cutmixCrossEntropy, softLabelKl } from "../../src/evaluate/losses.js";
import * as torch from "../../src/torch/index.js";

const LOGITS = [
  [2.0, -1.0, 0.5, 0.0],
  [0.1, 0.2, 3.0, -2.0],
  [-1.5, 1.0, 1.0, 0.25],
];
const TEACHER = [
  [30.0, -10.0, 5.0, 0.0],
  [1.0, 2.0, -3.0, 40.0],
  [-15.0, 10.0, 12.0, 2.5],
];

function logSoftmax(row: number[]): number[] {
  const m = Math.max(...row);
  const lse = m + Math.log(row.reduce((a, v) => a + Math.exp(v - m), 0));
  return row.map((v) => v - lse);
}

const near = (a: number, b: number, what: string) =>
  assert.ok(Math.abs(a - b) <= 1e-6 * Math.max(1, Math.abs(b)), `${what}: ${a} vs ${b}`);

test("CutMix loss = lam * CE(own labels) + (1 - lam) * CE(partner's labels), batch means", () => {
  const y = [0, 2, 1];
  const partner = [2, 0, 1];
  const lam = 0.3;
  const ce = (labels: number[]) => -LOGITS.reduce((a, row, i) => a + logSoftmax(row)[labels[i]], 0) / LOGITS.length;
  const expected = lam * ce(y) + (1 - lam) * ce(partner.map((p) => y[p]));
  const got = cutmixCrossEntropy(
    torch.tensor(LOGITS),
    torch.tensor(y, { dtype: "int64" }),
    torch.tensor(partner, { dtype: "int64" }),
    lam,
  ).item();
  near(got, expected, "cutmix CE");
  // lam = 1 is plain cross-entropy whatever the partner
  near(
    cutmixCrossEntropy(
      torch.tensor(LOGITS),
      torch.tensor(y, { dtype: "int64" }),
      torch.tensor(partner, { dtype: "int64" }),
      1,
    ).item(),
    ce(y),
    "lam 1",
  );
});

test("soft-label loss = sum_i KL(softmax(t_i/T) || softmax(s_i/T)) / N, without a T^2 factor (RDED)", () => {
  for (const T of [1, 4, 20]) {
    let sum = 0;
    LOGITS.forEach((row, i) => {
      const logP = logSoftmax(row.map((v) => v / T));
      const logQ = logSoftmax(TEACHER[i].map((v) => v / T));
      sum += logQ.reduce((a, lq, k) => a + Math.exp(lq) * (lq - logP[k]), 0);
    });
    near(softLabelKl(torch.tensor(LOGITS), torch.tensor(TEACHER), T).item(), sum / LOGITS.length, `T = ${T}`);
  }
  // equal logits: zero divergence
  near(softLabelKl(torch.tensor(TEACHER), torch.tensor(TEACHER), 20).item(), 0, "identical");
});
