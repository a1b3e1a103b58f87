import assert from "node:assert/strict";
import { test } from "node:test";
import { GaussianDiffusion, trainingLosses } from "../../src/diffusion/index.js";
import { loadSafetensors } from "../../src/io/safetensors.js";
import * as torch from "../../src/torch/index.js";
import { assertClose, fixture, relErr } from "../helpers/fixtures.js";
import { standinOutput } from "./standin.js";

const fx = loadSafetensors(fixture("diffusion", "losses.safetensors"));
const get = (k: string) => fx.get(k)!;

test("hybrid loss (eps MSE + VB term with frozen mean) and its gradients equal the reference", () => {
  // T = 1000: plain sum (DiT's MSE loss type); T = 500 with rescaling by T/1000 (improved-diffusion's RESCALED_MSE).
  for (const [T, rescaleVb] of [
    [1000, false],
    [500, true],
  ] as const) {
    const a = torch.tensor(0.7).requiresGrad_();
    const b = torch.tensor(0.3).requiresGrad_();
    const model = { forward: (x: torch.Tensor, t: torch.Tensor, y: torch.Tensor) => standinOutput(x, t, y, a, b) };
    const d = GaussianDiffusion.create({ numTimesteps: T });
    const t = get("t")
      .toNumbers()
      .map((v) => (T === 1000 ? v : Math.floor(v / 2)));
    const l = trainingLosses(d, model, get("x0"), t, get("noise"), get("y"), { rescaleVb });
    assertClose(l.loss, get(`T${T}.loss`), 1e-5, `T${T} loss`);
    assertClose(l.mse, get(`T${T}.mse`), 1e-5, `T${T} mse`);
    assertClose(l.vb!, get(`T${T}.vb`), 1e-5, `T${T} vb`);
    l.loss.mean().backward();
    // a feeds only the eps channels (MSE), b only the variance channels (VB): both gradients are non-zero.
    assertClose(a.grad!.reshape(1), get(`T${T}.grad_a`), 1e-5, `T${T} grad a`);
    assertClose(b.grad!.reshape(1), get(`T${T}.grad_b`), 1e-5, `T${T} grad b`);
    console.log(
      `T=${T}: loss rel err ${relErr(l.loss.toFloat64Array(), get(`T${T}.loss`).toFloat64Array()).toExponential(1)}, ` +
        `grad a ${relErr(a.grad!.toFloat64Array(), get(`T${T}.grad_a`).toFloat64Array()).toExponential(1)}, ` +
        `grad b ${relErr(b.grad!.toFloat64Array(), get(`T${T}.grad_b`).toFloat64Array()).toExponential(1)}`,
    );
  }
});

test("the VB term does not reach the eps channels", () => {
  const d = GaussianDiffusion.create({ numTimesteps: 1000 });
  const a = torch.tensor(0.7).requiresGrad_();
  const b = torch.tensor(0.3).requiresGrad_();
  const model = { forward: (x: torch.Tensor, t: torch.Tensor, y: torch.Tensor) => standinOutput(x, t, y, a, b) };
  const l = trainingLosses(d, model, get("x0"), get("t"), get("noise"), get("y"));
  const [ga] = torch.grad(l.vb!.sum(), [a], { allowUnused: true });
  assert.ok(ga === null || ga.abs().max().item() === 0, "vb has a gradient with respect to the eps parameter");
  const [gm] = torch.grad(l.mse.sum(), [b], { allowUnused: true });
  assert.ok(gm === null || gm.abs().max().item() === 0, "mse has a gradient with respect to the variance parameter");
});

test("fixed-variance models train on the MSE alone", () => {
  const d = GaussianDiffusion.create({ variance: "fixed-small" });
  const model = {
    forward: (x: torch.Tensor, t: torch.Tensor, y: torch.Tensor) => torch.narrow(standinOutput(x, t, y), 1, 0, 4),
  };
  const l = trainingLosses(d, model, get("x0"), get("t"), get("noise"), get("y"));
  assert.equal(l.vb, undefined);
  assertClose(l.loss, l.mse, 0, "loss = mse");
});
