import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { InputError } from "../../src/errors.js";
import { SafetensorsFile, saveSafetensors } from "../../src/io/safetensors.js";
import { Linear } from "../../src/models/layers.js";
import { Model, Store, VarBuilder } from "../../src/models/module.js";
import * as torch from "../../src/torch/index.js";
import { trainLoop, type LoopOptions } from "../../src/train/loop.js";
import { Progress } from "../../src/util/progress.js";

class Tiny extends Model {
  readonly fc: Linear;
  constructor(seed: number) {
    const store = new Store("cpu", "float32", new torch.Generator(seed));
    super(store);
    this.fc = new Linear(new VarBuilder(store).pp("fc"), 3, 2);
  }
  forward(x: torch.Tensor) {
    return this.fc.forward(x);
  }
}

function setup() {
  const model = new Tiny(1);
  const ema = new Tiny(2);
  ema.loadStateDict(model.stateDict());
  const optimizer = new torch.Adam(model.parameters(), { lr: 0.05 });
  const noise = new torch.Generator(9);
  // Each step draws its batch from a generator whose state is checkpointed, like the recipes' data order.
  const step = () => {
    const x = torch.randn([4, 3], { generator: noise });
    const loss = torch.F.mseLoss(model.forward(x), x.narrow(1, 0, 2).mul(2));
    loss.backward();
    optimizer.step();
    optimizer.zeroGrad();
    return { loss: loss.item() };
  };
  return { parts: { model, ema, optimizer, generators: { noise } }, step };
}

const opts = (dir: string, steps: number, resume: boolean): LoopOptions => ({
  steps,
  checkpointEvery: 5,
  dir,
  logEvery: 1,
  resume,
  config: { lr: 0.05 },
  emaDecay: 0.9,
});

test("a run stopped at a checkpoint and resumed equals an uninterrupted run, and the log holds each step once", () => {
  const full = setup();
  const d1 = mkdtempSync(join(tmpdir(), "cao2-loop-"));
  trainLoop(full.parts, full.step, opts(d1, 12, false));

  const d2 = mkdtempSync(join(tmpdir(), "cao2-loop-"));
  const first = setup();
  trainLoop(first.parts, first.step, opts(d2, 7, false)); // saves at 5 and at 7
  // A crash after step 7's checkpoint; the next process resumes from it.
  const second = setup();
  trainLoop(second.parts, second.step, opts(d2, 12, true));

  for (const [k, v] of full.parts.model.stateDict())
    assert.deepEqual(second.parts.model.stateDict().get(k)!.toNumbers(), v.toNumbers(), k);
  for (const [k, v] of full.parts.ema.stateDict())
    assert.deepEqual(second.parts.ema.stateDict().get(k)!.toNumbers(), v.toNumbers(), `ema ${k}`);
  const steps = readFileSync(join(d2, "log.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l).step);
  assert.deepEqual(
    steps,
    Array.from({ length: 12 }, (_, i) => i + 1),
  );
});

test("an existing checkpoint is not overwritten without --resume, and settings must match on resume", () => {
  const d = mkdtempSync(join(tmpdir(), "cao2-loop-"));
  const a = setup();
  trainLoop(a.parts, a.step, opts(d, 5, false));
  const b = setup();
  assert.throws(() => trainLoop(b.parts, b.step, opts(d, 10, false)), /already exists: pass --resume/);
  assert.throws(
    () => trainLoop(b.parts, b.step, { ...opts(d, 10, true), config: { lr: 0.1 } }),
    /different settings \(lr: 0.05 -> 0.1\)/,
  );
});

test("a checkpoint saved before --precision existed resumes as fp32, and not at another precision", () => {
  const d = mkdtempSync(join(tmpdir(), "cao2-loop-"));
  const a = setup();
  trainLoop(a.parts, a.step, opts(d, 5, false)); // its config has no precision, as checkpoints before the flag
  const b = setup();
  trainLoop(b.parts, b.step, { ...opts(d, 7, true), config: { lr: 0.05, precision: "fp32" } });
  const c = setup();
  assert.throws(
    () => trainLoop(c.parts, c.step, { ...opts(d, 10, true), config: { lr: 0.05, precision: "bf16" } }),
    /different settings \(precision: "fp32" -> "bf16"\)/,
  );
});

/** A Progress whose lines are collected. */
function recorder() {
  const lines: string[] = [];
  const stream = { write: (s: string) => lines.push(s) > 0, isTTY: false } as unknown as NodeJS.WriteStream;
  return { progress: new Progress({ stream }), lines };
}

test("--resume without a checkpoint starts the run and says so; with one it continues and says from where", () => {
  const d = mkdtempSync(join(tmpdir(), "cao2-loop-"));
  const a = setup();
  const first = recorder();
  trainLoop(a.parts, a.step, { ...opts(d, 5, true), progress: first.progress });
  assert.ok(
    first.lines.some((l) => l.includes(`nothing to resume (no ${join(d, "state.safetensors")}): starting a new run`)),
    first.lines.join(""),
  );
  const b = setup();
  const second = recorder();
  trainLoop(b.parts, b.step, { ...opts(d, 8, true), progress: second.progress });
  assert.ok(
    second.lines.some((l) => l.includes("resumed at step 5")),
    second.lines.join(""),
  );
});

test("a corrupt training log or checkpoint metadata on --resume is one input error naming the file and the way out", () => {
  const d = mkdtempSync(join(tmpdir(), "cao2-loop-"));
  const a = setup();
  trainLoop(a.parts, a.step, opts(d, 5, false));
  const log = join(d, "log.jsonl");
  const good = readFileSync(log, "utf8");
  writeFileSync(log, good + '{"step": 6, "loss"\n');
  const b = setup();
  assert.throws(
    () => trainLoop(b.parts, b.step, opts(d, 10, true)),
    (e: unknown) =>
      e instanceof InputError &&
      e.message.startsWith(`${log}: corrupt training log (not JSON: `) &&
      e.message.endsWith("); delete it or its broken lines to resume (the checkpoint holds the training state)"),
  );
  writeFileSync(log, good);
  const state = join(d, "state.safetensors");
  const f = SafetensorsFile.open(state);
  const tensors = new Map(f.keys().map((k) => [k, f.get(k)]));
  const metadata = f.metadata;
  f.close();
  saveSafetensors(state, tensors, { ...metadata, optimizer: '{"paramGroups": [' });
  const c = setup();
  assert.throws(
    () => trainLoop(c.parts, c.step, opts(d, 10, true)),
    (e: unknown) =>
      e instanceof InputError &&
      e.message.startsWith(`${state} (metadata 'optimizer'): corrupt training checkpoint (not JSON: `) &&
      e.message.endsWith("); delete it to start the run again (or restore it from a copy)"),
  );
  saveSafetensors(state, tensors, { ...metadata, step: "five" });
  assert.throws(
    () => trainLoop(c.parts, c.step, opts(d, 10, true)),
    (e: unknown) =>
      e instanceof InputError &&
      e.message.includes(`${state}: corrupt training checkpoint (step 'five' is not a step count)`),
  );
});
