// Every number and list a command takes is checked when the flags are parsed, against a range its --help shows: the
// values below once crashed, hung, exhausted memory or were silently accepted (issue 24). Each is now one line naming
// the flag, the range and the value, exit code 2, before any work and with nothing written.
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { UsageError } from "../../src/cli/args.js";
import { cao2, runInProcess } from "../helpers/cli.js";

const dir = mkdtempSync(join(tmpdir(), "cao2-cli-values-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const CASES: [args: string[], error: string][] = [
  [["distill", "--ipc", "1000000000"], "--ipc must be in 1..10000, got 1000000000"], // was a V8 heap abort
  [["sample", "--per-class", "100000000", "--out", "grid.png"], "--per-class must be in 1..10000, got 100000000"], // ran for ever
  [["distill", "--threads", "0"], "--threads must be in 1..1024, got 0"],
  [["evaluate", "--data", "fashion-mnist", "--threads", "0"], "--threads must be in 1..1024, got 0"],
  [["train", "classifier", "--out", "run", "--batch-size", "0"], "--batch-size must be in 1..65536, got 0"], // TypeError
  [["train", "autoencoder", "--out", "run", "--batch-size", "0"], "--batch-size must be in 1..65536, got 0"], // NaN losses, a model written
  [["train", "dit", "--out", "run", "--batch-size", "0"], "--batch-size must be in 1..65536, got 0"],
  [["distill", "--batch-size", "0"], "--batch-size must be in 1..65536, got 0"],
  [
    ["distill", "--classes", ""],
    "--classes needs at least one value (Classes to distil: labels, ranges (0-4), ids (wnids) or names), got ''",
  ], // meant all
  [
    ["sample", "--classes", ",", "--out", "grid.png"],
    "--classes needs at least one value (Classes: labels, ranges, ids or names), got ','",
  ],
  [["distill", "--scaling-factor", "0"], "--scaling-factor must be > 0, got 0"], // black images, complete manifest
  [["sample", "--cfg", "-1", "--out", "grid.png"], "--cfg must be >= 1, got -1"],
  [["distill", "--cfg", "0.5"], "--cfg must be >= 1, got 0.5"],
  [["train", "dit", "--out", "run", "--lr", "-1"], "--lr must be > 0, got -1"],
  [
    ["train", "classifier", "--out", "run", "--steps", "0"],
    "--steps 0 trains nothing: give at least 1 (0 is for --init, to keep that model's weights under a new run)",
  ],
  [["train", "autoencoder", "--out", "run", "--epochs", "0"], "--epochs must be in 1..100000, got 0"],
  [["train", "autoencoder", "--out", "run", "--channels", "32,0"], "--channels must be in 1..4096, got 0"],
  [["distill", "--steps", "5000"], "--steps must be in 2..1000, got 5000"],
  [["sample", "--steps", "1", "--out", "grid.png"], "--steps must be in 2..1000, got 1"], // failed after loading the models
  [["distill", "--pool-factor", "0"], "--pool-factor must be in 1..100, got 0"],
  [["distill", "--seed", "-1"], "--seed must be >= 0, got -1"],
  [["evaluate", "--data", "fashion-mnist", "--repeats", "0"], "--repeats must be in 1..1000, got 0"],
  [["evaluate", "--data", "fashion-mnist", "--epochs", "0"], "--epochs must be in 1..100000, got 0"],
  [["evaluate", "--data", "fashion-mnist", "--lr", "0"], "--lr must be > 0, got 0"],
  [["baseline", "random-real", "--ipc", "0", "--out", "rr"], "--ipc must be in 1..10000, got 0"],
  [["accuracy", "--model", "m.safetensors", "--batch-size", "0"], "--batch-size must be in 1..65536, got 0"],
  [["figure", "--run", "run", "--out", "f.png", "--amplify", "0"], "--amplify must be > 0, got 0"],
];

test("out-of-range numbers and empty lists: a usage error naming flag, range and value, before anything is written", async () => {
  const cwd = process.cwd();
  process.chdir(dir); // the relative outputs above would land here
  try {
    for (const [args, error] of CASES) {
      const r = await runInProcess(args);
      assert.ok(r.error instanceof UsageError, `${args.join(" ")}: ${String(r.error)}`);
      assert.equal(r.error.message, error, args.join(" "));
    }
  } finally {
    process.chdir(cwd);
  }
  assert.deepEqual(readdirSync(dir), [], "nothing written");
  // As the user sees it: one line, exit code 2 (the V8 heap abort of --ipc 1000000000 and the endless sample).
  for (const [args, error] of CASES.slice(0, 2)) {
    const r = await cao2(args, { cwd: dir });
    assert.equal(r.status, 2, `${args.join(" ")}: exit code (stderr: ${r.stderr})`);
    assert.equal(r.stderr, `cao2 ${args[0]}: error: ${error}\n`, args.join(" "));
  }
});

test("--help shows each bounded flag's range", async () => {
  const help = (await cao2(["distill", "--help"])).stdout;
  assert.match(help, /--ipc <int> +Images per class \[1\.\.10000\] \[default: 10\]/);
  assert.match(help, /--scaling-factor <number> +.*\[> 0\] \[default: 0\.18215\]/);
  assert.match((await cao2(["train", "dit", "--help"])).stdout, /--lr <number> +.*\[> 0\] \[default: 0\.0003\]/);
});
