// Mixed precision (src/torch/autocast.ts) against torch.autocast("cpu", dtype=torch.bfloat16) of
// tools/reference/autocast_fixtures.py: the small DiT's forward, CFG forward and a refinement gradient through it, a
// ConvNet-3 (batch norm) eval forward and training gradient.
// Tolerance, and why: bf16 keeps 8 bits of mantissa, so two bf16 computations that round at different points differ
// by about bf16's own error (a step of 2^-8 of the largest value); ours rounds where PyTorch's does, and the results
// measured here are PyTorch's bit for bit. The bound asks for that ordering of roundings without asking for bit
// equality (a kernel's summation order may change with the thread count): each output within an eighth of PyTorch's
// own bf16 error (its distance from PyTorch's fp32 result) of PyTorch's bf16 result, and 0.25-1.5x that error away
// from the fp32 result (it is a bf16 result, not an fp32 one that autocast left alone).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { InputError } from "../../src/errors.js";
import { loadSafetensors } from "../../src/io/safetensors.js";
import { createConvNet } from "../../src/models/convnet.js";
import * as torch from "../../src/torch/index.js";
import { smallDiT } from "../helpers/dit-small.js";
import { fixture, relErr } from "../helpers/fixtures.js";

const fx = loadSafetensors(fixture("torch", "autocast_bf16.safetensors"));
const meta = JSON.parse(readFileSync(fixture("torch", "autocast_bf16.json"), "utf8")) as {
  dtypes: Record<string, string>;
  dit_y: number[];
  cfg_scale: number;
  a: number;
  b: number;
};

/** Ours (bf16) against PyTorch's bf16 and fp32 results of the same computation (see the tolerance above). */
function assertBf16Parity(ours: torch.Tensor, name: string): void {
  const [ref, full] = [fx.get(name)!, fx.get(`${name}_fp32`)!];
  assert.deepEqual(ours.shape, ref.shape, `${name}: shape`);
  const a = ours.float().toFloat64Array();
  const own = relErr(ref.toFloat64Array(), full.toFloat64Array());
  const [vsRef, vsFull] = [relErr(a, ref.toFloat64Array()), relErr(a, full.toFloat64Array())];
  const say = `${name}: ${vsRef.toExponential(2)} from PyTorch's bf16, ${vsFull.toExponential(2)} from fp32; PyTorch's bf16 is ${own.toExponential(2)} from fp32`;
  assert.ok(vsRef <= own / 8 && vsFull <= 1.5 * own && vsFull >= 0.25 * own, say);
}
const bf16 = <T>(fn: () => T) => torch.autocast("cpu", "bf16", fn);
const labels = (ys: number[]) => torch.fromArray(BigInt64Array.from(ys, BigInt), [ys.length]);

test("autocast bf16: the DiT's forward and CFG forward match PyTorch's autocast, in bfloat16 as there", () => {
  const dit = smallDiT();
  const [x, t] = [fx.get("dit_x")!, fx.get("dit_t")!];
  const out = torch.noGrad(() => bf16(() => dit.forward(x, t, labels(meta.dit_y))));
  assert.equal(out.dtype, "bfloat16");
  assert.equal(meta.dtypes.dit_out, "torch.bfloat16");
  assertBf16Parity(out, "dit_out");
  const xx = torch.cat([x, x]);
  const cfg = torch.noGrad(() =>
    bf16(() => dit.forwardWithCfg(xx, torch.cat([t, t]), labels([...meta.dit_y, 10, 10]), meta.cfg_scale)),
  );
  assertBf16Parity(cfg, "dit_cfg_out");
});

test("autocast bf16: a refinement gradient reaches the float32 latents as PyTorch's does", () => {
  const dit = smallDiT();
  const [x, noise, t] = [fx.get("dit_x")!, fx.get("dit_noise")!, fx.get("dit_t")!];
  const x0 = x.clone().requiresGrad_(true);
  const eps = bf16(() => dit.forward(x0.mul(meta.a).add(noise.mul(meta.b)), t, labels(meta.dit_y)).narrow(1, 0, 4));
  assert.equal(eps.dtype, "bfloat16");
  const loss = eps.float().sub(noise).pow(2).mean();
  loss.backward();
  assert.equal(x0.grad!.dtype, "float32");
  assertBf16Parity(loss.reshape(1), "dit_loss");
  assertBf16Parity(x0.grad!, "dit_grad");
});

test("autocast bf16: ConvNet-3 (batch norm) eval output and training gradient match PyTorch's", () => {
  const weights = loadSafetensors(fixture("models", "convnet", "convnet3_batch_1ch28.safetensors"));
  const net = createConvNet({ numClasses: 10, width: 16, depth: 3, norm: "batch", inChannels: 1, imageSize: 28 });
  const keys = new Set(net.stateDict().keys());
  net.loadStateDict(new Map([...weights].filter(([k]) => keys.has(k))));
  const x = fx.get("convnet_x")!;
  net.eval();
  const out = torch.noGrad(() => bf16(() => net.forward(x)));
  assert.equal(out.dtype, "bfloat16");
  assertBf16Parity(out, "convnet_out");
  net.train();
  const xg = x.clone().requiresGrad_(true);
  const logits = bf16(() => net.forward(xg));
  const loss = torch.F.crossEntropy(logits.float(), fx.get("convnet_labels")!);
  loss.backward();
  assertBf16Parity(loss.reshape(1), "convnet_loss");
  assertBf16Parity(xg.grad!, "convnet_grad");
});

test("autocast: fp32 runs as it is, the state is restored after (also after a throw), fp16 is refused on CPU", () => {
  const w = torch.ones([2, 2]);
  assert.equal(torch.autocast("cpu", "fp32", () => torch.matmul(w, w)).dtype, "float32");
  assert.equal(torch.isAutocastEnabled(), false);
  assert.equal(
    bf16(() => (torch.isAutocastEnabled() ? torch.matmul(w, w).dtype : "off")),
    "bfloat16",
  );
  assert.equal(torch.isAutocastEnabled(), false);
  assert.throws(
    () =>
      bf16(() => {
        throw new Error("inside");
      }),
    /inside/,
  );
  assert.equal(torch.isAutocastEnabled(), false);
  // Nested regions: the inner one leaves the outer one on.
  bf16(() => {
    bf16(() => undefined);
    assert.equal(torch.isAutocastEnabled(), true);
  });
  assert.throws(
    () => torch.autocast("cpu", "fp16", () => 0),
    (e) => e instanceof InputError && /fp16 needs a CUDA device/.test(e.message),
  );
});
