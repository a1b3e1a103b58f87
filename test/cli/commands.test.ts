// Every command of `cao2`, as a user meets it in a child process: `--help` prints its usage and flags and exits 0;
// an argument it does not take is a one-line usage error with exit code 2, before any work starts.
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { InputError } from "../../src/errors.js";
import { cudaDeviceCount } from "../../src/torch/index.js";
import { cao2 as run, commandModules, runInProcess } from "../helpers/cli.js";

const dir = mkdtempSync(join(tmpdir(), "cao2-cli-commands-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const cao2 = (...args: string[]) => run(args, { cwd: dir });

// Each command with the arguments it takes, then one it does not.
const STRAY: Record<string, string[]> = {
  inspect: ["model.pt", "stray"],
  convert: ["model.pt", "model.safetensors", "stray"],
  baseline: ["random-real", "stray"],
  evaluate: ["stray"],
  distill: ["stray"],
  sample: ["stray"],
  accuracy: ["stray"],
  figure: ["stray"],
  report: ["run", "stray"],
  "train classifier": ["stray", "--out", "run"],
  "train autoencoder": ["stray", "--out", "run"],
  "train dit": ["stray", "--out", "run"],
};

test("every command: --help gives usage and flags (exit 0); a stray argument is a usage error (exit 2)", async () => {
  const { stdout: list } = await cao2("--help");
  const listed = [...list.matchAll(/^ {2}([a-z]+) /gm)].map((m) => m[1]);
  assert.deepEqual(
    listed.sort(),
    [...new Set(Object.keys(STRAY).map((c) => c.split(" ")[0]))].sort(),
    "every listed command is covered here",
  );

  for (const [command, args] of Object.entries(STRAY)) {
    const words = command.split(" ");
    const help = await cao2(...words, "--help");
    assert.equal(help.status, 0, `${command} --help: ${help.stderr}`);
    assert.match(help.stdout, new RegExp(`^Usage: cao2 ${command}`), command);
    assert.match(help.stdout, /\nFlags:\n(.|\n)*  --help/, command);

    const bad = await cao2(...words, ...args);
    assert.equal(bad.status, 2, `${command}: exit code (stderr: ${bad.stderr})`);
    assert.equal(bad.stderr, `cao2 ${words[0]}: error: unexpected argument 'stray' (see --help)\n`, command);
  }
  assert.deepEqual(readdirSync(dir), [], "nothing written by a rejected command");
});

test("without libtorch (CAO2_NATIVE=/nonexistent) cao2 --help and every command's --help work, each opening with its summary as cao2 --help lists it", async () => {
  const env = { CAO2_NATIVE: "/nonexistent/cao2_torch.node" };
  const top = await run(["--help"], { cwd: dir, env });
  assert.equal(top.status, 0, top.stderr);
  const listed = [...top.stdout.matchAll(/^ {2}([a-z]+) +(.+)$/gm)].map((m) => [m[1], m[2]] as const);
  assert.equal(listed.length, new Set(Object.keys(STRAY).map((c) => c.split(" ")[0])).size);
  for (const [command, summary] of listed) {
    const help = await run([command, "--help"], { cwd: dir, env });
    assert.equal(help.status, 0, `${command} --help: ${help.stderr}`);
    assert.match(help.stdout, new RegExp(`^Usage: cao2 ${command}`), command);
    assert.ok(
      help.stdout.split("\n")[2].startsWith(summary),
      `${command}: ${help.stdout.split("\n")[2]} vs ${summary}`,
    );
  }
  const computing = await run(["inspect", "model.pt"], { cwd: dir, env });
  assert.notEqual(computing.status, 0, "a command that needs libtorch does fail without it");
});

// The commands that write a file at the end of their work, with an output in a folder that does not exist.
const MISSING_FOLDER: Record<string, string[]> = {
  convert: ["model.pt", "nope/model.safetensors"],
  evaluate: ["--data", "set", "--test", "fashion-mnist", "--json", "nope/record.json"],
  sample: ["--out", "nope/grid.png"],
  accuracy: ["--model", "selector.safetensors", "--json", "nope/acc.json"],
  figure: ["--run", "run", "--out", "nope/figure.png"],
  report: ["run", "--out", "nope/report.html"],
};

test("an output in a missing folder is refused before any work starts (exit 2, the flag and folder named)", async () => {
  for (const [command, args] of Object.entries(MISSING_FOLDER)) {
    const r = await cao2(command, ...args);
    assert.equal(r.status, 2, `${command}: exit code (stderr: ${r.stderr})`);
    assert.match(
      r.stderr,
      new RegExp(`^cao2 ${command}: error: \\S+ nope/\\S+: folder ${join(dir, "nope")} does not exist\\n$`),
      command,
    );
  }
  assert.deepEqual(readdirSync(dir), [], "nothing written");
});

// Every command that runs models takes --device (train too, for each recipe); the device is checked when the flags
// are parsed. Asked for a CUDA device this libtorch cannot use (on this CPU build: any; on a GPU build: one past the
// last), each says so on one line with what is available, exit 2, before any work (no traceback, no raw libtorch
// error, nothing written).
const DEVICE_ARGS: Record<string, string[]> = {
  distill: [],
  sample: ["--out", "grid.png"],
  accuracy: ["--model", "selector.safetensors"],
  evaluate: ["--data", "fashion-mnist"],
  baseline: ["selected-real", "--ipc", "1", "--out", "sel"],
  "train classifier": ["--out", "run"],
  "train autoencoder": ["--out", "run"],
  "train dit": ["--out", "run"],
};

test("--device: an unusable CUDA device is one line naming it and what is available (exit 2), in every command that takes it", async () => {
  const withDevice: string[] = [];
  for (const name of (await commandModules()).keys()) {
    for (const words of name === "train" ? ["classifier", "autoencoder", "dit"].map((r) => [name, r]) : [[name]]) {
      if ((await runInProcess([...words, "--help"])).stdout.includes("\n  --device ")) withDevice.push(words.join(" "));
    }
  }
  assert.deepEqual(
    withDevice.sort(),
    Object.keys(DEVICE_ARGS).sort(),
    "the commands that take --device are the ones tested here",
  );
  const n = cudaDeviceCount();
  const wanted = `cuda:${n}`;
  const available = ["cpu", ...Array.from({ length: n }, (_, i) => `cuda:${i}`)].join(", ");
  const why = n === 0 ? "this libtorch has no CUDA support or sees no GPU" : `only ${n} CUDA device\\(s\\) are visible`;
  const message = new RegExp(`^--device ${wanted}: ${why} \\(available: ${available}[;)][^\\n]*$`);
  const cwd = process.cwd();
  process.chdir(dir);
  try {
    for (const [command, args] of Object.entries(DEVICE_ARGS)) {
      const r = await runInProcess([...command.split(" "), ...args, "--device", wanted]);
      assert.ok(r.error instanceof InputError, `${command}: ${String(r.error)}`);
      assert.match(r.error.message, message, command);
      const typo = await runInProcess([...command.split(" "), ...args, "--device", "gpu"]);
      assert.ok(typo.error instanceof InputError, command);
      assert.equal(
        typo.error.message,
        `--device 'gpu' is not a device: expected cpu, cuda or cuda:N (available: ${available})`,
        command,
      );
    }
  } finally {
    process.chdir(cwd);
  }
  // As the user sees it (these two printed a stack trace and a raw libtorch error): one line, exit code 2.
  for (const [command, args] of Object.entries(DEVICE_ARGS).slice(0, 2)) {
    const r = await cao2(command, ...args, "--device", wanted);
    assert.equal(r.status, 2, `${command}: exit code (stderr: ${r.stderr})`);
    assert.match(r.stderr, new RegExp(`^cao2 ${command}: error: ${message.source.slice(1, -1)}\\n$`), command);
  }
  assert.deepEqual(readdirSync(dir), [], "nothing written");
});
