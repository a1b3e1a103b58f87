// The embedded default with the shipped models (slow): `cao2 distill` with no model flags on tiny settings writes a
// complete set from assets/fashion-mnist/ (also into ./distilled/ without --out; condition auto measured on the
// validation split), the shipped selector holds its
// test-accuracy bar, and `cao2 sample` scores the shipped DiT with it.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { after, describe, test } from "node:test";
import { ROOT } from "../helpers/fixtures.js";

const CLI = join(ROOT, "dist", "src", "cli", "main.js");
const run = (argv: string[], cwd = ROOT) =>
  spawnSync(process.execPath, [CLI, ...argv], { encoding: "utf8", cwd, env: { ...process.env, CI: "true" } });
const ASSETS = join(ROOT, "assets", "fashion-mnist");

describe("the embedded Fashion-MNIST default (slow)", () => {
  const dir = mkdtempSync(join(tmpdir(), "cao2-default-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test("the shipped models are there, each with a model card", () => {
    for (const m of ["selector", "autoencoder", "dit", "dit-minimax"]) {
      assert.ok(existsSync(join(ASSETS, `${m}.safetensors`)), `${m}.safetensors`);
      assert.match(readFileSync(join(ASSETS, `${m}.md`), "utf8"), /cao2 (train|accuracy|sample)/);
    }
  });

  test("cao2 distill with the shipped models on tiny settings (default T^, condition auto): a complete ImageFolder and manifest", () => {
    const out = join(dir, "fm");
    const r = run([
      "distill",
      "--classes",
      "0-1",
      "--ipc",
      "2",
      "--steps",
      "5",
      "--refine-iters",
      "2",
      "--condition",
      "auto",
      "--out",
      out,
    ]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /evaluate: cao2 evaluate --data .* --test fashion-mnist/);
    assert.match(r.stdout, new RegExp(`run state \\(resume records\\): ${out}\\.cao2`));
    const m = JSON.parse(readFileSync(join(out, "manifest.json"), "utf8"));
    assert.equal(m.images, 4);
    assert.equal(m.config.tMax, 1);
    // The shipped selector on the 2,000 validation images every shipped model held out: an easy task, the true label;
    // close to the validation accuracy its training recorded (on a larger held-out part, seen at uint8 32x32).
    const c = m.condition;
    assert.deepEqual([c.requested, c.source, c.images, c.chosen], ["auto", "fashion-mnist-val", 2000, "true"]);
    assert.ok(
      c.accuracy >= 0.9 && Math.abs(c.accuracy - m.models.selectorAccuracy) < 0.02,
      `measured ${c.accuracy}, recorded ${m.models.selectorAccuracy}`,
    );
    for (const k of ["dit", "vae", "selector"])
      assert.ok(m.models[k].path.includes(join("assets", "fashion-mnist")), m.models[k].path);
    assert.deepEqual(readdirSync(join(out, "0_T-shirt-top")).sort(), ["0.png", "1.png"]);
  });

  test("the validated default per IPC band (docs/results/validation.md); --defaults paper gives the paper's settings", () => {
    const config = (ipc: number, extra: string[] = []) => {
      const out = join(dir, `band-${ipc}${extra.join("")}`);
      const r = run([
        "distill",
        "--classes",
        "0",
        "--ipc",
        `${ipc}`,
        "--steps",
        "3",
        "--refine-iters",
        "1",
        ...extra,
        "--out",
        out,
      ]);
      assert.equal(r.status, 0, r.stderr);
      const m = JSON.parse(readFileSync(join(out, "manifest.json"), "utf8"));
      return { ...m.config, dit: basename(m.models.dit.path) };
    };
    const pick = (c: Record<string, unknown>) => [
      c.defaults,
      c.dit,
      c.cfg,
      c.cfgInterval,
      c.poolFactor,
      c.select,
      (c.reference as { data: string } | undefined)?.data,
    ];
    assert.deepEqual(pick(config(1)), ["validated", "dit.safetensors", 2.7, undefined, 10, "mmd", "fashion-mnist-fit"]);
    assert.deepEqual(pick(config(10)), [
      "validated",
      "dit-minimax.safetensors",
      2.7,
      [100, 600],
      10,
      "mmd",
      "fashion-mnist-fit",
    ]);
    assert.deepEqual(pick(config(10, ["--defaults", "paper"])), [
      "paper",
      "dit.safetensors",
      2.7,
      undefined,
      2,
      "auto",
      undefined,
    ]);
    // A flag still wins over the band's value; another strategy drops the band's reference.
    assert.deepEqual(pick(config(10, ["--pool-factor", "2", "--cfg-interval", "0,999"])).slice(3, 5), [[0, 999], 2]);
    assert.deepEqual(pick(config(10, ["--select", "confident"])).slice(5), ["confident", undefined]);
  });

  test("--select mmd matches the kept samples to a real reference sample; bad references exit 2 with one line", () => {
    const out = join(dir, "mmd");
    const base = [
      "distill",
      "--defaults",
      "paper",
      "--classes",
      "0-1",
      "--ipc",
      "2",
      "--pool-factor",
      "3",
      "--steps",
      "3",
      "--refine-iters",
      "0",
    ];
    const r = run([
      ...base,
      "--select",
      "mmd",
      "--reference",
      "fashion-mnist-fit",
      "--reference-per-class",
      "50",
      "--out",
      out,
    ]);
    assert.equal(r.status, 0, r.stderr);
    const m = JSON.parse(readFileSync(join(out, "manifest.json"), "utf8"));
    assert.deepEqual(
      [m.reference.data, m.reference.perClass, m.reference.source.path.endsWith("#fit")],
      ["fashion-mnist-fit", 50, true],
    );
    // Every kept image is a pool candidate (generated); the reference only steered which.
    for (const rec of m.records) for (const item of rec.items) assert.ok(item.poolIndex >= 0 && item.poolIndex < 6);
    const refused = (extra: string[], pattern: RegExp) => {
      const e = run([...base, ...extra, "--out", join(dir, "mmd-refused")]);
      assert.equal(e.status, 2, e.stderr);
      assert.match(e.stderr, pattern);
      assert.equal(e.stderr.trim().split("\n").length, 1, e.stderr);
      assert.ok(!existsSync(join(dir, "mmd-refused")));
    };
    refused(["--select", "mmd"], /--select mmd .* --reference/);
    refused(["--select", "confident", "--reference", "fashion-mnist-fit"], /--reference is for --select mmd/);
    // The distilled set above holds 2 of the preset's 10 classes.
    refused(["--select", "mmd", "--reference", out], /--reference .*has 2 classes but the fashion-mnist preset has 10/);
    refused(
      ["--select", "mmd", "--reference", "fashion-mnist-fit", "--reference-per-class", "6000"],
      /fewer than the 6000 per class.*--reference-per-class/,
    );
  });

  test("without --out, cao2 distill creates ./distilled/<preset>-ipc<N> in a folder that has none", () => {
    const cwd = mkdtempSync(join(dir, "fresh-"));
    const r = run(
      ["distill", "--classes", "0", "--ipc", "1", "--steps", "2", "--t-max", "1", "--refine-iters", "1"],
      cwd,
    );
    assert.equal(r.status, 0, r.stderr);
    assert.ok(existsSync(join(cwd, "distilled", "fashion-mnist-ipc1", "manifest.json")));
    assert.match(r.stdout, /evaluate: cao2 evaluate --data distilled\/fashion-mnist-ipc1 /);
  });

  test("the shipped selector clears its bar on the test split; the autoencoder's reconstructions cost it at most 1.5 points", () => {
    const json = join(dir, "accuracy.json");
    const r = run([
      "accuracy",
      "--model",
      join(ASSETS, "selector.safetensors"),
      "--autoencoder",
      join(ASSETS, "autoencoder.safetensors"),
      "--json",
      json,
    ]);
    assert.equal(r.status, 0, r.stderr);
    const j = JSON.parse(readFileSync(json, "utf8"));
    assert.equal(j.images, 10000);
    assert.ok(j.accuracy >= 0.93, `selector test top-1 ${j.accuracy}`);
    // The bar (the shipped pair: 1.28 points, autoencoder.md)
    assert.ok(
      j.accuracy - j.reconstructedAccuracy <= 0.015,
      `reconstructions cost ${j.accuracy - j.reconstructedAccuracy}`,
    );
  });

  test("cao2 sample scores the shipped DiT with the shipped selector and writes its grid", () => {
    const json = join(dir, "agreement.json");
    const png = join(dir, "grid.png");
    const r = run([
      "sample",
      "--classes",
      "1",
      "--per-class",
      "2",
      "--steps",
      "5",
      "--selector",
      join(ASSETS, "selector.safetensors"),
      "--json",
      json,
      "--out",
      png,
    ]);
    assert.equal(r.status, 0, r.stderr);
    const j = JSON.parse(readFileSync(json, "utf8"));
    assert.equal(j.classes.length, 1);
    assert.ok(j.mean >= 0 && j.mean <= 1);
    assert.deepEqual([...readFileSync(png).subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], "a PNG");
    assert.deepEqual(
      readdirSync(dir).filter((f) => f.endsWith(".tmp")),
      [],
      "no temporary files left",
    );
  });
});
