// The hostile files of issue #24 through the commands that met them (inspect, convert, distill --dit, evaluate), in
// child processes under a time limit and an address-space cap (prlimit), so that a regression to a hang or a memory
// blow-up fails the test instead of stalling or exhausting the machine (slow: each case starts the CLI). Every case
// must end with exit code 2 and one line naming the file and what was expected. Files: tools/hostile/make.mjs.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { after, before, describe, test } from "node:test";
import { ROOT } from "../helpers/fixtures.js";

const MAIN = join(ROOT, "dist", "src", "cli", "main.js");
/** Address-space cap of each run: node and libtorch map about 2 GB; a reported blow-up needed 3-10 GB more. */
const AS_LIMIT = 4 * 2 ** 30;
/** Seconds a run may take (the DAG checkpoint used to run for ever). */
const TIME_LIMIT_S = 120;

interface Hostile {
  allFiles(bombBytes?: number): Record<string, Buffer>;
  imageFolderTrap(root: string, kind: string): string;
  idxHeader(dims: number[]): Buffer;
  idxHeightZero(n?: number): Buffer;
  ptWithTensor(shape: number[], stride: number[]): Buffer;
}
const hostile = (await import(pathToFileURL(join(ROOT, "tools", "hostile", "make.mjs")).href)) as Hostile;

