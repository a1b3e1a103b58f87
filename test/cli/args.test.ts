// The flag parser every command shares: typed values, defaults, booleans, and a usage error naming the flag for each
// kind of mistake (unknown flag with a suggestion, missing or malformed value, value outside the choices, stray
// positional argument).
import assert from "node:assert/strict";
import { test } from "node:test";
import { type FlagSpecs, formatHelp, parseArgs, parseCommand, UsageError } from "../../src/cli/args.js";

const SPECS = {
  ipc: { type: "int", help: "Images per class", default: 10 },
  lr: { type: "number", help: "Learning rate" },
  out: { type: "string", help: "Output folder" },
  arch: { type: "string", help: "Architecture", choices: ["convnet3", "resnet18"], default: "convnet3" },
  resume: { type: "boolean", help: "Resume", default: false },
  "pool-factor": { type: "int", help: "Pool size over IPC", default: 2 },
  classes: { type: "list", help: "Class names" },
} satisfies FlagSpecs;

const usageError = (pattern: RegExp) => (e: unknown) => e instanceof UsageError && pattern.test(e.message);

test("parseArgs: defaults, typed values, --flag=value, --no-flag, camelCase names, what was typed", () => {
  const a = parseArgs(["--lr", "6e-4", "--pool-factor=3", "--resume", "--classes", "a, b,,c", "pos"], SPECS);
  assert.equal(a.ipc, 10);
  assert.equal(a.lr, 6e-4);
  assert.equal(a.poolFactor, 3);
  assert.equal(a.resume, true);
  assert.deepEqual(a.classes, ["a", "b", "c"]);
  assert.equal(a.out, undefined);
  assert.deepEqual(a._, ["pos"]);
  assert.deepEqual([...a.given].sort(), ["classes", "lr", "pool-factor", "resume"]);
  assert.equal(parseArgs(["--resume", "--no-resume"], SPECS).resume, false);
  assert.equal(parseArgs(["--resume=false"], SPECS).resume, false);
  assert.equal(parseArgs(["--ipc", "-3"], SPECS).ipc, -3, "a negative number is a value, not a flag");
  assert.deepEqual(parseArgs(["--", "--ipc"], SPECS)._, ["--ipc"], "after -- everything is positional");
});

