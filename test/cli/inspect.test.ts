// `cao2 inspect`: both formats, metadata only, architecture guess, one-line errors with exit code 2.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { loadSafetensors, saveSafetensors } from "../../src/io/safetensors.js";
import * as torch from "../../src/torch/index.js";
import { fixture, ROOT } from "../helpers/fixtures.js";

const dir = mkdtempSync(join(tmpdir(), "cao2-inspect-"));
after(() => rmSync(dir, { recursive: true, force: true }));

function cao2(...args: string[]) {
  const r = spawnSync(process.execPath, [join(ROOT, "dist", "src", "cli", "main.js"), "inspect", ...args], {
    encoding: "utf8",
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test("a training checkpoint: the unwrapped state dict, totals, and the entries that are not loaded", () => {
  const r = cao2(fixture("io", "wrapped.pt"), "--json");
  assert.equal(r.code, 0, r.err);
  const j = JSON.parse(r.out);
  const exp = loadSafetensors(fixture("io", "wrapped.expected.safetensors"));
  assert.equal(j.format, "torch");
  assert.equal(j.unwrapped, "model");
  assert.deepEqual(j.tensors.map((t: { key: string }) => t.key).sort(), [...exp.keys()].sort());
  assert.equal(
    j.totalValues,
    [...exp.values()].reduce((a, t) => a + t.numel, 0),
  );
  assert.ok(j.skipped.some((s: { key: string; kind: string }) => s.key === "args" && s.kind === "argparse.Namespace"));
  const table = cao2(fixture("io", "wrapped.pt"));
  assert.match(table.out, /state dict from entry 'model'/);
  assert.match(table.out, /not loaded: epoch \(int 3\)/);
});

test("a safetensors ConvNet-3 is recognised with its configuration", () => {
  const cases = JSON.parse(readFileSync(fixture("io", "architectures.json"), "utf8"));
  const shapes = cases.convnet3_fmnist.shapes as Record<string, number[]>;
  const p = join(dir, "convnet.safetensors");
  saveSafetensors(p, new Map(Object.entries(shapes).map(([k, s]) => [k, torch.zeros(s)])));
  const r = cao2(p);
  assert.equal(r.code, 0, r.err);
  assert.match(
    r.out,
    /^architecture: ConvNet-3 \(dc naming\): depth 3, width 128, inChannels 1, numClasses 10, norm instance, inputSize 32$/m,
  );
});

test("inspect reads no tensor data: an archive with a corrupted storage still lists", () => {
  const b = readFileSync(fixture("io", "plain.pt"));
  const at = b.indexOf("plain/data/0");
  b[at + "plain/data/0".length + b.readUInt16LE(at - 2) + 3] ^= 0x10;
  const p = join(dir, "damaged.pt");
  writeFileSync(p, b);
  assert.equal(cao2(p).code, 0);
});

test("refused checkpoints print one line and exit 2; the payload never runs", () => {
  rmSync("/tmp/cao2_ckpt_marker_system", { force: true });
  const r = cao2(fixture("io", "malicious_system.pt"));
  assert.equal(r.code, 2);
  assert.match(r.err, /^cao2 inspect: error: .*refusing to load: the checkpoint calls posix\.system/);
  assert.equal(r.err.trim().split("\n").length, 1);
  assert.equal(existsSync("/tmp/cao2_ckpt_marker_system"), false);
  const two = cao2(fixture("io", "two_state_dicts.pt"));
  assert.equal(two.code, 2);
  assert.match(two.err, /several state dicts .*--unwrap model/);
  assert.equal(cao2(fixture("io", "two_state_dicts.pt"), "--unwrap", "model").code, 0);
});
