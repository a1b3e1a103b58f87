// `cao2 train minimax` end to end on tiny random models and a small Fashion-MNIST subset (slow: each run spawns the
// CLI): a run killed with SIGKILL and resumed ends in the same bytes (model, EMA, optimiser, memories, generator) as
// an uninterrupted one; the finished model is a DiT with gammas that trained; data of another class count is refused.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import { loadSafetensors } from "../../src/io/safetensors.js";
import { createAutoencoderKL } from "../../src/models/autoencoder.js";
import { createDiT } from "../../src/models/dit.js";
import { readModelMeta, saveModel } from "../../src/models/saved.js";
import { Generator, noGrad } from "../../src/torch/index.js";
import { ROOT } from "../helpers/fixtures.js";
import { waitFor } from "../helpers/wait.js";

const CLI = join(ROOT, "dist", "src", "cli", "main.js");
const ENV = { ...process.env, CI: "true" };
const run = (argv: string[]) => spawnSync(process.execPath, [CLI, ...argv], { encoding: "utf8", env: ENV });
let dir: string;

/** A plain (gamma-free) DiT of `classes` classes on 4x4x4 latents and an autoencoder of 16x16 grey images. */
function makeModels(classes: number): { dit: string; ae: string } {
  const dit = createDiT(
    {
      inputSize: 4,
      inChannels: 4,
      numClasses: classes,
      patchSize: 2,
      depth: 2,
      hiddenSize: 32,
      numHeads: 2,
      learnSigma: true,
    },
    { generator: new Generator(1) },
  );
  noGrad(() => {
    for (const p of dit.parameters()) p.add_(0.02);
  });
  const ae = createAutoencoderKL(
    {
      inChannels: 1,
      outChannels: 1,
      blockOutChannels: [8, 8, 8],
      layersPerBlock: 1,
      latentChannels: 4,
      normNumGroups: 4,
      scalingFactor: 1,
    },
    { generator: new Generator(2) },
  );
  const paths = { dit: join(dir, `dit${classes}.safetensors`), ae: join(dir, "ae.safetensors") };
  saveModel(paths.dit, dit, {
    kind: "dit",
    config: dit.config,
    classes: Array.from({ length: classes }, (_, i) => `c${i}`),
  });
  saveModel(paths.ae, ae, { kind: "autoencoder", config: ae.config, scalingFactor: 1.5 });
  return paths;
}

const args = (m: { dit: string; ae: string }, out: string, more: string[] = []) => [
  "train",
  "minimax",
  "--init",
  m.dit,
  "--autoencoder",
  m.ae,
  "--out",
  out,
  "--total-steps",
  "150",
  "--batch-size",
  "4",
  "--memory-size",
  "3",
  "--checkpoint-every",
  "3",
  "--max-per-class",
  "6",
  "--val-per-class",
  "2",
  "--threads",
  "1",
  ...more,
];

/** A file's bytes, as a digest (a mismatch then reads as two hashes, not two megabytes). */
const bytes = (path: string) => createHash("sha256").update(readFileSync(path)).digest("hex");

describe("cao2 train minimax end to end (slow)", () => {
  let models: { dit: string; ae: string };
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "cao2-minimax-"));
    models = makeModels(10);
  });

  test("a run killed with SIGKILL and resumed reaches the bytes of an uninterrupted run", async () => {
    const full = join(dir, "full");
    let r = run(args(models, full));
    assert.equal(r.status, 0, r.stderr);

    const out = join(dir, "killed");
    const child = spawn(process.execPath, [CLI, ...args(models, out)], { stdio: "ignore", env: ENV });
    const exit = new Promise<string | null>((res) => child.on("exit", (_code, sig) => res(sig)));
    await waitFor(() => existsSync(join(out, "state.safetensors")), child, 120_000, 10);
    child.kill("SIGKILL");
    assert.equal(await exit, "SIGKILL");
    assert.ok(!existsSync(join(out, "model.safetensors")), "killed before the end");
    r = run(args(models, out, ["--resume"]));
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /resumed at step [1-9]\d*/);
    // state.safetensors holds the model, the EMA, the AdamW moments, the class memories and the generator state
    assert.equal(bytes(join(out, "state.safetensors")), bytes(join(full, "state.safetensors")));
    assert.equal(bytes(join(out, "model.safetensors")), bytes(join(full, "model.safetensors")));
    const logged = readFileSync(join(out, "log.jsonl"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l))
      .filter((x) => "loss" in x);
    assert.ok(
      logged.length > 0 && logged.every((x) => x.pos >= 0 && x.neg !== undefined),
      "the Minimax terms are logged",
    );

    // the finished model: the EMA of a DiT with gammas in its first block, which moved away from 1
    const meta = readModelMeta(join(full, "model.safetensors"));
    assert.ok(meta?.kind === "dit" && meta.config.gammaBlocks === 1, JSON.stringify(meta));
    const state = loadSafetensors(join(full, "state.safetensors"));
    assert.ok(
      state
        .get("model.blocks.0.gamma1")!
        .toNumbers()
        .some((v) => v !== 1),
      "the gammas trained",
    );
    assert.ok(state.has("extra.real.0") && state.has("extra.pseudo.0"), "the memories are saved");
  });

  test("data whose classes do not match the model's: one line, exit 2", () => {
    const five = makeModels(5);
    const r = run(args(five, join(dir, "five")));
    assert.equal(r.status, 2);
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    assert.match(r.stderr, /--data has 10 classes but the DiT was trained for 5/);
  });
});
