// `npm run bench -- distill`: the two steps distillation spends its time in, with a random-weight DiT-S/2 on 4x32x32
// latents, batch 8 (tools/reference/bench_distill.py is the PyTorch baseline, the same computation in plain torch):
//   ddpm_cfg_step  one DDPM step of the 50-step respaced sampler with classifier-free guidance (scale 2.7, 3 guided
//                  channels): the doubled batch [cond; null] (16) through DiT.forwardWithCfg, pMeanVariance
//                  (learned-range variance), fresh noise, x_{t-1} = mean + exp(log var / 2) noise; no grad
//   refine_step    one step of condition-aware latent refinement (paper Eq. 4, src/distill/refine.ts): per image a
//                  t in 1..11, x_t = sqrt(abar) x + sqrt(1 - abar) eps, the model at map[t], perImageObjective
//                  (mse + 10 ||.||_inf), backward of the sum to the latents only (frozen model), Adam (lr 6e-4)
//   dit_forward    the refinement step's model call alone, without a graph (batch 8, t = 1..8)
//   *_bf16         the same with the DiT under bf16 autocast (DiT.atPrecision, --precision bf16), against PyTorch's
//                  torch.autocast("cpu", torch.bfloat16); the report also sets them against PyTorch's fp32 case
import { GaussianDiffusion } from "../src/diffusion/index.js";
import { perImageObjective } from "../src/distill/refine.js";
import { createDiT, ditConfig, type DiTAtPrecision } from "../src/models/dit.js";
import {
  Adam,
  add,
  cat,
  exp,
  fromArray,
  Generator,
  keep,
  manualSeed,
  mul,
  noGrad,
  randint,
  randn,
  tidy,
} from "../src/torch/index.js";
import { randomSource } from "../src/util/seed.js";
import { freeze, machine, parseOptions, randomise, report, sideBySide } from "./common.js";

const BATCH = 8;
const CFG_SCALE = 2.7;
const STEP = 25;
const T_MAX = 11;
const LAMBDA = 10;

export async function run(args: string[]): Promise<void> {
  const o = parseOptions(args, { warmup: 1, repeats: 9 });
  const env = machine();
  manualSeed(0);
  const dit = createDiT({ ...ditConfig("DiT-S/2"), inputSize: 32 }, { init: "zeros" }).eval();
  randomise(dit.parameters());
  freeze(dit.parameters());
  const diffusion = GaussianDiffusion.create({ respacing: 50 });
  const gen = new Generator(1);

  // Sampling: x holds the doubled batch [z; z] with labels [y; null], as the sampler builds it.
  const labels = randint(0, 1000, [BATCH]);
  const z = randn([BATCH, 4, 32, 32]);
  const x = keep(cat([z, z]));
  const yCfg = keep(cat([labels, labels.mul(0).add(dit.nullClass)]));
  const ddpmStep = (model: DiTAtPrecision) => () =>
    noGrad(() =>
      tidy(() => {
        const t = new Array<number>(2 * BATCH).fill(STEP);
        const out = model.forwardWithCfg(x, diffusion.modelTimesteps(t), yCfg, CFG_SCALE);
        const p = diffusion.pMeanVariance(out, x, t);
        const noise = randn(x.shape, { generator: gen });
        return add(p.mean, mul(exp(mul(p.logVariance, 0.5)), noise));
      }).dispose(),
    );

  // Refinement: the latents are the optimised leaf; noise and labels are fixed per image.
  const latents = randn([BATCH, 4, 32, 32]).requiresGrad_(true);
  const noise = randn([BATCH, 4, 32, 32]);
  const opt = new Adam([latents], { lr: 6e-4 });
  const draws = Array.from({ length: BATCH }, (_, i) => randomSource(100 + i));
  const abar = diffusion.tables.alphasCumprod;
  const refineStep = (model: DiTAtPrecision) => () => {
    const ts = draws.map((r) => 1 + Math.floor(r() * T_MAX));
    tidy(() => {
      const a = fromArray(
        Float32Array.from(ts, (t) => Math.sqrt(abar[t])),
        [BATCH, 1, 1, 1],
      );
      const b = fromArray(
        Float32Array.from(ts, (t) => Math.sqrt(1 - abar[t])),
        [BATCH, 1, 1, 1],
      );
      const xt = latents.mul(a).add(noise.mul(b));
      const out = model.forward(xt, diffusion.modelTimesteps(ts), labels);
      perImageObjective(out.narrow(1, 0, 4), noise, LAMBDA, "inf")
        .sum()
        .backward();
    });
    opt.step();
    opt.zeroGrad();
  };

  // The refinement step's forward alone (no graph), to tell forward from backward costs apart.
  const ts = Array.from({ length: BATCH }, (_, i) => 1 + (i % T_MAX));
  const ditForward = (model: DiTAtPrecision) => () =>
    noGrad(() => tidy(() => model.forward(latents.detach(), diffusion.modelTimesteps(ts), labels)).dispose());

  const [fp32, bf16] = [dit.atPrecision("cpu", "fp32"), dit.atPrecision("cpu", "bf16")];
  const result = await sideBySide(
    "bench_distill.py",
    {
      ddpm_cfg_step: ddpmStep(fp32),
      refine_step: refineStep(fp32),
      dit_forward: ditForward(fp32),
      ddpm_cfg_step_bf16: ddpmStep(bf16),
      refine_step_bf16: refineStep(bf16),
      dit_forward_bf16: ditForward(bf16),
    },
    o,
  );
  report(o.out ?? "distill", result.cases, {
    ...env,
    setup: {
      model: "DiT-S/2 (random weights, depth 12, hidden 384, 6 heads)",
      latent: [4, 32, 32],
      batch: BATCH,
      cfgScale: CFG_SCALE,
      respacing: 50,
      step: STEP,
      tMax: T_MAX,
      lambda: LAMBDA,
      norm: "inf",
      lr: 6e-4,
    },
    options: o,
    python_env: result.python_env,
    samples: result.samples,
    paired_ratio: result.paired_ratio,
    cpu: result.cpu,
  });
}
