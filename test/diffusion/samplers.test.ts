import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import {
  cfgForward,
  type DiffusionModel,
  GaussianDiffusion,
  sample,
  type StepProgress,
} from "../../src/diffusion/index.js";
import { InputError } from "../../src/errors.js";
import { loadSafetensors } from "../../src/io/safetensors.js";
import * as torch from "../../src/torch/index.js";
import { assertClose, fixture, relErr } from "../helpers/fixtures.js";
import { standin } from "./standin.js";

interface Run {
  S: number;
  seed: number;
  batch: number;
  scale: number;
  null: number | null;
  sampler: "ddpm" | "ddim";
  eta?: number;
}
const spec = JSON.parse(readFileSync(fixture("diffusion", "loops.json"), "utf8")) as {
  labels: number[];
  shape: number[];
  runs: Record<string, Run>;
};
const fx = loadSafetensors(fixture("diffusion", "loops.safetensors"));
// Errors of float32 steps compound over the loop (each step divides by sqrt(abar) near t = 0); 1e-4 after S steps.
const LOOP_TOL = 1e-4;

const run = (name: string, model: DiffusionModel = standin, extra: Partial<Parameters<typeof sample>[4]> = {}) => {
  const r = spec.runs[name];
  return sample(GaussianDiffusion.create({ respacing: r.S }), model, spec.labels, spec.shape, {
    sampler: r.sampler,
    eta: r.eta,
    cfgScale: r.scale,
    nullClass: r.null ?? undefined,
    batchSize: r.batch,
    generator: new torch.Generator(r.seed),
    ...extra,
  });
};

test("DDPM and DDIM loops (guided and unguided, several batch splits) equal a PyTorch loop drawing in the documented order", () => {
  const errs: string[] = [];
  for (const name of Object.keys(spec.runs)) {
    const x = run(name);
    assertClose(x, fx.get(name)!, LOOP_TOL, name);
    errs.push(`${name} ${relErr(x.toFloat64Array(), fx.get(name)!.toFloat64Array()).toExponential(1)}`);
  }
  console.log("loop rel errs:", errs.join(", "));
});

test("a model's own forwardWithCfg is used for guidance, with the doubled batch and the scale", () => {
  const calls: { rows: number; scale: number; labels: number[] }[] = [];
  const model: DiffusionModel = {
    forward: standin.forward,
    forwardWithCfg(x, t, y, scale) {
      calls.push({ rows: x.size(0), scale, labels: y.toNumbers() });
      return cfgForward(standin, x, t, y, scale);
    },
  };
  assertClose(run("ddpm50_cfg", model), fx.get("ddpm50_cfg")!, LOOP_TOL, "ddpm50_cfg via forwardWithCfg");
  assert.equal(calls.length, 2 * 50);
  assert.deepEqual(calls[0], { rows: 4, scale: 2.7, labels: [1, 7, 10, 10] });
  assert.deepEqual(calls.at(-1), { rows: 2, scale: 2.7, labels: [3, 10] });
});

test("a guidance interval guides only the steps whose original timestep is inside it; the draws do not change", () => {
  const diffusion = GaussianDiffusion.create({ respacing: 10 });
  const scalesOf = (interval?: [number, number]) => {
    const scales: number[] = [];
    const model: DiffusionModel = {
      forward: standin.forward,
      forwardWithCfg(x, t, y, scale) {
        scales.push(scale);
        return cfgForward(standin, x, t, y, scale);
      },
    };
    const z = sample(diffusion, model, [1, 2], spec.shape, {
      cfgScale: 3,
      nullClass: 10,
      guidanceInterval: interval,
      generator: new torch.Generator(5),
    });
    return { scales, z };
  };
  // Respaced to 10 steps, the loop visits original timesteps 999, 888, ..., 0 (diffusion.timestepMap, last first).
  const map = [...diffusion.timestepMap].reverse();
  const mid = scalesOf([200, 700]);
  assert.deepEqual(
    mid.scales,
    map.map((t) => (t >= 200 && t <= 700 ? 3 : 1)),
  );
  assert.ok(mid.scales.includes(1) && mid.scales.includes(3), `the interval splits the steps: ${map}`);
  const all = scalesOf([0, 999]);
  const none = scalesOf();
  assert.deepEqual(all.scales, none.scales);
  assert.equal(relErr(all.z.toNumbers(), none.z.toNumbers()), 0, "an interval holding every step is no interval");
  // Same draws, other means on the guided steps.
  assert.ok(relErr(mid.z.toNumbers(), none.z.toNumbers()) > 0);
  assert.throws(() => scalesOf([700, 200]), InputError);
});

test("given initial noise replaces the first draw; the step noise continues from the generator", () => {
  const r = spec.runs.ddpm10_nocfg;
  const g = new torch.Generator(r.seed);
  const z = torch.randn([spec.labels.length, ...spec.shape], { generator: g });
  const x = sample(GaussianDiffusion.create({ respacing: r.S }), standin, spec.labels, spec.shape, {
    noise: z,
    generator: g,
  });
  assertClose(x, fx.get("ddpm10_nocfg")!, LOOP_TOL, "ddpm10_nocfg with given noise");
});

test("progress reports every step of every batch; each step frees what it made", () => {
  const seen: StepProgress[] = [];
  const inputs: torch.Tensor[] = [];
  const outputs: torch.Tensor[] = [];
  const model: DiffusionModel = {
    forward(x, t, y) {
      // When a step runs, the previous states are gone except the batch's initial noise, and so are earlier outputs.
      assert.ok(inputs.filter((s) => !s.isDisposed).length <= 1, "an old state is still alive");
      assert.ok(
        outputs.every((o) => o.isDisposed),
        "a model output outlived its step",
      );
      inputs.push(x);
      const out = standin.forward(x, t, y);
      outputs.push(out);
      return out;
    },
  };
  const d = GaussianDiffusion.create({ respacing: 10 });
  const x = sample(d, model, [0, 1, 2, 3, 4], [4, 2, 2], {
    batchSize: 2,
    generator: new torch.Generator(3),
    onStep: (p) => seen.push(p),
  });
  assert.deepEqual(x.shape, [5, 4, 2, 2]);
  assert.equal(seen.length, 3 * 10);
  assert.deepEqual(seen[0], { batch: 0, batches: 3, step: 1, steps: 10, size: 2 });
  assert.deepEqual(seen.at(-1), { batch: 2, batches: 3, step: 10, steps: 10, size: 1 });
  assert.equal(inputs.length, 30);
  assert.ok(
    inputs.every((s) => s.isDisposed) && outputs.every((o) => o.isDisposed),
    "a step's tensors outlived the loop",
  );
});

test("bad sampling requests are input errors", () => {
  const d = GaussianDiffusion.create({ respacing: 10 });
  assert.throws(() => sample(d, standin, [1], [4, 2, 2], { cfgScale: 4 }), /nullClass/);
  assert.throws(() => sample(d, standin, [], [4, 2, 2]), InputError);
  assert.throws(() => sample(d, standin, [1], [4, 2, 2], { batchSize: 0 }), /batch size/);
  assert.throws(() => sample(d, standin, [1, 2], [4, 2, 2], { noise: torch.zeros([1, 4, 2, 2]) }), /does not match/);
  assert.throws(() => sample(d, standin, [1], [4, 2, 2], { sampler: "euler" as "ddpm" }), /unknown sampler/);
});
