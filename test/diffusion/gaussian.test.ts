import assert from "node:assert/strict";
import { test } from "node:test";
import { GaussianDiffusion, type VarianceType } from "../../src/diffusion/index.js";
import { InputError } from "../../src/errors.js";
import { loadSafetensors } from "../../src/io/safetensors.js";
import * as torch from "../../src/torch/index.js";
import { assertClose, fixture, relErr } from "../helpers/fixtures.js";

const fx = loadSafetensors(fixture("diffusion", "gaussian_ops.safetensors"));
const get = (k: string) => fx.get(k)!;
const x0 = get("x0");
const xt = get("xt");
const t = get("t"); // step indices of the 50-step process: 0, 17, 49
const worst: Record<string, number> = {};
const check = (actual: torch.Tensor, key: string) => {
  assertClose(actual, get(key), 1e-5, key);
  worst[key] = relErr(actual.toFloat64Array(), get(key).toFloat64Array());
};

test("q_sample and the posterior q(x_{t-1} | x_t, x_0) on the 50-step process", () => {
  const d = GaussianDiffusion.create({ respacing: 50 });
  check(d.qSample(x0, t, get("noise")), "q_sample");
  // Timesteps may be given as plain numbers too.
  assertClose(d.qSample(x0, [0, 17, 49], get("noise")), get("q_sample"), 1e-5, "q_sample (number[] t)");
  const p = d.qPosteriorMeanVariance(x0, xt, t);
  check(p.mean, "posterior.mean");
  check(p.variance, "posterior.variance");
  check(p.logVariance, "posterior.log_variance");
});

test("p_mean_variance for learned-range, fixed-small and fixed-large variances, with and without clipping", () => {
  for (const variance of ["learned-range", "fixed-small", "fixed-large"] as VarianceType[]) {
    const d = GaussianDiffusion.create({ respacing: 50, variance });
    const out = variance === "learned-range" ? get("model_out") : torch.narrow(get("model_out"), 1, 0, 4);
    for (const clip of [false, true]) {
      const tag = `${variance}${clip ? ".clip" : ""}`;
      const p = d.pMeanVariance(out, xt, t, { clipDenoised: clip });
      check(p.mean, `${tag}.mean`);
      check(p.variance, `${tag}.variance`);
      check(p.logVariance, `${tag}.log_variance`);
      check(p.predXstart, `${tag}.pred_xstart`);
    }
  }
  console.log(
    "worst rel errs:",
    Object.entries(worst)
      .map(([k, v]) => `${k} ${v.toExponential(1)}`)
      .join(", "),
  );
});

test("the model receives original timesteps; eps and x_0 predictions invert each other", () => {
  const d = GaussianDiffusion.create({ respacing: 50 });
  assert.deepEqual(d.modelTimesteps(t).toNumbers(), [0, d.timestepMap[17], 999]);
  assert.equal(d.modelTimesteps([1]).dtype, "int64");
  const eps = torch.narrow(get("model_out"), 1, 0, 4);
  const back = d.predictEpsFromXstart(xt, t, d.predictXstartFromEps(xt, t, eps));
  assertClose(back, eps, 1e-4, "eps round trip");
});

test("mismatched model outputs and timesteps are clear errors", () => {
  const d = GaussianDiffusion.create({ respacing: 50 });
  assert.throws(() => d.pMeanVariance(torch.narrow(get("model_out"), 1, 0, 4), xt, t), /needs 8 channels/);
  assert.throws(() => d.qSample(x0, [0, 1], get("noise")), /2 timesteps for a batch of 3/);
  assert.throws(() => d.qSample(x0, [0, 1, 50], get("noise")), InputError);
  assert.throws(() => d.modelTimesteps([50]), /outside \[0, 50\)/);
});
