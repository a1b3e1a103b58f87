// `npm run bench -- engine`: the engine on its own against PyTorch (tools/reference/bench_engine.py has the same cases).
//   sgemm_1024            float32 matmul 1024x1024 @ 1024x1024
//   dit_block_fwd         one DiT-S block (hidden 384, 6 heads, mlp 4x), 256 tokens, batch 8, with its conditioning c
//                         (SiLU(c) is part of the step, as in the reference's adaLN_modulation); no grad
//   dit_block_fwd_bwd     the same forward, then backward of sum(out * g) to the input only (frozen weights)
//   resnet_block_fwd_bwd  basic block (64 channels), 32x64x56x56, training-mode batch norm, backward of sum(out * g)
//                         to the input and the weights (gradients reset each call, as optimizer.zero_grad does)
// and, as a diagnostic rather than a workload (reported under "diagnostics", not "cases"):
//   dispatch_1000_adds    1000 calls of add on two 4-element tensors: the fixed cost of one operator call
import { createDiT, ditConfig } from "../src/models/dit.js";
import { Store, VarBuilder } from "../src/models/module.js";
import { ResidualBlock } from "../src/models/resnet.js";
import { add, F, manualSeed, matmul, noGrad, randn, tidy } from "../src/torch/index.js";
import { freeze, machine, parseOptions, randomise, report, sideBySide } from "./common.js";

export async function run(args: string[]): Promise<void> {
  const o = parseOptions(args, { warmup: 3, repeats: 21 });
  const env = machine();
  manualSeed(0);

  const a = randn([1024, 1024]);
  const b = randn([1024, 1024]);

  const dit = createDiT({ ...ditConfig("DiT-S/2"), depth: 1, inputSize: 32 }, { init: "zeros" });
  const block = dit.blocks[0];
  randomise(dit.parameters());
  freeze(dit.parameters());
  const x = randn([8, 256, 384]);
  const c = randn([8, 384]);
  const g = randn([8, 256, 384]);

  const store = new Store();
  const res = new ResidualBlock(new VarBuilder(store), "basic", 64, 64, 1, "batch");
  const resParams = [...store.params.values()];
  const rx = randn([32, 64, 56, 56]);
  const rg = randn([32, 64, 56, 56]);

  const s1 = randn([4]);
  const s2 = randn([4]);

  const result = await sideBySide(
    "bench_engine.py",
    {
      sgemm_1024: () => matmul(a, b).dispose(),
      dit_block_fwd: () => noGrad(() => tidy(() => void block.forward(x, F.silu(c)))),
      dit_block_fwd_bwd: () =>
        tidy(() => {
          const xi = x.detach().requiresGrad_(true);
          block.forward(xi, F.silu(c)).backward(g);
        }),
      resnet_block_fwd_bwd: () =>
        tidy(() => {
          resParams.forEach((p) => p.zeroGrad());
          const xi = rx.detach().requiresGrad_(true);
          res.forward(xi).backward(rg);
        }),
      dispatch_1000_adds: () => {
        for (let i = 0; i < 1000; i++) add(s1, s2).dispose();
      },
    },
    o,
  );
  const diagnostic = (c: { name: string }) => c.name.startsWith("dispatch_");
  report(
    o.out ?? "engine",
    result.cases.filter((c) => !diagnostic(c)),
    {
      ...env,
      diagnostics: result.cases.filter(diagnostic),
      options: o,
      python_env: result.python_env,
      paired_ratio: result.paired_ratio,
      cpu: result.cpu,
      samples: result.samples,
    },
  );
}