const dir = mkdtempSync(join(tmpdir(), "cao2-cli-hostile-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string) => join(dir, "files", name);

function cao2(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync("prlimit", [`--as=${AS_LIMIT}`, process.execPath, MAIN, ...args], {
    encoding: "utf8",
    timeout: TIME_LIMIT_S * 1000,
    maxBuffer: 64 * 2 ** 20,
    env: { ...process.env, ...env },
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, error: r.error };
}

/** Exit code 2, one line on stderr: "cao2 <command>: error: <file>: ..." matching `re`. */
function refused(r: ReturnType<typeof cao2>, command: string, path: string, re: RegExp): void {
  assert.equal(r.error, undefined, `the run ended by itself (${String(r.error)})`);
  assert.equal(r.status, 2, `exit code 2 expected; stderr:\n${r.stderr.slice(0, 2000)}`);
  const lines = r.stderr.trimEnd().split("\n");
  assert.equal(lines.length, 1, `one line expected, got:\n${r.stderr.slice(0, 2000)}`);
  assert.ok(lines[0].startsWith(`cao2 ${command}: error: ${path}`), lines[0]);
  assert.match(lines[0], re);
}

describe("hostile files through the CLI (slow)", () => {
  before(() => {
    mkdirSync(join(dir, "files"));
    // The bombs at the sizes reported: 3 GiB (PNG) and 5 GiB (idx); the files are a few MB.
    for (const [name, bytes] of Object.entries(hostile.allFiles())) writeFileSync(file(name), bytes);
  });

  test("inspect, convert and distill --dit: a 1.7 KB .pt of 40 shared dict levels fails at once", () => {
    const re = /its nested containers would flatten to 1099511627776 entries from 81 distinct ones/;
    refused(cao2(["inspect", file("dag-40.pt")]), "inspect", file("dag-40.pt"), re);
    refused(cao2(["convert", file("dag-40.pt"), join(dir, "out.safetensors")]), "convert", file("dag-40.pt"), re);
    refused(cao2(["distill", "--dit", file("dag-40.pt"), "--out", join(dir, "d")]), "distill", file("dag-40.pt"), re);
  });

  test("convert: shapes whose element count overflows, or whose views materialise 4 TiB, are input errors", () => {
    const out = join(dir, "out.safetensors");
    refused(
      cao2(["convert", file("stride0-2^40x2^40.pt"), out]),
      "convert",
      file("stride0-2^40x2^40.pt"),
      /element count 1208925819614629174706176 exceeds 2\^53 - 1/,
    );
    refused(
      cao2(["convert", file("stride0-4TiB.pt"), out]),
      "convert",
      file("stride0-4TiB.pt"),
      /would take 4 TiB in memory, over the 1 GiB limit \(--max-tensor-bytes\)/,
    );
    refused(
      cao2(["convert", file("shape-0x1e300.safetensors"), out]),
      "convert",
      file("shape-0x1e300.safetensors"),
      /shape \[0,1e\+300\] is not a list of at most 64 non-negative integers below 2\^53/,
    );
    // The limit is a flag: a plain 4-byte tensor is refused under a 2-byte one.
    const plain = join(dir, "plain.pt");
    writeFileSync(plain, hostile.ptWithTensor([1], [1]));
    refused(
      cao2(["convert", plain, out, "--max-tensor-bytes", "2"]),
      "convert",
      plain,
      /tensor 'weight' \(float32 \[1\]\) would take 4 bytes in memory, over the 2 bytes limit \(--max-tensor-bytes\)/,
    );
  });

  test("inspect lists 200,000 tensors (no spread of every row onto the stack)", () => {
    const r = cao2(["inspect", file("200000-tensors.safetensors")]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^200000 tensors, 0 values, 0\.0 MiB$/m);
  });

  test("distill --dit: cao2 metadata that is not JSON, or asks for depth 1e6 / hidden 1e9, fails before a model is built", () => {
    const out = join(dir, "d");
    refused(
      cao2(["distill", "--dit", file("meta-not-json.safetensors"), "--out", out]),
      "distill",
      file("meta-not-json.safetensors"),
      /the "cao2" metadata is not valid JSON/,
    );
    refused(
      cao2(["distill", "--dit", file("dit-depth-1e6.safetensors"), "--out", out]),
      "distill",
      file("dit-depth-1e6.safetensors"),
      /asks for depth 1000000, but the file holds only 1 tensors/,
    );
    refused(
      cao2(["distill", "--dit", file("dit-hidden-1e9.safetensors"), "--out", out]),
      "distill",
      file("dit-hidden-1e9.safetensors"),
      /hiddenSize 1000000000.*larger than any dimension/,
    );
  });

  test("evaluate: image bombs and file-system traps in the ImageFolder are one-line input errors", () => {
    const folder = (name: string, files: Record<string, string>) => {
      const root = join(dir, name);
      for (const [to, from] of Object.entries(files)) {
        mkdirSync(join(root, to.split("/")[0]), { recursive: true });
        copyFileSync(file(from), join(root, to));
      }
      return root;
    };
    const cases: [string, string, RegExp][] = [
      [
        folder("huge-png", { "a/0.png": "46340x46340.png" }),
        "a/0.png",
        /46340x46340 = 2,147,395,600 pixels is over the 89,478,485-pixel limit \(--max-image-pixels\)/,
      ],
      [
        folder("bomb-png", { "a/0.png": "1x1-idat-bomb.png" }),
        "a/0.png",
        /the image data inflates to more than the 2 bytes a 1x1 image of this type holds/,
      ],
      [
        folder("huge-jpg", { "a/0.jpg": "65000x65000.jpg" }),
        "a/0.jpg",
        /65000x65000 = 4,225,000,000 pixels is over the 89,478,485-pixel limit/,
      ],
      [hostile.imageFolderTrap(join(dir, "fifo"), "fifo"), "a/x.png", /not a regular file \(a named pipe\)/],
      [hostile.imageFolderTrap(join(dir, "zero"), "zero"), "a/x.png", /not a regular file \(a device\)/],
      [hostile.imageFolderTrap(join(dir, "loop"), "loop"), "a/loop.png", /symbolic link loop/],
    ];
    for (const [root, at, re] of cases)
      refused(cao2(["evaluate", "--data", root, "--test", root]), "evaluate", join(root, at), re);
    // The pixel limit is a flag; nonsense values are refused as usage errors.
    const small = cao2(["evaluate", "--data", join(dir, "fifo"), "--max-image-pixels", "0"]);
    assert.equal(small.status, 2);
    assert.match(small.stderr, /^cao2 evaluate: error: --max-image-pixels must be >= 1, got 0\n$/);
  });

  test("evaluate: an idx .gz that inflates to 5 GiB, and idx images of height 0 (FASHION_MNIST_DIR)", () => {
    const labels = Buffer.concat([hostile.idxHeader([1]), Buffer.from([0])]);
    const bomb = join(dir, "idx-bomb");
    mkdirSync(bomb);
    copyFileSync(file("idx-bomb.gz"), join(bomb, "train-images-idx3-ubyte.gz"));
    writeFileSync(join(bomb, "train-labels-idx1-ubyte"), labels);
    const images = join(bomb, "train-images-idx3-ubyte.gz");
    refused(
      cao2(["evaluate", "--data", "fashion-mnist"], { FASHION_MNIST_DIR: bomb }),
      "evaluate",
      images,
      /the gzip data inflates to more than the 800 bytes its idx header \[1, 28, 28\] implies/,
    );
    const flat = join(dir, "idx-flat");
    mkdirSync(flat);
    writeFileSync(join(flat, "train-images-idx3-ubyte"), hostile.idxHeightZero(10));
    writeFileSync(join(flat, "train-labels-idx1-ubyte"), Buffer.concat([hostile.idxHeader([10]), Buffer.alloc(10)]));
    refused(
      cao2(["evaluate", "--data", "fashion-mnist"], { FASHION_MNIST_DIR: flat }),
      "evaluate",
      join(flat, "train-images-idx3-ubyte"),
      /expected at least one image of at least 1x1 pixels, got \[10,0,28\]/,
    );
  });
});
