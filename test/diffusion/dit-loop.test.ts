// Diffusion with the small random DiT of the reference scripts: p_mean_variance of its output, and a 50-step
// classifier-free-guidance sampling loop against a PyTorch loop drawing its noise in the same order.
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { GaussianDiffusion, sample } from "../../src/diffusion/index.js";
import { loadSafetensors } from "../../src/io/safetensors.js";
import * as torch from "../../src/torch/index.js";
import { smallDiT } from "../helpers/dit-small.js";
import { assertClose, fixture } from "../helpers/fixtures.js";

const fx = loadSafetensors(fixture("diffusion", "dit_loop.safetensors"));
const spec = JSON.parse(readFileSync(fixture("diffusion", "dit_loop.json"), "utf8")) as {
  labels: number[];
  scale: number;
  seed: number;
  steps: number;
  pmv_t: number[];
  pmv_y: number[];
};

test("p_mean_variance of the small DiT's output: mean, log variance and predicted x0", () => {
  const dit = smallDiT();
  const d = GaussianDiffusion.create({ respacing: 50 });
  const xt = fx.get("pmv_xt")!;
  const out = dit.forward(xt, d.modelTimesteps(spec.pmv_t), torch.tensor(spec.pmv_y, { dtype: "int64" }));
  const r = d.pMeanVariance(out, xt, spec.pmv_t);
  assertClose(r.mean, fx.get("pmv_mean")!, 1e-5, "mean");
  assertClose(r.logVariance, fx.get("pmv_logvar")!, 1e-5, "log variance");
  assertClose(r.predXstart, fx.get("pmv_x0")!, 1e-5, "predicted x0");
});

test("a 50-step CFG sampling loop of the small DiT equals the PyTorch loop (rel err <= 1e-4)", () => {
  const dit = smallDiT();
  const x = sample(GaussianDiffusion.create({ respacing: spec.steps }), dit, spec.labels, [4, 8, 8], {
    cfgScale: spec.scale,
    nullClass: dit.config.numClasses,
    generator: new torch.Generator(spec.seed),
  });
  assertClose(x, fx.get("loop")!, 1e-4, "loop");
});
