// Each training recipe runs a few steps on a small Fashion-MNIST subset through the CLI (slow), writes a loadable
// model, and continues with --resume.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { loadSafetensors } from "../../src/io/safetensors.js";
import { loadSelector } from "../../src/distill/models.js";
import { readModelMeta } from "../../src/models/saved.js";
import * as torch from "../../src/torch/index.js";
import { ROOT } from "../helpers/fixtures.js";

const CLI = join(ROOT, "dist", "src", "cli", "main.js");
const run = (argv: string[]) =>
  spawnSync(process.execPath, [CLI, ...argv], { encoding: "utf8", env: { ...process.env, CI: "true" } });
const SMALL = ["--max-per-class", "20", "--val-per-class", "4", "--threads", "2"];
const steps = (lines: string) =>
  lines
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l))
    .filter((r) => "loss" in r || "l1" in r)
    .map((r) => r.step);

describe("training recipes end to end (slow)", () => {
  const dir = mkdtempSync(join(tmpdir(), "cao2-train-"));

  test("classifier: a few steps, a model file with its preprocessing, then --resume continues", () => {
    const out = join(dir, "clf");
    let r = run([
      "train",
      "classifier",
      "--out",
      out,
      "--steps",
      "2",
      "--epochs",
      "1",
      "--batch-size",
      "16",
      "--checkpoint-every",
      "1",
      "--stem",
      "imagenet",
      ...SMALL,
    ]);
    assert.equal(r.status, 0, r.stderr);
    const meta = readModelMeta(join(out, "model.safetensors"));
    assert.equal(meta?.kind, "resnet");
    if (meta?.kind === "resnet") assert.equal(meta.preprocess.channels, 1);
    r = run([
      "train",
      "classifier",
      "--out",
      out,
      "--steps",
      "3",
      "--epochs",
      "1",
      "--batch-size",
      "16",
      "--stem",
      "imagenet",
      ...SMALL,
    ]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /already exists: pass --resume/);
    r = run([
      "train",
      "classifier",
      "--out",
      out,
      "--steps",
      "3",
      "--epochs",
      "1",
      "--batch-size",
      "16",
      "--stem",
      "imagenet",
      "--resume",
      ...SMALL,
    ]);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(steps(readFileSync(join(out, "log.jsonl"), "utf8")), [2, 3]);
    // --init starts a new schedule from those weights (0 steps: the model is the init's), and refuses another architecture
    const warm = join(dir, "warm");
    r = run([
      "train",
      "classifier",
      "--out",
      warm,
      "--init",
      join(out, "model.safetensors"),
      "--steps",
      "0",
      "--epochs",
      "1",
      "--batch-size",
      "16",
      "--stem",
      "imagenet",
      ...SMALL,
    ]);
    assert.equal(r.status, 0, r.stderr);
    const a = loadSafetensors(join(out, "model.safetensors"));
    const b = loadSafetensors(join(warm, "model.safetensors"));
    for (const [k, t] of a) assert.ok(torch.equal(t, b.get(k)!), k);
    r = run([
      "train",
      "classifier",
      "--out",
      join(dir, "warm2"),
      "--init",
      join(out, "model.safetensors"),
      "--steps",
      "0",
      "--stem",
      "cifar",
      ...SMALL,
    ]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /--init .*: its architecture .* differs/);
  });

  test("classifier --arch convnet3: a ConvNet-3 model file (instance norm by default)", () => {
    const out = join(dir, "convnet");
    const r = run([
      "train",
      "classifier",
      "--arch",
      "convnet3",
      "--out",
      out,
      "--steps",
      "2",
      "--epochs",
      "1",
      "--batch-size",
      "16",
      ...SMALL,
    ]);
    assert.equal(r.status, 0, r.stderr);
    const meta = readModelMeta(join(out, "model.safetensors"));
    assert.ok(
      meta?.kind === "convnet" &&
        meta.config.norm === "instance" &&
        meta.config.depth === 3 &&
        meta.config.width === 128,
    );
  });

  // The students added for the paper's tables train as classifiers too; each file is then usable as a selector.
  for (const [arch, kind, depth] of [
    ["mobilenet_v2", "mobilenet_v2", undefined],
    ["efficientnet_b0", "efficientnet_b0", undefined],
    ["resnetap10", "resnetap", 10],
    ["convnet4", "convnet", 4],
  ] as const) {
    test(`classifier --arch ${arch}: a model file of that architecture that loads as a selector`, () => {
      const out = join(dir, arch);
      const r = run([
        "train",
        "classifier",
        "--arch",
        arch,
        "--out",
        out,
        "--steps",
        "1",
        "--epochs",
        "1",
        "--batch-size",
        "8",
        ...SMALL,
      ]);
      assert.equal(r.status, 0, r.stderr);
      const file = join(out, "model.safetensors");
      const meta = readModelMeta(file);
      assert.equal(meta?.kind, kind);
      if (depth !== undefined) assert.equal((meta?.config as { depth?: number }).depth, depth);
      const { selector, preprocess } = loadSelector(file, { device: "cpu" });
      selector.eval();
      const logits = torch.noGrad(() =>
        selector.forward(torch.zeros([2, preprocess.channels, preprocess.size, preprocess.size])),
      );
      assert.deepEqual(logits.shape, [2, 10]);
      assert.ok([...logits.toFloat32Array()].every(Number.isFinite));
    });
  }

  test("--precision bf16: a classifier trains under autocast and its run keeps the precision; the autoencoder refuses it", () => {
    const out = join(dir, "clf-bf16");
    const common = ["train", "classifier", "--arch", "convnet3", "--out", out, "--epochs", "1", "--batch-size", "8"];
    const r = run([...common, "--steps", "1", "--precision", "bf16", ...SMALL]);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(existsSync(join(out, "model.safetensors")));
    // Continuing it in fp32 would mix two arithmetics in one run: refused, naming the setting.
    const mixed = run([...common, "--steps", "2", "--resume", ...SMALL]);
    assert.equal(mixed.status, 2, mixed.stderr);
    assert.match(mixed.stderr, /precision/);
    const ae = join(dir, "ae-bf16");
    const refused = run(["train", "autoencoder", "--out", ae, "--precision", "bf16", ...SMALL]);
    assert.equal(refused.status, 2);
    assert.match(refused.stderr, /trains in fp32 only \(--precision bf16 was given\)/);
    assert.ok(!existsSync(ae), "nothing created");
  });

  test("autoencoder then DiT on its latents", () => {
    const ae = join(dir, "ae");
    let r = run([
      "train",
      "autoencoder",
      "--out",
      ae,
      "--steps",
      "2",
      "--batch-size",
      "8",
      "--channels",
      "8,8,8",
      ...SMALL,
    ]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /latent scale/);
    const meta = readModelMeta(join(ae, "model.safetensors"));
    assert.equal(meta?.kind, "autoencoder");
    // A decoder-only fine-tune changes the decoder side and nothing that makes the latents, scaling factor included
    const dec = join(dir, "ae-dec");
    r = run([
      "train",
      "autoencoder",
      "--init",
      join(ae, "model.safetensors"),
      "--decoder-only",
      "--out",
      dec,
      "--steps",
      "2",
      "--batch-size",
      "8",
      "--channels",
      "8,8,8",
      ...SMALL,
    ]);
    assert.equal(r.status, 0, r.stderr);
    const before = loadSafetensors(join(ae, "model.safetensors"));
    const after = loadSafetensors(join(dec, "model.safetensors"));
    let changed = 0;
    for (const [k, t] of before) {
      const decoderSide = k.startsWith("decoder.") || k.startsWith("post_quant_conv.");
      if (!decoderSide) assert.ok(torch.equal(t, after.get(k)!), `${k} must not change`);
      else if (!torch.equal(t, after.get(k)!)) changed++;
    }
    assert.ok(changed > 0, "the decoder trained");
    const decMeta = readModelMeta(join(dec, "model.safetensors"));
    assert.ok(
      decMeta?.kind === "autoencoder" && meta?.kind === "autoencoder" && decMeta.scalingFactor === meta.scalingFactor,
    );
    // A perceptual term from the ConvNet-3 above joins the loss and its log
    const per = join(dir, "ae-per");
    r = run([
      "train",
      "autoencoder",
      "--init",
      join(ae, "model.safetensors"),
      "--decoder-only",
      "--perceptual",
      join(dir, "convnet", "model.safetensors"),
      "--out",
      per,
      "--steps",
      "2",
      "--batch-size",
      "8",
      "--channels",
      "8,8,8",
      ...SMALL,
    ]);
    assert.equal(r.status, 0, r.stderr);
    const logged = readFileSync(join(per, "log.jsonl"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l))
      .filter((x) => "l1" in x);
    assert.ok(logged.length > 0 && logged.every((x) => x.perceptual > 0), "perceptual term logged");
    r = run(["train", "autoencoder", "--decoder-only", "--out", join(dir, "ae-dec2"), "--steps", "1", ...SMALL]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /--decoder-only fine-tunes a trained autoencoder: pass it with --init/);
    const dit = join(dir, "dit");
    r = run([
      "train",
      "dit",
      "--autoencoder",
      join(ae, "model.safetensors"),
      "--out",
      dit,
      "--steps",
      "2",
      "--batch-size",
      "8",
      "--depth",
      "1",
      "--hidden",
      "32",
      "--heads",
      "2",
      ...SMALL,
    ]);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(existsSync(join(dit, "model.safetensors")));
    assert.equal(readModelMeta(join(dit, "model.safetensors"))?.kind, "dit");
  });
});
