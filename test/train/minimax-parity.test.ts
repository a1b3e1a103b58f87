// Two Minimax training steps against tools/reference/train_minimax_fixtures.py (PyTorch) on a small random DiT with
// gammas away from 1, with the same fixed t, noise and label-dropout mask: the loss terms, the trainable parameters
// and their AdamW moments after each step (the moments carry the gradients, which Adam's normalised update would
// hide), the class memories after each step, the EMA after the second; frozen parameters never move.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { GaussianDiffusion } from "../../src/diffusion/gaussian.js";
import { loadSafetensors } from "../../src/io/safetensors.js";
import { createDiT, type DiT, type DiTConfig } from "../../src/models/dit.js";
import { AdamW, sub, type Tensor } from "../../src/torch/index.js";
import { updateEma } from "../../src/train/ema.js";
import { ClassMemories } from "../../src/train/minimax-criterion.js";
import { freezeOutsideDiffFit, minimaxStep, type MinimaxTrainer } from "../../src/train/minimax.js";
import { assertClose, fixture } from "../helpers/fixtures.js";

const ref = JSON.parse(readFileSync(fixture("train", "minimax_steps.json"), "utf8"));
const fx = loadSafetensors(fixture("train", "minimax_steps.safetensors"));
const get = (k: string): Tensor => {
  const t = fx.get(k);
  assert.ok(t, `fixture has no ${k}`);
  return t;
};
const withPrefix = (p: string) =>
  new Map([...fx].filter(([k]) => k.startsWith(p)).map(([k, v]) => [k.slice(p.length), v]));

const c = ref.config;
const CONFIG: DiTConfig = {
  inputSize: c.input_size,
  patchSize: c.patch_size,
  inChannels: c.in_channels,
  hiddenSize: c.hidden_size,
  depth: c.depth,
  numHeads: c.num_heads,
  mlpRatio: c.mlp_ratio,
  classDropoutProb: c.class_dropout_prob,
  numClasses: c.num_classes,
  learnSigma: c.learn_sigma,
  gammaBlocks: c.gamma_blocks,
};

function initial(): DiT {
  const m = createDiT(CONFIG, { init: "zeros" });
  m.loadStateDict(withPrefix("init."));
  return m;
}

/**
 * The parts of a parameter whose update is determined by its gradient: all of it, except the key third of an
 * attention's qkv bias. Adding b_k to every key adds q.b_k to a whole row of scores, which the softmax ignores, so
 * its gradient is 0 up to rounding (~1e-11 here) and Adam's normalised step turns that noise into changes of ~1e-5
 * that no two implementations share; those are only checked to stay far below the learning rate.
 */
function comparable(key: string, [p, want, p0]: Tensor[], lrSum: number): [string, Tensor[]][] {
  if (!key.endsWith("attn.qkv.bias")) return [[key, [p, want, p0]]];
  const h = p.size(0) / 3;
  const part = (j: number) => [p, want, p0].map((t) => t.narrow(0, j * h, h));
  const [pk, wk, k0] = part(1);
  for (const d of [sub(pk, k0), sub(wk, k0)])
    assert.ok(d.abs().max().item() < 0.05 * lrSum, `${key}: key-bias change ${d.abs().max().item()}`);
  return [
    [`${key} (q)`, part(0)],
    [`${key} (v)`, part(2)],
  ];
}

const scalarClose = (a: number, b: number, what: string) =>
  assert.ok(Math.abs(a - b) <= 1e-5 * Math.abs(b), `${what}: ${a} vs ${b} (rel err ${Math.abs(a - b) / Math.abs(b)})`);

for (const [name, lambdas] of Object.entries(ref.cases as Record<string, { lambda_pos: number; lambda_neg: number }>)) {
  test(`Minimax steps match PyTorch (${name}: lambda_pos ${lambdas.lambda_pos}, lambda_neg ${lambdas.lambda_neg})`, () => {
    const model = initial();
    const ema = initial().eval();
    const init = initial();
    const trainable = freezeOutsideDiffFit(model);
    const names = [...model.namedParameters()].filter(([, p]) => trainable.includes(p)).map(([k]) => k);
    assert.deepEqual([...names].sort(), ref.trainable);
    assert.ok(
      names.some((k) => k.includes("gamma")),
      "the gammas train",
    );
    const optimizer = new AdamW(trainable, { lr: ref.lr, weightDecay: 0 });
    const memories = new ClassMemories(ref.memory_size);
    const tr: MinimaxTrainer = {
      model,
      diffusion: GaussianDiffusion.create(),
      optimizer,
      memories,
      weights: { lambdaPos: lambdas.lambda_pos, lambdaNeg: lambdas.lambda_neg },
    };
    model.train();
    for (let k = 1; k <= ref.steps; k++) {
      const s = `s${k}`;
      const pre = `${name}.${s}`;
      const metrics = minimaxStep(tr, {
        x0: get(`${s}.x0`),
        labels: get(`${s}.y`).toNumbers(),
        t: get(`${s}.t`).toNumbers(),
        noise: get(`${s}.noise`),
        drop: get(`${s}.drop`),
      });
      updateEma(ema, model, ref.ema_decay);
      for (const m of ["loss", "mse", "vb", "pos", "neg"] as const) {
        const want = get(`${pre}.${m}`).item();
        if (want === 0) assert.equal(metrics[m], 0, `${pre}.${m}: memories are empty in step 1`);
        else scalarClose(metrics[m], want, `${pre}.${m}`);
      }
      const state = optimizer.stateDict().state;
      names.forEach((key, i) => {
        for (const [what, [p, want, p0]] of comparable(
          key,
          [model.namedParameters().get(key)!, get(`${pre}.param.${key}`), init.namedParameters().get(key)!],
          k * ref.lr,
        )) {
          assertClose(p, want, 1e-5, `${pre} ${what}`);
          // The update itself, so that a small change is not lost against the parameter's size. Tolerance 1e-4:
          // Adam's first update lr g / (|g| + eps) turns the float32 rounding of an element with |g| ~ 1e-6 (the
          // label table has such) into ~1e-5 lr; the gradients themselves are checked at 1e-5 through exp_avg below.
          assertClose(sub(p, p0), sub(want, p0), 1e-4, `${pre} ${what} update`);
        }
        assertClose(state[i].exp_avg as Tensor, get(`${pre}.exp_avg.${key}`), 1e-5, `${pre} ${key} exp_avg`);
        assertClose(state[i].exp_avg_sq as Tensor, get(`${pre}.exp_avg_sq.${key}`), 1e-5, `${pre} ${key} exp_avg_sq`);
      });
      for (const [key, p] of model.namedParameters()) {
        if (!names.includes(key))
          assert.deepEqual(p.toNumbers(), init.namedParameters().get(key)!.toNumbers(), `${key} is frozen`);
      }
      const saved = [...fx.keys()].filter((x) => x.startsWith(`${pre}.mem.`)).map((x) => x.slice(pre.length + 5));
      assert.deepEqual([...memories.stateDict().keys()].sort(), saved.sort(), `${pre}: classes in memory`);
      for (const key of saved)
        assertClose(memories.stateDict().get(key)!, get(`${pre}.mem.${key}`), 1e-5, `${pre} memory ${key}`);
    }
    const last = `${name}.s${ref.steps}`;
    for (const [key, e] of ema.stateDict()) {
      const base = init.stateDict().get(key)!;
      for (const [what, [mine, want]] of comparable(key, [e, get(`${last}.ema.${key}`), base], ref.steps * ref.lr))
        assertClose(mine, want, 1e-5, `${last} ema ${what}`);
    }
    memories.clear();
  });
}
