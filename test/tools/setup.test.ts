// tools/setup.sh, the README's set-up line: as root it calls apt-get directly (a root shell of a minimal Debian image
// has no sudo), as a user it goes through sudo, and without either it says what is needed. apt-get, id and sudo are
// stand-ins that record how they were called; nothing is installed.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { ROOT } from "../helpers/fixtures.js";

const SETUP = join(ROOT, "tools", "setup.sh");
const dir = mkdtempSync(join(tmpdir(), "cao2-setup-"));
after(() => rmSync(dir, { recursive: true, force: true }));

function stubs(name: string, withSudo: boolean): string {
  const bin = join(dir, name);
  mkdirSync(bin);
  const stub = (cmd: string, body: string) => {
    writeFileSync(join(bin, cmd), `#!/bin/sh\n${body}\n`);
    chmodSync(join(bin, cmd), 0o755);
  };
  stub("id", '[ "$1" = -u ] && echo "$FAKE_UID"');
  stub("apt-get", 'echo "apt-get $* (DEBIAN_FRONTEND=$DEBIAN_FRONTEND)" >> "$LOG"');
  if (withSudo) stub("sudo", 'echo "sudo $1" >> "$LOG"; export "$1"; shift; exec "$@"');
  return bin;
}

/** setup.sh with only the stand-ins on PATH, as user `uid`; the calls they recorded. */
function setup(uid: number, bin: string, extra: string[] = []) {
  const log = join(dir, `${bin.split("/").pop()}-${uid}.log`);
  writeFileSync(log, "");
  const r = spawnSync("/bin/sh", [SETUP, ...extra], {
    encoding: "utf8",
    env: { PATH: bin, FAKE_UID: String(uid), LOG: log },
  });
  return { ...r, calls: readFileSync(log, "utf8").trim().split("\n").filter(Boolean) };
}

const INSTALL =
  "apt-get install -y --no-install-recommends libtorch-dev libopenblas-dev python3 python3-torch python3-torchvision dataset-fashion-mnist g++ make (DEBIAN_FRONTEND=noninteractive)";

test("as root: apt-get directly, sudo never called (even where it exists); extra packages as arguments", () => {
  const bin = stubs("root-bin", true);
  const r = setup(0, bin);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(r.calls, ["apt-get update (DEBIAN_FRONTEND=noninteractive)", INSTALL]);
  assert.deepEqual(setup(0, bin, ["chromium"]).calls[1], INSTALL.replace(" (", " chromium ("));
});

test("as a user with sudo: apt-get through sudo", () => {
  const r = setup(1000, stubs("user-bin", true));
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(r.calls, [
    "sudo DEBIAN_FRONTEND=noninteractive",
    "apt-get update (DEBIAN_FRONTEND=noninteractive)",
    "sudo DEBIAN_FRONTEND=noninteractive",
    INSTALL,
  ]);
});

test("as a user without sudo: one line saying what is needed, exit 2, nothing run", () => {
  const r = setup(1000, stubs("bare-bin", false));
  assert.equal(r.status, 2);
  assert.equal(
    r.stderr,
    "tools/setup.sh: installing system packages needs root: run it as root, or as a user with sudo\n",
  );
  assert.deepEqual(r.calls, []);
});

test("the README's set-up and CI both use tools/setup.sh", () => {
  assert.match(readFileSync(join(ROOT, "README.md"), "utf8"), /\ntools\/setup\.sh && npm ci\n/);
  assert.match(readFileSync(join(ROOT, ".ci", "run"), "utf8"), /\ntools\/setup\.sh\b/);
});
