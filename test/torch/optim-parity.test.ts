// PyTorch parity of the optimisers: the trajectories of tools/reference/optim_fixtures.py (a tiny MLP, 20 steps per
// configuration) must match after every step at rel err <= 1e-6, our stateDict() after 10 steps must hold PyTorch's
// state, and an optimiser restored from it must continue on the same trajectory.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, test } from "node:test";
import { loadSafetensors } from "../../src/io/safetensors.js";
import * as torch from "../../src/torch/index.js";
import { fixture, relErr } from "../helpers/fixtures.js";

type Tensor = torch.Tensor;
type Kind = "sgd" | "adam" | "adamw";
type Group = { params: string[] } & Record<string, unknown>;
interface Fixture {
  steps: number;
  save_at: number;
  params: string[];
  configs: Record<string, { kind: Kind; groups: Group[] }>;
}

const TOL = 1e-6;
const spec = JSON.parse(readFileSync(fixture("torch", "optim.json"), "utf8")) as Fixture;
const stored = loadSafetensors(fixture("torch", "optim.safetensors"));
const get = (key: string) => {
  const t = stored.get(key);
  assert.ok(t, `fixture has no ${key}`);
  return t;
};
const [x, y] = [get("data/x"), get("data/y")];

// torch.optim's hyperparameter names and ours.
const OPTION_NAMES: Record<string, string> = {
  lr: "lr",
  momentum: "momentum",
  dampening: "dampening",
  weight_decay: "weightDecay",
  nesterov: "nesterov",
  betas: "betas",
  eps: "eps",
  amsgrad: "amsgrad",
};
function options(g: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(g).map(([k, v]) => {
      assert.ok(k in OPTION_NAMES, `unknown hyperparameter ${k}`);
      return [OPTION_NAMES[k], v];
    }),
  );
}

type Params = Record<string, Tensor>;
/** Our optimiser for a configuration; `hyper` false builds the groups with placeholder hyperparameters only. */
function makeOptimizer(kind: Kind, groups: Group[], p: Params, hyper = true): torch.Optimizer<{ lr: number }> {
  const gs = groups.map(({ params, ...h }) => ({
    ...(hyper ? options(h) : { lr: 1 }),
    params: params.map((k) => p[k]),
  }));
  if (kind === "sgd") return new torch.SGD(gs as torch.ParamGroup<torch.SGDOptions>[], { lr: 1 });
  const Cls = kind === "adam" ? torch.Adam : torch.AdamW;
  return new Cls(gs as torch.ParamGroup<torch.AdamOptions>[]);
}

const leaves = (src: (k: string) => Tensor): Params =>
  Object.fromEntries(spec.params.map((k) => [k, torch.keep(src(k).clone().requiresGrad_(true))]));

function step(opt: torch.Optimizer<{ lr: number }>, p: Params): void {
  torch.tidy(() => {
    opt.zeroGrad();
    const h = torch.tanh(torch.F.linear(x, p["fc1.weight"], p["fc1.bias"]));
    torch.F.mseLoss(torch.F.linear(h, p["fc2.weight"], p["fc2.bias"]), y).backward();
    opt.step();
  });
}

const maxErr = new Map<string, number>();
function check(actual: Tensor, expected: Tensor, group: string, what: string): void {
  assert.deepEqual(actual.shape, expected.shape, `${what}: shape`);
  const e = relErr(actual.toFloat64Array(), expected.toFloat64Array());
  maxErr.set(group, Math.max(maxErr.get(group) ?? 0, e));
  assert.ok(e <= TOL, `${what}: rel err ${e.toExponential(3)} > ${TOL}`);
}
/** Parameters after steps from..to equal PyTorch's. */
function run(
  name: string,
  opt: torch.Optimizer<{ lr: number }>,
  p: Params,
  from: number,
  to: number,
  group: string,
): void {
  for (let s = from; s <= to; s++) {
    step(opt, p);
    for (const k of spec.params) check(p[k], get(`${name}/step${s}/${k}`), group, `step ${s} ${k}`);
  }
}

for (const [name, { kind, groups }] of Object.entries(spec.configs)) {
  test(`${name}: ${spec.steps} steps match PyTorch after every step`, () => {
    const p = leaves((k) => get(`init/${k}`));
    run(name, makeOptimizer(kind, groups, p), p, 1, spec.steps, kind);
    torch.disposeAll(p);
  });

  test(`${name}: stateDict after ${spec.save_at} steps holds PyTorch's state; a restored optimiser continues the trajectory`, () => {
    const p = leaves((k) => get(`init/${k}`));
    const first = makeOptimizer(kind, groups, p);
    run(name, first, p, 1, spec.save_at, kind);
    const sd = first.stateDict();

    // The state, keyed by parameter index over the groups as torch.optim's state_dict.
    const prefix = `${name}/state${spec.save_at}/`;
    const expectedKeys = [...stored.keys()].filter((k) => k.startsWith(prefix)).map((k) => k.slice(prefix.length));
    const ourKeys = Object.entries(sd.state).flatMap(([i, s]) => Object.keys(s).map((key) => `${i}/${key}`));
    assert.deepEqual(ourKeys.sort(), expectedKeys.sort(), "state entries");
    for (const key of expectedKeys) {
      const [i, field] = key.split("/");
      const ours = sd.state[Number(i)][field];
      if (typeof ours === "number") assert.equal(ours, get(prefix + key).item(), key);
      else check(ours, get(prefix + key), `${kind} state`, key);
    }

    // Fresh parameters and an optimiser built with placeholder hyperparameters: loading restores both.
    const q = leaves((k) => p[k].detach());
    const second = makeOptimizer(kind, groups, q, false);
    second.loadStateDict(sd);
    const hyper = (o: torch.Optimizer<{ lr: number }>) =>
      o.paramGroups.map(({ params, ...h }) => ({ ...h, n: params.length }));
    assert.deepEqual(hyper(second), hyper(first));
    // The restored state must be a copy: wiping the saved tensors may not change the continuation.
    for (const s of Object.values(sd.state)) for (const v of Object.values(s)) if (typeof v !== "number") v.fill_(0);
    run(name, second, q, spec.save_at + 1, spec.steps, kind);
    torch.disposeAll([p, q]);
  });
}

after(() => {
  const rows = [...maxErr].map(([k, e]) => `${k.padEnd(12)} ${e.toExponential(2)}`);
  console.log(
    `optimiser parity, max rel err (parameters over all steps; state after ${spec.save_at} steps):\n${rows.join("\n")}`,
  );
});
