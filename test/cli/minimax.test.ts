// Minimax checkpoints at the command line (docs/minimax.md): a training checkpoint {"model", "ema", "opt", "args"}
// gives its 'ema' entry to inspect, convert, distill and sample unless --unwrap names another; a missing entry, or
// gammas that do not fit the architecture, are one-line errors with exit code 2 before anything is written.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { loadStateDict } from "../../src/io/checkpoint.js";
import { loadSafetensors, saveSafetensors } from "../../src/io/safetensors.js";
import * as torch from "../../src/torch/index.js";
import { fixture, ROOT } from "../helpers/fixtures.js";

const MAIN = join(ROOT, "dist", "src", "cli", "main.js");
const PT = fixture("models", "minimax_small.pt");
const dir = mkdtempSync(join(tmpdir(), "cao2-cli-minimax-"));
after(() => rmSync(dir, { recursive: true, force: true }));

function cao2(...args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [MAIN, ...args], { cwd: dir });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d));
    child.stderr.on("data", (d: Buffer) => (stderr += d));
    child.on("close", (status) => resolve({ status, stdout, stderr }));
  });
}

/** Exit 2 with exactly one line on stderr that matches `pattern`. */
async function refused(args: string[], pattern: RegExp): Promise<void> {
  const r = await cao2(...args);
  assert.equal(r.status, 2, `${args.join(" ")}: exit code (stderr: ${r.stderr})`);
  assert.equal(r.stderr.split("\n").length, 2, `${args.join(" ")}: one line (${r.stderr})`);
  assert.match(r.stderr, pattern, args.join(" "));
}

const ENTRIES = /\(top-level entries: 'model', 'ema', 'opt', 'args'\)\n$/;

test("inspect shows the 'ema' entry by default, 'model' with --unwrap model, and the Minimax layout", async () => {
  const r = await cao2("inspect", PT);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /: torch\.save archive, state dict from entry 'ema'\n/);
  assert.match(r.stdout, /^not loaded: model \(dict of 60 entries, 60 tensors inside\)$/m);
  assert.match(
    r.stdout,
    /^architecture: DiT \(depth 4, hidden 16, patch 2\) with Minimax gammas \(official naming\): .*gammaBlocks 2$/m,
  );
  assert.doesNotMatch(r.stdout, /architecture problem/);
  const m = await cao2("inspect", PT, "--unwrap", "model");
  assert.match(m.stdout, /state dict from entry 'model'\n/);
  await refused(
    ["inspect", PT, "--unwrap", "teacher"],
    /^cao2 inspect: error: .*minimax_small\.pt: no entry 'teacher' to take the state dict from /,
  );
  await refused(["inspect", PT, "--unwrap", "teacher"], ENTRIES);
});

test("convert writes the 'ema' entry by default and the 'model' entry with --unwrap model", async () => {
  for (const [flags, entry] of [
    [[], "ema"],
    [["--unwrap", "model"], "model"],
  ] as const) {
    const out = join(dir, `${entry}.safetensors`);
    const r = await cao2("convert", PT, out, ...flags);
    assert.equal(r.status, 0, r.stderr);
    const got = loadSafetensors(out);
    const want = loadStateDict(PT, { unwrap: entry });
    assert.deepEqual([...got.keys()].sort(), [...want.keys()].sort());
    for (const [k, t] of want) assert.ok(torch.equal(got.get(k)!, t), `${entry}: ${k}`);
    rmSync(out);
  }
  await refused(["convert", PT, join(dir, "x.safetensors"), "--unwrap", "teacher"], ENTRIES);
  assert.deepEqual(readdirSync(dir), []);
});

test("distill and sample: --unwrap naming a missing entry, or gammas that do not fit, are refused in one line", async () => {
  const out = join(dir, "out");
  // Gammas beyond the first half, missing in a first-half block, and of the wrong length: one file each.
  const ema = loadStateDict(PT, { unwrap: "ema" });
  const bad = {
    beyond: new Map([...ema, ["blocks.3.gamma1", torch.ones([16])]]),
    missing: new Map([...ema].filter(([k]) => k !== "blocks.1.attn.gamma1")),
    length: new Map([...ema].map(([k, t]) => [k, k === "blocks.0.attn.gamma1" ? torch.ones([16]) : t])),
  };
  const expect = {
    beyond: /gammas beyond the first half: blocks\.3\.gamma1\n$/,
    missing: /missing blocks\.1\.attn\.gamma1\n$/,
    length: /blocks\.0\.attn\.gamma1 is \[16\], expected \[48\]\n$/,
  };
  const badDir = mkdtempSync(join(tmpdir(), "cao2-cli-minimax-bad-"));
  try {
    for (const [name, sd] of Object.entries(bad)) {
      const path = join(badDir, `${name}.safetensors`);
      saveSafetensors(path, sd);
      const head = new RegExp(
        `: error: ${path.replace(/[.]/g, "\\.")}: Minimax gammas do not match the DiT \\(depth 4, hidden 16: expected in blocks 0-1\\): `,
      );
      for (const command of [
        ["distill", "--out", out],
        ["sample", "--out", join(dir, "grid.png")],
      ]) {
        await refused([...command, "--dit", path], head);
        await refused([...command, "--dit", path], expect[name as keyof typeof expect]);
      }
    }
  } finally {
    rmSync(badDir, { recursive: true, force: true });
  }
  await refused(["distill", "--dit", PT, "--unwrap", "teacher", "--out", out], ENTRIES);
  await refused(["sample", "--dit", PT, "--unwrap", "teacher", "--out", join(dir, "grid.png")], ENTRIES);
  // The shipped DiT is a flat cao2 file: it has no entry 'model', and the message names what it has.
  await refused(
    ["distill", "--unwrap", "model", "--out", out],
    /no entry 'model' to take the state dict from \(no key starts with 'model\.'; top-level names: .*'blocks'.*\)\n$/,
  );
  assert.deepEqual(readdirSync(dir), [], "nothing written");
});