test("parseArgs: each mistake is a usage error naming the flag", () => {
  assert.throws(() => parseArgs(["--ipcc", "3"], SPECS), usageError(/unknown flag '--ipcc' \(did you mean --ipc\?\)/));
  assert.throws(() => parseArgs(["-o", "x"], SPECS), usageError(/unknown flag '-o' \(flags start with --/));
  assert.throws(() => parseArgs(["--out"], SPECS), usageError(/--out needs a value \(Output folder\)/));
  assert.throws(
    () => parseArgs(["--out", "--ipc", "3"], SPECS),
    usageError(
      /--out needs a value \(Output folder\), got the flag '--ipc' \(write --out=--ipc if that is the value\)/,
    ),
  );
  assert.equal(
    parseArgs(["--out=--odd", "--ipc", "3"], SPECS).out,
    "--odd",
    "a value starting with -- is written --flag=value",
  );
  assert.throws(() => parseArgs(["--ipc", "1.5"], SPECS), usageError(/--ipc expects an integer, got '1.5'/));
  assert.throws(() => parseArgs(["--lr", "fast"], SPECS), usageError(/--lr expects a number, got 'fast'/));
  assert.throws(
    () => parseArgs(["--arch", "vgg"], SPECS),
    usageError(/--arch must be one of convnet3, resnet18; got 'vgg'/),
  );
  assert.throws(
    () => parseArgs(["--resume=yes"], SPECS),
    usageError(/--resume takes no value or true\/false, got 'yes'/),
  );
});

test("parseCommand: --help (as a flag) prints the help and returns nothing; positionals beyond the command's are rejected", (t) => {
  const written: string[] = [];
  t.mock.method(process.stdout, "write", (s: string) => written.push(s) > 0);
  assert.equal(parseCommand(["--ipc", "3", "--help"], "cao2 x [flags]", "Does x", SPECS), undefined);
  t.mock.restoreAll();
  assert.equal(written.join(""), formatHelp("cao2 x [flags]", "Does x", SPECS));
  assert.match(written.join(""), /^Usage: cao2 x \[flags\]\n\nDoes x\n\nFlags:\n/);
  assert.match(written.join(""), /--pool-factor <int> +Pool size over IPC \[default: 2\]/);

  assert.equal(
    parseCommand(["--out=--help"], "u", "d", SPECS)?.out,
    "--help",
    "--help as a value is not a help request",
  );
  assert.deepEqual(parseCommand(["--", "--help"], "u", "d", SPECS, 1)?._, ["--help"], "nor is --help after --");
  assert.deepEqual(parseCommand(["in.pt", "out.safetensors"], "u", "d", SPECS, 2)?._, ["in.pt", "out.safetensors"]);
  assert.throws(
    () => parseCommand(["in.pt", "out.safetensors", "extra"], "u", "d", SPECS, 2),
    usageError(/unexpected argument 'extra' \(see --help\)/),
  );
  assert.throws(() => parseCommand(["--ipc", "3", "10"], "u", "d", SPECS), usageError(/unexpected argument '10'/));
});

test("parseArgs: numbers outside a flag's range, empty lists and bad list items are usage errors naming the range", () => {
  const specs = {
    ipc: { type: "int", help: "Images per class", default: 10, min: 1, max: 100 },
    lr: { type: "number", help: "Learning rate", min: 0, exclusiveMin: true },
    cfg: { type: "number", help: "Guidance", min: 1 },
    top: { type: "int", help: "At most", max: 5 },
    classes: { type: "list", help: "Class names" },
    channels: { type: "ints", help: "Channels", min: 1, max: 64 },
    device: {
      type: "string",
      help: "Device",
      check: (v: string, flag: string) => (v === "cuda" ? "cuda:0" : v === "cpu" ? v : assert.fail(`${flag} ${v}`)),
    },
  } satisfies FlagSpecs;
  const a = parseArgs(
    ["--ipc", "100", "--lr", "1e-9", "--cfg", "1", "--top", "-7", "--channels", "8, 16", "--device", "cuda"],
    specs,
  );
  assert.deepEqual(
    [a.ipc, a.lr, a.cfg, a.top, a.channels, a.device],
    [100, 1e-9, 1, -7, [8, 16], "cuda:0"],
    "bounds are inclusive; check normalises",
  );
  assert.equal(parseArgs([], specs).ipc, 10);
  assert.throws(
    () => parseArgs(["--ipc", "1000000000"], specs),
    usageError(/^--ipc must be in 1\.\.100, got 1000000000$/),
  );
  assert.throws(() => parseArgs(["--ipc=0"], specs), usageError(/^--ipc must be in 1\.\.100, got 0$/));
  assert.throws(() => parseArgs(["--lr", "0"], specs), usageError(/^--lr must be > 0, got 0$/));
  assert.throws(() => parseArgs(["--lr", "-1"], specs), usageError(/^--lr must be > 0, got -1$/));
  assert.throws(() => parseArgs(["--cfg", "-1"], specs), usageError(/^--cfg must be >= 1, got -1$/));
  assert.throws(() => parseArgs(["--top", "6"], specs), usageError(/^--top must be <= 5, got 6$/));
  assert.throws(
    () => parseArgs(["--classes", ""], specs),
    usageError(/^--classes needs at least one value \(Class names\), got ''$/),
  );
  assert.throws(() => parseArgs(["--classes= , ,"], specs), usageError(/^--classes needs at least one value/));
  assert.throws(
    () => parseArgs(["--channels", "8,x"], specs),
    usageError(/^--channels expects comma-separated integers, got 'x'$/),
  );
  assert.throws(() => parseArgs(["--channels", "8,0"], specs), usageError(/^--channels must be in 1\.\.64, got 0$/));
  assert.throws(() => parseArgs(["--device", "tpu"], specs), /--device tpu/);
  assert.match(formatHelp("u", "d", specs), /--ipc <int> +Images per class \[1\.\.100\] \[default: 10\]/);
  assert.match(formatHelp("u", "d", specs), /--lr <number> +Learning rate \[> 0\]\n/);
});
