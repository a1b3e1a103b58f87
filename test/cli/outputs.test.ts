// Output targets are checked before any work (issue 24): a folder where a file is written, a file where a folder is,
// a virtual file system (/proc), a read-only mount (once reported as ENOENT: Node's recursive mkdir says so) are one
// line naming the flag and the path, exit 2, with nothing written. A disk that fills up during the write (which no
// check can foresee) is one line naming the file, not a bare "no space left".
//
// The read-only and full-disk cases mount a small tmpfs in a user and mount namespace of their own (`unshare -rm`,
// no privileges needed where the kernel allows user namespaces); where it does not, those tests are skipped.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { FASHION_MNIST_DIR } from "../../src/io/datasets/index.js";
import { UsageError } from "../../src/cli/args.js";
import { cao2, MAIN, runInProcess, runProcess } from "../helpers/cli.js";

const dir = mkdtempSync(join(tmpdir(), "cao2-cli-outputs-"));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Exit code 2 and exactly `cao2 <command>: error: <message>` on stderr. */
function assertError(r: { status: number | null; stderr: string }, command: string, message: string): void {
  assert.equal(r.status, 2, `exit code (stderr: ${r.stderr})`);
  assert.equal(r.stderr, `cao2 ${command}: error: ${message}\n`);
}

test("a folder where a file goes, a file where a folder goes, a device, /proc and /sys: refused before the work", async () => {
  const folder = join(dir, "a-folder");
  const file = join(dir, "a-file");
  mkdirSync(folder);
  writeFileSync(file, "x");
  const cases: [string[], string, string][] = [
    [
      ["evaluate", "--data", "fashion-mnist", "--json", folder],
      "evaluate",
      `--json ${folder}: is a folder; give the path of a file to write`,
    ],
    [["sample", "--out", folder], "sample", `--out ${folder}: is a folder; give the path of a file to write`],
    [
      ["sample", "--out", "g.png", "--json", "/dev/null"],
      "sample",
      "--json /dev/null: not a regular file (a device, pipe or socket); give the path of a file to write",
    ],
    [
      ["accuracy", "--model", "m.safetensors", "--json", "/proc/self/acc.json"],
      "accuracy",
      "--json /proc/self/acc.json: /proc/self is on the kernel's proc file system, which holds no files; choose a folder on a disk",
    ],
    [
      ["figure", "--run", "run", "--out", "/sys/fig.png"],
      "figure",
      "--out /sys/fig.png: /sys is on the kernel's sysfs file system, which holds no files; choose a folder on a disk",
    ],
    [
      ["distill", "--out", "/proc/self/distilled"],
      "distill",
      "--out /proc/self/distilled: /proc/self is on the kernel's proc file system, which holds no files; choose a folder on a disk",
    ],
    [
      ["train", "classifier", "--out", "/proc/cao2/a/b"],
      "train",
      "--out /proc/cao2/a/b: /proc is on the kernel's proc file system, which holds no files; choose a folder on a disk",
    ],
    [["baseline", "random-real", "--ipc", "1", "--out", file], "baseline", `--out ${file}: exists and is not a folder`],
    [["distill", "--out", join(file, "sub")], "distill", `--out ${join(file, "sub")}: ${file} is not a folder`],
    [
      ["train", "dit", "--out", join(file, "sub", "run")],
      "train",
      `--out ${join(file, "sub", "run")}: ${file} is not a folder`,
    ],
    [["convert", "m.pt", folder], "convert", `<out> ${folder}: is a folder; give the path of a file to write`],
  ];
  const cwd = process.cwd();
  process.chdir(dir);
  try {
    for (const [args, , message] of cases) {
      const r = await runInProcess(args);
      assert.ok(r.error instanceof UsageError, `${args.join(" ")}: ${String(r.error)}`);
      assert.equal(r.error.message, message);
    }
  } finally {
    process.chdir(cwd);
  }
  // As the user sees it: evaluate wrote nothing until its students were trained, then failed on the folder.
  assertError(await cao2(cases[0][0], { cwd: dir }), cases[0][1], cases[0][2]);
  assert.deepEqual(readdirSync(dir).sort(), ["a-file", "a-folder"], "nothing written");
  assert.deepEqual(readdirSync(folder), []);
});

const namespaces =
  spawnSync("unshare", ["-rm", "true"]).status === 0 || "no unprivileged user and mount namespaces (unshare -rm) here";

/** cao2 in a private mount namespace where `mountpoint` is a fresh 64 KiB tmpfs (`options`: ro, or full: filled up). */
function cao2OnTmpfs(mountpoint: string, options: "ro" | "full", args: string[]) {
  const script = `mount -t tmpfs -o size=64k${options === "ro" ? ",ro" : ""} tmpfs "$1" || exit 99
[ "$2" = full ] && { dd if=/dev/zero of="$1/fill" bs=4k 2>/dev/null; true; }
shift 2; exec "$@"`;
  return runProcess(
    "unshare",
    ["-rm", "sh", "-c", script, "sh", mountpoint, options, process.execPath, MAIN, ...args],
    { cwd: dir },
  );
}

test(
  "a read-only mount is named as such, before any work (not ENOENT)",
  { skip: namespaces !== true && namespaces },
  async () => {
    const ro = join(dir, "ro");
    mkdirSync(ro);
    const cases: [string[], string][] = [
      [["distill", "--out", join(ro, "distilled")], "distill"],
      [["baseline", "random-real", "--ipc", "1", "--out", join(ro, "rr")], "baseline"],
      [["train", "classifier", "--out", join(ro, "runs", "clf")], "train"],
      [["sample", "--out", join(ro, "grid.png")], "sample"],
      [["evaluate", "--data", "fashion-mnist", "--json", join(ro, "record.json")], "evaluate"],
    ];
    for (const [args, command] of cases) {
      const r = await cao2OnTmpfs(ro, "ro", args);
      const flag = args.includes("--json") ? "--json" : "--out";
      const target = args[args.indexOf(flag) + 1];
      assertError(r, command, `${flag} ${target}: ${ro} is on a read-only file system; choose a writable location`);
    }
    rmSync(ro, { recursive: true });
  },
);

test(
  "a disk that fills up during the write: one line naming the file (exit 2), nothing half-written",
  { skip: namespaces !== true ? namespaces : !existsSync(FASHION_MNIST_DIR) && "Fashion-MNIST not installed" },
  async () => {
    const full = join(dir, "full");
    mkdirSync(full);
    const png = join(full, "grid.png");
    const r = await cao2OnTmpfs(full, "full", [
      "sample",
      "--classes",
      "0",
      "--per-class",
      "1",
      "--steps",
      "2",
      "--threads",
      "1",
      "--out",
      png,
    ]);
    assert.equal(r.status, 2, r.stderr);
    assert.match(
      r.stderr,
      new RegExp(`\ncao2 sample: error: ${png}: no space left on the device\n$`),
      "the last line names the file (progress lines come before)",
    );
    const rr = join(full, "rr");
    const baseline = await cao2OnTmpfs(full, "full", ["baseline", "random-real", "--ipc", "2", "--out", rr]);
    assert.equal(baseline.status, 2, baseline.stderr);
    assert.equal(baseline.stderr, `cao2 baseline: error: ${rr}: no space left on the device\n`);
    assert.deepEqual(readdirSync(full), [], "the tmpfs is gone with its namespace; nothing reached the real folder");
    rmSync(full, { recursive: true });
  },
);
