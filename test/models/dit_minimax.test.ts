// DiT with the DiffFit scales of Minimax fine-tuning (docs/minimax.md): parity with our PyTorch reference
// (tools/reference/minimax_dit_fixtures.py: gammas at random values in blocks 0-1 of 4), key layout and recognition,
// plain checkpoints into a gamma model, the trainable subset, and cao2 model files that record the layout.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { loadDiT } from "../../src/distill/models.js";
import { InputError } from "../../src/errors.js";
import { ArchitectureError, guessArchitecture, requireArchitecture } from "../../src/io/architecture.js";
import { loadStateDict, openCheckpoint } from "../../src/io/checkpoint.js";
import { loadSafetensors, saveSafetensors } from "../../src/io/safetensors.js";
import { minimaxGammaBlocks } from "../../src/io/dit-layout.js";
import { diffFitParameters, isDiffFitTrainable } from "../../src/models/difffit.js";
import { createDiT, type DiTConfig } from "../../src/models/dit.js";
import { StateDictError } from "../../src/io/state-dict.js";
import { loadSavedModel, saveModel } from "../../src/models/saved.js";
import * as torch from "../../src/torch/index.js";
import { ditConfigFromFixture } from "../helpers/dit-small.js";
import { assertClose, fixture } from "../helpers/fixtures.js";

