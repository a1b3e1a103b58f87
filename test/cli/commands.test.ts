// Every command of `cao2`, as a user meets it in a child process: `--help` prints its usage and flags and exits 0;
// an argument it does not take is a one-line usage error with exit code 2, before any work starts.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { ROOT } from "../helpers/fixtures.js";

const MAIN = join(ROOT, "dist", "src", "cli", "main.js");
const dir = mkdtempSync(join(tmpdir(), "cao2-cli-commands-"));
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
  assert.deepEqual(listed.sort(), [...new Set(Object.keys(STRAY).map((c) => c.split(" ")[0]))].sort(), "every listed command is covered here");

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
    assert.match(r.stderr, new RegExp(`^cao2 ${command}: error: \\S+ nope/\\S+: folder ${join(dir, "nope")} does not exist\\n$`), command);
  }
  assert.deepEqual(readdirSync(dir), [], "nothing written");
});
