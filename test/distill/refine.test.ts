import assert from "node:assert/strict";
import { test } from "node:test";
import * as torch from "../../src/torch/index.js";
import { randomSource } from "../../src/util/seed.js";
import {
  type NoiseModel,
  perImageObjective,
  refineLatents,
  type RefineOptions,
  type RefineSchedule,
} from "../../src/distill/refine.js";

const C = 2;
const gen = () => new torch.Generator(7);

/** A small fixed model: a 3x3 convolution from C to 2C channels (eps and a sigma channel), shifted by t and y. */
function convModel(): NoiseModel {
  const g = gen();
  const w = torch.keep(torch.randn([2 * C, C, 3, 3], { generator: g }).mul(0.3));
  return (x, t, y) =>
    torch.F.conv2d(x, w, null, { padding: 1 })
      .add(t.to("float32").view(-1, 1, 1, 1).mul(1e-3))
      .add(y.to("float32").view(-1, 1, 1, 1).mul(1e-2));
}

function linearSchedule(s = 50): RefineSchedule {
  const betas = Array.from({ length: 1000 }, (_, i) => 1e-4 + ((0.02 - 1e-4) * i) / 999);
  const abar: number[] = [];
  betas.reduce((acc, b) => (abar.push(acc * (1 - b)), acc * (1 - b)), 1);
  const map = Array.from({ length: s }, (_, i) => Math.round((i * 999) / (s - 1)));
  return { alphasCumprod: Float64Array.from(map, (t) => abar[t]), timestepMap: map };
}

/** t uniform in 1..tMax from a seeded source. */
function uniformT(seed: number, tMax = 11): () => number {
  const r = randomSource(seed);
  return () => 1 + Math.floor(r() * tMax);
}

function batch(n = 3) {
  const g = gen();
  return {
    latents: torch.randn([n, C, 4, 4], { generator: g }),
    noise: torch.randn([n, C, 4, 4], { generator: g }),
    labels: torch.tensor(Array(n).fill(1), { dtype: "int64" }),
    timesteps: Array.from({ length: n }, (_, i) => uniformT(100 + i)),
  };
}

const OPTS: RefineOptions = { iters: 30, lr: 0.05, lambda: 10, norm: "inf", tMax: 11, timestepMode: "original" };

test("the objective: lambda = 0 is the plain mean squared error; each p-norm matches its definition", () => {
  const g = gen();
  const eps = torch.randn([2, C, 3, 3], { generator: g });
  const noise = torch.randn([2, C, 3, 3], { generator: g });
  const d = eps.sub(noise).toFloat64Array();
  const per = (f: (v: Float64Array) => number) => [0, 1].map((i) => f(d.subarray(i * 18, (i + 1) * 18)));
  const mse = per((v) => v.reduce((a, x) => a + x * x, 0) / v.length);
  const l1 = per((v) => v.reduce((a, x) => a + Math.abs(x), 0));
  const l2 = per((v) => Math.sqrt(v.reduce((a, x) => a + x * x, 0)));
  const linf = per((v) => v.reduce((a, x) => Math.max(a, Math.abs(x)), 0));
  const close = (a: number[], b: number[]) =>
    a.forEach((x, i) => assert.ok(Math.abs(x - b[i]) < 1e-5 * Math.max(1, Math.abs(b[i])), `${x} vs ${b[i]}`));
  close(perImageObjective(eps, noise, 0, "inf").toNumbers(), mse);
  close(perImageObjective(eps, noise, 3, "none").toNumbers(), mse);
  close(
    perImageObjective(eps, noise, 3, "1").toNumbers(),
    mse.map((m, i) => m + 3 * l1[i]),
  );
  close(
    perImageObjective(eps, noise, 3, "2").toNumbers(),
    mse.map((m, i) => m + 3 * l2[i]),
  );
  close(
    perImageObjective(eps, noise, 3, "inf").toNumbers(),
    mse.map((m, i) => m + 3 * linf[i]),
  );
});

test("refinement lowers each image's loss on a small model", () => {
  const r = refineLatents(convModel(), linearSchedule(), batch(), OPTS);
  r.lossAfter.forEach((after, i) => assert.ok(after < r.lossBefore[i], `image ${i}: ${after} >= ${r.lossBefore[i]}`));
});

