// Lock files of shared work: exclusive creation (of many concurrent takers exactly one wins), the holder recorded,
// the stale rule (a gone process on this host, an earlier run of the same scheduler task, an old heartbeat), the
// takeover, and a release that never removes another process's lock.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, utimesSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { createFileExclusive } from "../../src/util/atomic.js";
import { acquireLock, readLock, schedulerTask, staleReason } from "../../src/util/lock-file.js";

const dir = mkdtempSync(join(tmpdir(), "cao2-lock-"));
const age = (path: string, s: number) => utimesSync(path, Date.now() / 1000 - s, Date.now() / 1000 - s);

test("createFileExclusive: the first creates the file with its whole content, later ones are refused", () => {
  const p = join(dir, "x");
  assert.equal(createFileExclusive(p, "first"), true);
  assert.equal(createFileExclusive(p, "second"), false);
  assert.equal(readFileSync(p, "utf8"), "first");
  assert.deepEqual(
    readdirSync(dir).filter((f) => f.endsWith(".tmp")),
    [],
    "no temporary file left",
  );
});

test("of several processes taking one lock at once, exactly one gets it", async () => {
  const p = join(dir, "race.lock");
  // Each holds on (its lock stays live) until its stdin closes, which happens once all have answered.
  const script = `import(${JSON.stringify(new URL("../../src/util/lock-file.js", import.meta.url).href)}).then((m) => { const r = m.acquireLock(${JSON.stringify(p)}, { staleAfterS: 600 }); console.log("held" in r ? "held" : "busy"); process.stdin.resume(); })`;
  const children = Array.from({ length: 6 }, () => spawn(process.execPath, ["-e", script]));
  const outs = await Promise.all(
    children.map(
      (c) => new Promise<string>((resolve) => c.stdout.once("data", (d: Buffer) => resolve(d.toString().trim()))),
    ),
  );
  for (const c of children) c.stdin.end();
  assert.deepEqual(outs.sort(), ["busy", "busy", "busy", "busy", "busy", "held"]);
});

test("the holder is recorded; a live holder's lock is busy; release removes only one's own lock", () => {
  const p = join(dir, "a.lock");
  const a = acquireLock(p, { staleAfterS: 600, role: "shard 0/2" });
  assert.ok("held" in a && !a.tookOver);
  const h = readLock(p)!.holder!;
  assert.deepEqual([h.host, h.pid, h.role, h.task], [hostname(), process.pid, "shard 0/2", schedulerTask()]);
  assert.ok(Math.abs(Date.parse(h.since) - Date.now()) < 60_000);
  // This process is alive and the heartbeat fresh: another taker (here: the same process again) finds it busy.
  const b = acquireLock(p, { staleAfterS: 600 });
  assert.ok("busy" in b && b.busy.holder?.token === h.token);
  // Taken over after it went stale (aged): the first holder's release leaves the new lock alone.
  age(p, 1000);
  const c = acquireLock(p, { staleAfterS: 600 });
  assert.ok(
    "held" in c && c.tookOver?.reason === "no heartbeat for 1000 s (the stale age is 600 s)",
    JSON.stringify(c),
  );
  a.held.release();
  assert.equal(readLock(p)?.holder?.token, c.held.holder.token);
  c.held.release();
  assert.ok(!existsSync(p));
});

test("stale rule: a gone process on this host, an earlier run of the same scheduler task, an old heartbeat", () => {
  const gone = spawn(process.execPath, ["-e", ""]);
  const started = Date.parse("2026-06-01T12:00:00Z");
  const lock = (host: string, pid: number, task?: string, since = "2026-06-01T11:00:00Z") => ({
    holder: { host, pid, since, token: "t", task },
    ageS: 5,
  });
  return new Promise<void>((resolve) =>
    gone.on("close", () => {
      const me = { host: hostname(), task: "slurm:9_1", startedAt: started };
      assert.equal(staleReason(lock(hostname(), gone.pid!), 600, me), `its process ${gone.pid} on this host is gone`);
      assert.equal(staleReason(lock(hostname(), process.ppid), 600, me), undefined, "a live process on this host");
      assert.equal(
        staleReason(lock("other", gone.pid!), 600, me),
        undefined,
        "another host's pids are not ours to check",
      );
      assert.equal(
        staleReason(lock("other", 7, "slurm:9_1"), 600, me),
        "it was taken by an earlier run of this task (slurm:9_1)",
      );
      assert.equal(staleReason(lock("other", 7, "slurm:9_2"), 600, me), undefined);
      assert.equal(
        staleReason(lock("other", 7, "slurm:9_1", "2026-06-01T12:00:01Z"), 600, me),
        undefined,
        "taken after this process started: not an earlier run",
      );
      assert.equal(
        staleReason({ ...lock("other", 7), ageS: 601 }, 600, me),
        "no heartbeat for 601 s (the stale age is 600 s)",
      );
      assert.equal(
        staleReason({ ageS: 1 }, 600, me),
        undefined,
        "an unreadable lock (being written) waits for the stale age",
      );
      resolve();
    }),
  );
});

test("a heartbeat touches the lock; an unreadable lock is busy until it is stale", () => {
  const p = join(dir, "beat.lock");
  const a = acquireLock(p, { staleAfterS: 600 });
  assert.ok("held" in a);
  age(p, 100);
  a.held.heartbeat(0);
  assert.ok(readLock(p)!.ageS < 50);
  a.held.release();
  writeFileSync(p, "{ half a lo");
  const b = acquireLock(p, { staleAfterS: 600 });
  assert.ok("busy" in b && b.busy.holder === undefined);
  age(p, 700);
  const c = acquireLock(p, { staleAfterS: 600 });
  assert.ok("held" in c && c.tookOver !== undefined);
});

test("schedulerTask: a Slurm array task, a plain Slurm job, a pod of a Kubernetes Indexed Job, no scheduler", () => {
  assert.equal(schedulerTask({ SLURM_ARRAY_JOB_ID: "12", SLURM_ARRAY_TASK_ID: "3", SLURM_JOB_ID: "15" }), "slurm:12_3");
  assert.equal(schedulerTask({ SLURM_JOB_ID: "15" }), "slurm:15");
  // Every pod of index 3 of the Job "distill" is named distill-3.
  assert.equal(schedulerTask({ JOB_COMPLETION_INDEX: "3" }, "distill-3"), "k8s:distill-3");
  assert.equal(schedulerTask({ JOB_COMPLETION_INDEX: "3" }, "laptop"), undefined, "not an Indexed Job's pod name");
  assert.equal(schedulerTask({}, "distill-3"), undefined);
});
