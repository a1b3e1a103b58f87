// DiT parity with our PyTorch reference (tools/reference/models_dit.py), checkpoint names, loading and initialisation.
import assert from "node:assert/strict";
import { readFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { InputError } from "../../src/errors.js";
import { loadSafetensors, saveSafetensors } from "../../src/io/safetensors.js";
import { createDiT, DIT_DEFAULTS, type DiT, ditConfig } from "../../src/models/dit.js";
import { fromDiffusers, isDiffusersNaming } from "../../src/models/dit-keys.js";
import { StateDictError } from "../../src/io/state-dict.js";
import * as torch from "../../src/torch/index.js";
import { SMALL_DIT, smallDiT, smallDiTWeights } from "../helpers/dit-small.js";
import { assertClose, fixture } from "../helpers/fixtures.js";

const SMALL = SMALL_DIT;
const weights = smallDiTWeights();
const io = loadSafetensors(fixture("models", "dit_small_io.safetensors"));
const get = (k: string) => {
  const t = io.get(k);
  assert.ok(t, `fixture tensor ${k}`);
  return t;
};

const small = (sd = weights): DiT => smallDiT(sd);

test("the fixed position embedding equals the reference's 2-D sin-cos table", () => {
  const m = createDiT(SMALL);
  assertClose(m.posEmbed, weights.get("pos_embed")!, 1e-6, "pos_embed");
});

test("forward matches PyTorch in eval mode (int64 and float timesteps)", () => {
  const m = small();
  torch.noGrad(() => {
    assertClose(m.forward(get("x"), get("t"), get("y")), get("out"), 1e-5, "forward");
    assertClose(m.forward(get("x"), get("t").float(), get("y")), get("out"), 1e-5, "forward, float t");
  });
});

test("forwardWithCfg matches the reference forward_with_cfg, guiding 3 channels or all eps channels", () => {
  const m = small();
  torch.noGrad(() => {
    const x = get("x");
    assertClose(m.forwardWithCfg(x, get("t_cfg"), get("y_cfg"), 4.0), get("cfg3"), 1e-5, "cfg, 3 channels");
    assertClose(
      m.forwardWithCfg(x, get("t_cfg"), get("y_cfg"), 4.0, { guidedChannels: "all" }),
      get("cfg_all"),
      1e-5,
      "cfg, all",
    );
  });
});

test("training mode with forced label drops matches PyTorch", () => {
  const m = small().train();
  torch.noGrad(() => {
    const out = m.forward(get("x"), get("t"), get("y"), { forceDropIds: get("force_drop_ids") });
    assertClose(out, get("train_drop"), 1e-5, "train, forced drops");
    const fromArray = m.forward(get("x"), get("t"), get("y"), { forceDropIds: [1, 0, 1, 0] });
    assertClose(fromArray, get("train_drop"), 1e-5, "train, forced drops as an array");
  });
});

test("random label dropout in training mode draws rand(N) < p from the given generator", () => {
  const m = small().train();
  torch.noGrad(() => {
    // A seed whose first draws drop some labels and keep others, so the check covers both.
    let seed = 0;
    let drops: number[] = [];
    for (; seed < 1000; seed++) {
      drops = torch.lt(torch.rand([4], { generator: new torch.Generator(seed) }), SMALL.classDropoutProb).toNumbers();
      if (drops.some((d) => d) && drops.some((d) => !d)) break;
    }
    const random = m.forward(get("x"), get("t"), get("y"), { generator: new torch.Generator(seed) });
    const forced = m.eval().forward(get("x"), get("t"), get("y"), { forceDropIds: drops });
    assert.ok(torch.equal(random, forced), `seed ${seed}: drops ${drops}`);
  });
});

test("gradients of an eps-matching loss match PyTorch (input and weights)", () => {
  const m = small();
  const x = get("x").clone().requiresGrad_(true);
  const loss = torch.tidy(() => m.forward(x, get("t"), get("y")).narrow(1, 0, 4).sub(get("target")).pow(2).mean());
  assertClose(loss.reshape(1), get("loss"), 1e-5, "loss");
  loss.backward();
  assertClose(x.grad!, get("grad_x"), 1e-5, "d loss / d x");
  const sd = m.stateDict();
  assertClose(sd.get("blocks.1.attn.qkv.weight")!.grad!, get("grad_qkv"), 1e-5, "d loss / d qkv");
  assertClose(sd.get("y_embedder.embedding_table.weight")!.grad!, get("grad_table"), 1e-5, "d loss / d label table");
});

test('createDiT({ ...ditConfig("DiT-XL/2"), inputSize: 32 }) has the official checkpoint\'s 292 keys, shapes and 675,129,632 values', () => {
  const expected = JSON.parse(readFileSync(fixture("models", "dit_xl2_keys.json"), "utf8")) as {
    keys: Record<string, number[]>;
    numel: number;
  };
  // The meta device holds shapes only: the names and shapes are what is checked, without 2.7 GB of weights.
  const m = createDiT({ ...ditConfig("DiT-XL/2"), inputSize: 32 }, { init: "zeros", device: "meta" });
  const sd = m.stateDict();
  assert.deepEqual([...sd.keys()].sort(), Object.keys(expected.keys).sort());
  for (const [k, t] of sd) assert.deepEqual(t.shape, expected.keys[k], k);
  const numel = [...sd.values()].reduce((n, t) => n + t.numel, 0);
  assert.equal(sd.size, 292);
  assert.equal(numel, 675_129_632);
  assert.equal(numel, expected.numel);
  assert.equal(m.numParameters(), numel - sd.get("pos_embed")!.numel, "pos_embed is not trainable");
  torch.disposeAll(sd);
});

test("a state dict saved as safetensors loads into a fresh model with identical outputs", () => {
  const dir = mkdtempSync(join(tmpdir(), "dit-"));
  try {
    const a = createDiT(SMALL, { generator: new torch.Generator(1) });
    // Random values everywhere, so that every key matters for the comparison.
    torch.noGrad(() => {
      for (const t of a.parameters()) torch.normalInto(t, 0, 0.05, new torch.Generator(t.numel));
    });
    saveSafetensors(join(dir, "dit.safetensors"), a.stateDict());
    const b = createDiT(SMALL, { init: "zeros" });
    b.loadStateDict(loadSafetensors(join(dir, "dit.safetensors")));
    torch.noGrad(() => {
      a.eval();
      b.eval();
      const x = get("x");
      assert.ok(torch.equal(a.forward(x, get("t"), get("y")), b.forward(x, get("t"), get("y"))));
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("loading a checkpoint of another configuration names every mis-shaped key", () => {
  const other = createDiT({ ...SMALL, numClasses: 12, patchSize: 4 }, { init: "zeros" });
  let err: unknown;
  try {
    other.loadStateDict(weights);
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof StateDictError, String(err));
  assert.ok(err instanceof InputError);
  const names = err.report.mismatched.map((s) => s.split(":")[0]).sort();
  assert.deepEqual(names, [
    "final_layer.linear.bias",
    "final_layer.linear.weight",
    "pos_embed",
    "x_embedder.proj.weight",
    "y_embedder.embedding_table.weight",
  ]);
  assert.match(err.message, /y_embedder\.embedding_table\.weight: checkpoint \[11,64\] vs model \[13,64\]/);
});

test("diffusers' DiT names are detected and converted, giving the official model's outputs", () => {
  const diffusers = loadSafetensors(fixture("models", "dit_small_diffusers.safetensors"));
  assert.ok(isDiffusersNaming(diffusers));
  assert.ok(!isDiffusersNaming(weights));
  assert.ok(!diffusers.has("pos_embed"), "diffusers does not save pos_embed");
  const official = fromDiffusers(diffusers, { warn: (m) => assert.fail(m) });
  assert.deepEqual([...official.keys()].sort(), [...weights.keys()].filter((k) => k !== "pos_embed").sort());
  for (const [k, t] of official) assert.ok(torch.equal(t, weights.get(k)!), k);
  const m = small(diffusers);
  torch.noGrad(() =>
    assertClose(m.forward(get("x"), get("t"), get("y")), get("out"), 1e-5, "forward, diffusers weights"),
  );
  // The same through a "module." prefix.
  const prefixed = new Map([...diffusers].map(([k, v]) => [`module.${k}`, v]));
  createDiT(SMALL, { init: "zeros" }).loadStateDict(prefixed, { stripPrefix: "module." });
});

test("fromDiffusers warns when a block's embedder copy differs from block 0's", () => {
  const diffusers = loadSafetensors(fixture("models", "dit_small_diffusers.safetensors"));
  const key = "transformer_blocks.1.norm1.emb.class_embedder.embedding_table.weight";
  diffusers.set(key, diffusers.get(key)!.add(1));
  const warnings: string[] = [];
  const official = fromDiffusers(diffusers, { warn: (m) => warnings.push(m) });
  assert.equal(warnings.length, 1);
  assert.match(warnings[0], /transformer_blocks\.1\.norm1\.emb\.class_embedder/);
  assert.ok(
    torch.equal(official.get("y_embedder.embedding_table.weight")!, weights.get("y_embedder.embedding_table.weight")!),
    "block 0's is used",
  );
});

test("training-from-scratch init: adaLN-Zero and the final layer start at zero, the rest as the reference", () => {
  const m = createDiT(SMALL, { generator: new torch.Generator(0) });
  const sd = m.stateDict();
  const maxAbs = (k: string) => sd.get(k)!.abs().max().item();
  for (const k of [
    "blocks.0.adaLN_modulation.1.weight",
    "blocks.1.adaLN_modulation.1.bias",
    "final_layer.linear.weight",
    "final_layer.adaLN_modulation.1.weight",
  ]) {
    assert.equal(maxAbs(k), 0, k);
  }
  for (const k of ["blocks.0.attn.qkv.bias", "x_embedder.proj.bias", "t_embedder.mlp.0.bias"])
    assert.equal(maxAbs(k), 0, k);
  // xavier uniform: bound sqrt(6 / (fan_in + fan_out)); the patch embedding as a [hidden, C*p*p] matrix.
  const d = SMALL.hiddenSize;
  const cpp = SMALL.inChannels * SMALL.patchSize ** 2;
  const near = (v: number, bound: number) => v <= bound && v > 0.9 * bound;
  assert.ok(near(maxAbs("blocks.0.attn.qkv.weight"), Math.sqrt(6 / (d + 3 * d))));
  assert.ok(near(maxAbs("x_embedder.proj.weight"), Math.sqrt(6 / (d + cpp))));
  // N(0, 0.02) for the label table and the timestep MLP.
  for (const k of ["y_embedder.embedding_table.weight", "t_embedder.mlp.2.weight"]) {
    const std = torch.std(sd.get(k)!).item();
    assert.ok(Math.abs(std - 0.02) < 0.002, `${k} std ${std}`);
  }
  // Zero final layer: the untrained model predicts exactly zero.
  torch.noGrad(() => assert.equal(m.eval().forward(get("x"), get("t"), get("y")).abs().max().item(), 0));
});

test("bad inputs and configurations fail with clear errors", () => {
  const m = small();
  assert.throws(
    () => m.forward(torch.zeros([1, 4, 16, 16]), 10, torch.tensor([1], { dtype: "int64" })),
    /expected latents \[N, 4, 8, 8\]/,
  );
  assert.throws(
    () => m.forward(torch.zeros([1, 4, 8, 8]), 10, torch.tensor([11], { dtype: "int64" })),
    /class label 11 out of range 0\.\.10, 10 = null/,
  );
  assert.throws(
    () => m.forwardWithCfg(torch.zeros([3, 4, 8, 8]), 10, torch.tensor([1, 2, 10], { dtype: "int64" }), 4),
    /halves/,
  );
  assert.throws(() => createDiT("DiT-M/2"), InputError);
  assert.throws(() => createDiT({ ...SMALL, numHeads: 5 }), /hiddenSize 64 is not a multiple of numHeads 5/);
  for (const name of ["DiT-S/8", "DiT-S-8"]) {
    assert.deepEqual(createDiT({ ...ditConfig(name), inputSize: 16 }, { init: "zeros", device: "meta" }).config, {
      ...DIT_DEFAULTS,
      inputSize: 16,
      depth: 12,
      hiddenSize: 384,
      numHeads: 6,
      patchSize: 8,
    });
  }
});