test("each image's result does not depend on the batch it is refined in", () => {
  const model = convModel();
  const b = batch(3);
  const all = refineLatents(model, linearSchedule(), b, { ...OPTS, iters: 5 });
  const one = refineLatents(
    model,
    linearSchedule(),
    {
      latents: b.latents.narrow(0, 1, 1),
      noise: b.noise.narrow(0, 1, 1),
      labels: b.labels.narrow(0, 1, 1),
      timesteps: [uniformT(101)],
    },
    { ...OPTS, iters: 5 },
  );
  const a = all.latents.narrow(0, 1, 1).toFloat32Array();
  const o = one.latents.toFloat32Array();
  const err = a.reduce((m, v, i) => Math.max(m, Math.abs(v - o[i])), 0);
  assert.ok(err < 1e-6, `batch dependence ${err}`);
});

test("the noise stays fixed per image across iterations", () => {
  // With abar = 0 at every step, x_t is exactly the image's noise: every call must see the same tensor.
  const sched = linearSchedule();
  const zero: RefineSchedule = {
    alphasCumprod: new Float64Array(sched.alphasCumprod.length),
    timestepMap: sched.timestepMap,
  };
  const b = batch(2);
  const expected = b.noise.toFloat32Array();
  const inner = convModel();
  let calls = 0;
  const spy: NoiseModel = (x, t, y) => {
    calls++;
    const seen = x.toFloat32Array();
    assert.ok(
      seen.every((v, i) => Math.abs(v - expected[i]) < 1e-6),
      "x_t differs from the fixed noise",
    );
    return inner(x, t, y);
  };
  refineLatents(spy, zero, b, { ...OPTS, iters: 4 });
  assert.ok(calls >= 4);
});

test("the max-norm bound holds", () => {
  const b = batch();
  const r = refineLatents(convModel(), linearSchedule(), b, { ...OPTS, lr: 0.5, maxNorm: 0.05 });
  const moved = r.latents.sub(b.latents).abs().max().item();
  assert.ok(moved <= 0.05 + 1e-6, `moved ${moved}`);
  assert.ok(moved > 0.04, "the bound is active with this learning rate");
});

test("timesteps: the model receives map[t] by default and t itself in the released code's mode", () => {
  const sched = linearSchedule();
  const seen = (mode: RefineOptions["timestepMode"]) => {
    const ts = new Set<number>();
    const inner = convModel();
    const spy: NoiseModel = (x, t, y) => {
      for (const v of t.toNumbers()) ts.add(v);
      return inner(x, t, y);
    };
    refineLatents(spy, sched, batch(), { ...OPTS, iters: 10, timestepMode: mode });
    return [...ts].sort((a, b) => a - b);
  };
  const idx = seen("index");
  assert.ok(
    idx.every((t) => t >= 1 && t <= 11),
    `index mode saw ${idx}`,
  );
  const orig = seen("original");
  const allowed = new Set(sched.timestepMap.slice(1, 12));
  assert.ok(
    orig.every((t) => allowed.has(t)),
    `original mode saw ${orig}`,
  );
  assert.ok(
    orig.some((t) => t > 11),
    "original timesteps exceed the index range",
  );
});

test("bad T^ is refused", () => {
  assert.throws(
    () => refineLatents(convModel(), linearSchedule(), batch(), { ...OPTS, tMax: 50 }),
    /T\^ = 50 must lie in 1\.\.49/,
  );
});

test("label drops: iteration i hands column i of the image's decisions to the model; the loss sweeps get none", () => {
  const inner = convModel();
  const drops = torch.fromArray(Uint8Array.from([1, 0, 0, 1, 1, 0, 0, 0, 1, 0, 1, 1]), [3, 4]).to("bool");
  const expected = drops.toNumbers();
  const seen: (number[] | undefined)[] = [];
  const spy: NoiseModel = (x, t, y, dropIds) => {
    if (x.requiresGrad) seen.push(dropIds?.toNumbers());
    else assert.equal(dropIds, undefined, "a loss sweep saw label drops");
    return inner(x, t, y);
  };
  refineLatents(spy, linearSchedule(), { ...batch(3), labelDrops: drops }, { ...OPTS, iters: 4 });
  assert.deepEqual(
    seen,
    [0, 1, 2, 3].map((it) => [0, 1, 2].map((i) => expected[i * 4 + it])),
  );
});

test("drawn timesteps out of 1..T^ are refused", () => {
  assert.throws(
    () => refineLatents(convModel(), linearSchedule(), { ...batch(1), timesteps: [() => 12] }, OPTS),
    /drawn t = 12 is not in 1\.\.11/,
  );
});
