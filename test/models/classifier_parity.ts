// Parity checks shared by the ResNet and ConvNet tests: one reference case holds an input, the eval-mode output, the
// training-mode output, the buffers after that training forward and a few gradients of sum(y * grad_weight).
import assert from "node:assert/strict";
import type { TestContext } from "node:test";
import { relErr } from "../helpers/fixtures.js";
import type { Model } from "../../src/models/module.js";
import * as torch from "../../src/torch/index.js";

export interface Classifier extends Model {
  forward(x: torch.Tensor): torch.Tensor;
}

/** Asserts rel err <= tol and returns it, so a test can report what it measured. */
export function close(actual: torch.Tensor, expected: torch.Tensor, what: string, tol = 1e-5): number {
  assert.deepEqual(actual.shape, expected.shape, `${what}: shape`);
  const e = relErr(actual.toFloat64Array(), expected.toFloat64Array());
  assert.ok(e <= tol, `${what}: rel err ${e.toExponential(3)} > ${tol}`);
  return e;
}

/**
 * Runs the reference case on a model that already holds the case's weights: eval forward, then one training forward
 * (batch statistics, running-statistic update) and backward. Returns the largest rel err of each group.
 */
export function checkTrainEval(
  t: TestContext,
  model: Classifier,
  fx: Map<string, torch.Tensor>,
  tol = 1e-5,
): Record<string, number> {
  const errs: Record<string, number> = {};
  const worst = (group: string, e: number) => (errs[group] = Math.max(errs[group] ?? 0, e));
  torch.tidy(() => {
    const x = fx.get("input")!;
    model.eval();
    worst(
      "eval output",
      close(
        torch.noGrad(() => model.forward(x)),
        fx.get("eval_output")!,
        "eval output",
        tol,
      ),
    );
    model.train();
    for (const p of model.parameters()) p.zeroGrad();
    const y = model.forward(x);
    worst("train output", close(y, fx.get("train_output")!, "train output", tol));
    y.mul(fx.get("grad_weight")!).sum().backward();
    const sd = model.stateDict();
    const params = model.namedParameters();
    let buffers = 0;
    let grads = 0;
    for (const [k, expected] of fx) {
      if (k.startsWith("after_train.")) {
        const name = k.slice("after_train.".length);
        const actual = sd.get(name);
        assert.ok(actual, `model has no buffer ${name}`);
        if (expected.dtype === "int64") assert.deepEqual(actual.toNumbers(), expected.toNumbers(), name);
        else worst("running stats", close(actual, expected, name, tol));
        buffers++;
      } else if (k.startsWith("grad.")) {
        const name = k.slice("grad.".length);
        const g = params.get(name)?.grad;
        assert.ok(g, `no gradient for ${name}`);
        worst("gradients", close(g, expected, `grad ${name}`, tol));
        grads++;
      }
    }
    assert.ok(grads > 0, "the case holds gradients");
    t.diagnostic(
      `${buffers} buffers, ${grads} gradients; max rel err ${Object.entries(errs)
        .map(([g, e]) => `${g} ${e.toExponential(2)}`)
        .join(", ")}`,
    );
  });
  model.eval();
  return errs;
}

/** Name -> shape of a state dict, for comparing key lists. */
export const shapesOf = (sd: Map<string, torch.Tensor>) => new Map([...sd].map(([k, v]) => [k, v.shape]));