const ref = JSON.parse(readFileSync(fixture("models", "minimax_small.json"), "utf8"));
const CONFIG: DiTConfig = ditConfigFromFixture(ref);
const H = CONFIG.hiddenSize;
const PT = fixture("models", "minimax_small.pt");
const io = loadSafetensors(fixture("models", "minimax_small_io.safetensors"));
const get = (k: string) => io.get(k) ?? assert.fail(`fixture tensor ${k}`);
const dir = mkdtempSync(join(tmpdir(), "cao2-minimax-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const entry = (name: "ema" | "model") => loadStateDict(PT, { unwrap: name });
const shapes = (sd: ReadonlyMap<string, torch.Tensor>) => new Map([...sd].map(([k, t]) => [k, t.shape]));
const minimax = (sd = entry("ema")) => {
  const m = createDiT(CONFIG, { init: "zeros" });
  m.loadStateDict(sd);
  return m.eval();
};

test("the reference's layout: gammas in the first half of the blocks, the fixture's gammas are not ones", () => {
  assert.equal(CONFIG.gammaBlocks, minimaxGammaBlocks(CONFIG.depth));
  assert.deepEqual(ref.use_gamma, [true, true, false, false]);
  const sd = entry("ema");
  const gammas = [...sd.keys()].filter((k) => k.includes("gamma")).sort();
  assert.deepEqual(gammas, [
    "blocks.0.attn.gamma1",
    "blocks.0.attn.gamma2",
    "blocks.0.gamma1",
    "blocks.0.gamma2",
    "blocks.1.attn.gamma1",
    "blocks.1.attn.gamma2",
    "blocks.1.gamma1",
    "blocks.1.gamma2",
  ]);
  for (const k of gammas)
    assert.ok(torch.tidy(() => sd.get(k)!.sub(1).abs().max().item()) > 0.3, `${k} differs from 1`);
  // Our model has exactly the checkpoint's keys and shapes.
  const own = createDiT(CONFIG, { init: "zeros" }).stateDict();
  assert.deepEqual([...own.keys()].sort(), [...sd.keys()].sort());
  for (const [k, t] of own) assert.deepEqual(t.shape, sd.get(k)!.shape, k);
  assert.deepEqual(own.get("blocks.1.attn.gamma1")!.shape, [3 * H]);
});

test("forward and CFG forward match PyTorch with random gammas, for the ema and the model entry", () => {
  for (const name of ["ema", "model"] as const) {
    const m = minimax(entry(name));
    torch.noGrad(() => {
      assertClose(m.forward(get("x"), get("t"), get("y")), get(`${name}_out`), 1e-5, `${name} forward`);
      assertClose(
        m.forwardWithCfg(get("x"), get("t_cfg"), get("y_cfg"), 4.0),
        get(`${name}_cfg`),
        1e-5,
        `${name} forward_with_cfg`,
      );
    });
  }
  // The two entries differ, so the check above tells them apart.
  assert.ok(torch.tidy(() => get("ema_out").sub(get("model_out")).abs().max().item()) > 1e-2);
});

test("every gamma is used where the reference uses it: setting any one of them to 1 changes the output", () => {
  const m = minimax();
  const sd = m.stateDict();
  torch.noGrad(() => {
    const base = m.forward(get("x"), get("t"), get("y"));
    for (const k of [...sd.keys()].filter((k) => k.includes("gamma"))) {
      const g = sd.get(k)!;
      const saved = g.clone();
      g.fill_(1);
      const diff = torch.tidy(() => m.forward(get("x"), get("t"), get("y")).sub(base).abs().max().item());
      g.copy_(saved);
      assert.ok(diff > 1e-4, `${k}: output unchanged (${diff})`);
    }
  });
});

test("gammas start at 1 (also without initialisation), and then the model is the plain DiT", () => {
  const ema = entry("ema");
  const plainSd = new Map([...ema].filter(([k]) => !k.includes("gamma")));
  const plain = createDiT({ ...CONFIG, gammaBlocks: 0 }, { init: "zeros" });
  plain.loadStateDict(plainSd);
  plain.eval();
  for (const init of ["random", "zeros"] as const) {
    const m = createDiT(CONFIG, { init });
    for (const [k, t] of m.stateDict())
      if (k.includes("gamma"))
        assert.equal(
          torch.tidy(() => t.sub(1).abs().max().item()),
          0,
          `${k} (init ${init})`,
        );
  }
  // A plain checkpoint loads into the Minimax model only when asked; its gammas are then 1 (set, not left over).
  const m = minimax();
  assert.throws(
    () => m.loadStateDict(plainSd),
    (e: unknown) => e instanceof StateDictError && /missing keys: blocks\.0\.attn\.gamma1/.test(e.message),
  );
  const report = m.loadStateDict(plainSd, { gammasFromPlain: true });
  assert.deepEqual(report, { missing: [], unexpected: [] });
  for (const [k, t] of m.stateDict())
    if (k.includes("gamma"))
      assert.equal(
        torch.tidy(() => t.sub(1).abs().max().item()),
        0,
        k,
      );
  torch.noGrad(() =>
    assert.ok(torch.equal(m.forward(get("x"), get("t"), get("y")), plain.forward(get("x"), get("t"), get("y")))),
  );
  // gammasFromPlain does not excuse a partial set of gammas.
  const partial = new Map([...ema].filter(([k]) => k !== "blocks.1.gamma2"));
  assert.throws(() => m.loadStateDict(partial, { gammasFromPlain: true }), /missing keys: blocks\.1\.gamma2$/);
});

test("gammaBlocks other than 0 or depth/2 is an invalid configuration", () => {
  assert.throws(
    () => createDiT({ ...CONFIG, gammaBlocks: 1 }),
    (e: unknown) =>
      e instanceof InputError &&
      /gammaBlocks must be 0 \(plain DiT\) or 2 \(Minimax: the first half of 4 blocks\), got 1/.test(e.message),
  );
  assert.throws(() => createDiT({ ...CONFIG, gammaBlocks: 4 }), /got 4/);
  assert.equal(minimaxGammaBlocks(28), 14);
  assert.equal(minimaxGammaBlocks(5), 2);
});

test("the trainable subset: biases, gammas and the label table; everything else frozen", () => {
  for (const k of [
    "blocks.3.attn.qkv.bias",
    "blocks.0.gamma1",
    "blocks.0.attn.gamma2",
    "y_embedder.embedding_table.weight",
    "final_layer.norm_final.weight",
  ])
    assert.ok(isDiffFitTrainable(k), k);
  for (const k of [
    "blocks.0.attn.qkv.weight",
    "blocks.2.adaLN_modulation.1.weight",
    "x_embedder.proj.weight",
    "t_embedder.mlp.0.weight",
    "pos_embed",
  ])
    assert.ok(!isDiffFitTrainable(k), k);
  const m = createDiT(CONFIG, { init: "zeros" });
  const subset = diffFitParameters(m);
  const expected = [...m.namedParameters().keys()].filter(
    (k) => k.endsWith(".bias") || /gamma[12]$/.test(k) || k === "y_embedder.embedding_table.weight",
  );
  assert.deepEqual([...subset.keys()].sort(), expected.sort());
  // 2 blocks x 4 gammas, 4 blocks x 5 biases (qkv, proj, fc1, fc2, adaLN), patch/timestep(2)/final(2) biases, the table.
  assert.equal(subset.size, 8 + 20 + 5 + 1);
  assert.ok(!subset.has("pos_embed"));
});

test("architecture recognition reads the gamma layout off the keys, and refuses gammas that do not fit", () => {
  const sd = entry("ema");
  const g = requireArchitecture(shapes(sd), "dit", "minimax.pt");
  assert.equal(g.config.gammaBlocks, 2);
  assert.match(g.name, /with Minimax gammas$/);
  assert.equal(g.problem, undefined);
  const plain = new Map([...shapes(sd)].filter(([k]) => !k.includes("gamma")));
  assert.equal(guessArchitecture(plain)?.config.gammaBlocks, 0);
  const bad = (edit: (m: Map<string, readonly number[]>) => void, pattern: RegExp) => {
    const m = shapes(sd);
    edit(m);
    const problem = guessArchitecture(m)?.problem ?? "";
    assert.match(problem, /^Minimax gammas do not match the DiT \(depth 4, hidden 16: expected in blocks 0-1\): /);
    assert.match(problem, pattern);
    assert.throws(
      () => requireArchitecture(m, "dit", "bad.pt"),
      (e: unknown) => e instanceof ArchitectureError && e.message === `bad.pt: ${problem}` && !problem.includes("\n"),
    );
  };
  bad((m) => m.set("blocks.0.attn.gamma1", [H]), /blocks\.0\.attn\.gamma1 is \[16\], expected \[48\]/);
  bad((m) => m.set("blocks.2.gamma1", [H]), /gammas beyond the first half: blocks\.2\.gamma1$/);
  bad((m) => m.delete("blocks.1.attn.gamma2"), /missing blocks\.1\.attn\.gamma2$/);
  bad((m) => {
    m.set("blocks.0.gamma2", [H + 1]);
    m.delete("blocks.1.gamma1");
    for (let b = 2; b < 4; b++)
      for (const g of ["gamma1", "gamma2", "attn.gamma1", "attn.gamma2"]) m.set(`blocks.${b}.${g}`, [H]);
  }, /: blocks\.0\.gamma2 is \[17\], expected \[16\]; gammas beyond the first half: blocks\.2\.gamma1, blocks\.2\.gamma2, blocks\.2\.attn\.gamma1, \.\.\. \(8 in all\); missing blocks\.1\.gamma1$/);
});

test("loadDiT follows the file: a Minimax state dict builds a gamma model, a plain one a plain model unless asked", () => {
  const emaPath = join(dir, "ema.safetensors");
  saveSafetensors(emaPath, entry("ema"));
  // Depth 4 / hidden 16 is none of DiT-S/B/L/XL, so the head count is given.
  const o = { device: "cpu", numHeads: CONFIG.numHeads };
  const m = loadDiT(emaPath, o).eval();
  assert.equal(m.config.gammaBlocks, 2);
  torch.noGrad(() => assertClose(m.forward(get("x"), get("t"), get("y")), get("ema_out"), 1e-5, "loadDiT forward"));

  const plainPath = join(dir, "plain.safetensors");
  saveSafetensors(plainPath, new Map([...entry("ema")].filter(([k]) => !k.includes("gamma"))));
  assert.equal(loadDiT(plainPath, o).config.gammaBlocks, 0);
  const asked = loadDiT(plainPath, { ...o, minimaxGammas: true });
  assert.equal(asked.config.gammaBlocks, 2);
  assert.equal(
    asked
      .stateDict()
      .get("blocks.1.gamma2")!
      .toNumbers()
      .every((v) => v === 1),
    true,
  );

  const wrongPath = join(dir, "wrong.safetensors");
  saveSafetensors(wrongPath, new Map([...entry("ema")].filter(([k]) => k !== "blocks.0.gamma1")));
  assert.throws(
    () => loadDiT(wrongPath, o),
    (e: unknown) =>
      e instanceof InputError &&
      /wrong\.safetensors: Minimax gammas do not match .*missing blocks\.0\.gamma1$/.test(e.message),
  );
});

test("loadDiT reads the Minimax .pt: 'ema' by default, 'model' when asked, a missing entry named with those present", () => {
  const o = { device: "cpu", numHeads: CONFIG.numHeads };
  for (const [unwrap, name] of [
    [undefined, "ema"],
    ["ema", "ema"],
    ["model", "model"],
  ] as const) {
    const m = loadDiT(PT, { ...o, ditUnwrap: unwrap }).eval();
    assert.equal(m.config.gammaBlocks, 2);
    torch.noGrad(() => {
      assertClose(m.forward(get("x"), get("t"), get("y")), get(`${name}_out`), 1e-5, `unwrap ${unwrap}: forward`);
      assertClose(
        m.forwardWithCfg(get("x"), get("t_cfg"), get("y_cfg"), 4.0),
        get(`${name}_cfg`),
        1e-5,
        `unwrap ${unwrap}: forward_with_cfg`,
      );
    });
  }
  assert.throws(
    () => loadDiT(PT, { ...o, ditUnwrap: "teacher" }),
    (e: unknown) =>
      e instanceof InputError &&
      e.message ===
        `${PT}: no entry 'teacher' to take the state dict from (top-level entries: 'model', 'ema', 'opt', 'args')`,
  );
});

test("a cao2 model file records gammaBlocks and rebuilds the Minimax model from it", () => {
  const path = join(dir, "saved.safetensors");
  saveModel(path, minimax(), { kind: "dit", config: CONFIG, classes: [] });
  const { model, meta } = loadSavedModel(path, "dit");
  assert.equal(meta.config.gammaBlocks, 2);
  const back = model as ReturnType<typeof createDiT>;
  torch.noGrad(() =>
    assertClose(back.eval().forward(get("x"), get("t"), get("y")), get("ema_out"), 1e-5, "cao2 file forward"),
  );
  // A file written before gammaBlocks existed is a plain DiT.
  const old = join(dir, "old.safetensors");
  const plain = createDiT({ ...CONFIG, gammaBlocks: 0 }, { init: "zeros" });
  const { gammaBlocks: _, ...oldConfig } = CONFIG;
  saveSafetensors(old, plain.stateDict(), { cao2: JSON.stringify({ kind: "dit", config: oldConfig, classes: [] }) });
  assert.equal(loadDiT(old, { device: "cpu" }).config.gammaBlocks, 0);
  assert.equal(openCheckpoint(old).tensors.has("blocks.0.gamma1"), false);
});
