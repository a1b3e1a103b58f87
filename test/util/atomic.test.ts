// Atomic writes: the target holds the old content or the new, never a part, and no temporary file is left behind;
// failures name the file the user asked for.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { InputError } from "../../src/errors.js";
import { withPath, writeFileAtomic, writeJsonAtomic } from "../../src/util/atomic.js";

const dir = mkdtempSync(join(tmpdir(), "cao2-atomic-"));

test("writes strings, bytes and chunk sequences; replaces an existing file", () => {
  const p = join(dir, "a.txt");
  writeFileAtomic(p, "old");
  assert.equal(readFileSync(p, "utf8"), "old");
  writeFileAtomic(p, new Uint8Array([104, 105]));
  assert.equal(readFileSync(p, "utf8"), "hi");
  writeFileAtomic(
    p,
    (function* () {
      yield Buffer.from("one ");
      yield Buffer.from("two");
    })(),
  );
  assert.equal(readFileSync(p, "utf8"), "one two");
  writeJsonAtomic(join(dir, "b.json"), { x: [1, 2] });
  assert.equal(readFileSync(join(dir, "b.json"), "utf8"), '{\n  "x": [\n    1,\n    2\n  ]\n}\n');
  assert.deepEqual(
    readdirSync(dir).filter((f) => f.endsWith(".tmp")),
    [],
  );
});

test("a failure part-way leaves the old file whole and no temporary file", () => {
  const p = join(dir, "kept.bin");
  writeFileSync(p, "complete");
  const failing = (function* () {
    yield Buffer.from("partial");
    throw new Error("producer failed");
  })();
  assert.throws(() => writeFileAtomic(p, failing), /producer failed/);
  assert.equal(readFileSync(p, "utf8"), "complete");
  assert.deepEqual(
    readdirSync(dir).filter((f) => f.startsWith(".kept.bin")),
    [],
  );
});

test("errors name the target: a missing folder, a folder in the way", () => {
  const missing = join(dir, "no-such-folder", "x.json");
  assert.throws(
    () => writeFileAtomic(missing, "x"),
    (e: unknown) =>
      e instanceof InputError &&
      e.message === `cannot write ${missing}: the folder ${join(dir, "no-such-folder")} does not exist`,
  );
  const folder = join(dir, "a-folder");
  mkdirSync(folder);
  assert.throws(
    () => writeFileAtomic(folder, "x"),
    (e: unknown) => (e as NodeJS.ErrnoException).path === folder,
  );
  assert.deepEqual(
    readdirSync(dir).filter((f) => f.endsWith(".tmp")),
    [],
  );
});

test("a write error without a path of its own (a full disk's ENOSPC) names the target; withPath keeps a path already there", () => {
  const p = join(dir, "full.bin");
  const enospc = () =>
    Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC", syscall: "write" });
  const failing = (function* () {
    yield Buffer.from("partial");
    throw enospc();
  })();
  assert.throws(
    () => writeFileAtomic(p, failing),
    (e: unknown) => (e as NodeJS.ErrnoException).code === "ENOSPC" && (e as NodeJS.ErrnoException).path === p,
  );
  assert.equal(
    (withPath(Object.assign(enospc(), { path: "/elsewhere" }), p) as NodeJS.ErrnoException).path,
    "/elsewhere",
  );
  const plain = new Error("not a system error");
  assert.equal((withPath(plain, p) as NodeJS.ErrnoException).path, undefined);
});
