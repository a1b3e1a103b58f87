// Class shards of `cao2 distill` without a scheduler (slow: each run spawns the CLI): shard processes started
// together on one --out, one of them SIGKILLed mid-class and restarted, give the bytes of a one-process run; the
// process that finishes the last class writes the manifest; --status; stale locks taken over (and logged); mixing
// shards of other settings and bad shard specs are refused. The same on a real Slurm cluster: slurm.test.ts.
import assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import { MAIN } from "../helpers/cli.js";
import { makeTinyModels, snapshot, tinyDistillArgs } from "../helpers/tiny-distill.js";
import { waitFor } from "../helpers/wait.js";

let dir: string;
let models: string[];
const env = (extra: NodeJS.ProcessEnv = {}) => {
  const e: NodeJS.ProcessEnv = { ...process.env, CI: "true", ...extra };
  // The tests run outside any scheduler, whatever the environment they were started from.
  for (const k of Object.keys(e)) if (k.startsWith("SLURM_") && !(k in extra)) delete e[k];
  return e;
};
const args = (out: string, extra: string[] = []) => tinyDistillArgs(models, out, extra);
const runCli = (argv: string[], extraEnv: NodeJS.ProcessEnv = {}) =>
  spawnSync(process.execPath, [MAIN, ...argv], { encoding: "utf8", env: env(extraEnv) });
const start = (argv: string[]) => {
  const child = spawn(process.execPath, [MAIN, ...argv], { env: env() });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => (stdout += d));
  child.stderr.on("data", (d: Buffer) => (stderr += d));
  const done = new Promise<{ status: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>(
    (r) => child.on("close", (status, signal) => r({ status, signal, stdout, stderr })),
  );
  return { child, done };
};
const lockOf = (out: string, label: number) => join(`${out}.cao2`, "locks", `${label}.lock`);
const recordOf = (out: string, label: number) => join(`${out}.cao2`, "classes", `${label}.json`);

/** A lock file as another process on another machine would have left it. */
function foreignLock(path: string, ageS: number, pid = 4242): void {
  writeFileSync(
    path,
    JSON.stringify({
      host: "other-host",
      pid,
      since: "2026-01-01T00:00:00.000Z",
      role: "shard 1/2",
      token: "feedfacefeedface",
    }),
  );
  const t = Date.now() / 1000 - ageS;
  utimesSync(path, t, t);
}

describe("cao2 distill --shard: several processes, one output (slow)", () => {
  let reference: Map<string, string>;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), "cao2-shards-"));
    models = makeTinyModels(dir);
    const one = join(dir, "one");
    const r = runCli(args(one));
    assert.equal(r.status, 0, r.stderr);
    reference = snapshot(one);
  });

  test("3 shards started together, one SIGKILLed mid-class and restarted: the bytes of a one-process run", async () => {
    const out = join(dir, "three");
    const shards = [0, 1, 2].map((k) => start(args(out, ["--shard", `${k}/3`])));
    // Shard 1 distils class 1: kill it while its lock is held and before its record exists.
    await waitFor(() => existsSync(lockOf(out, 1)), shards[1].child as ChildProcess);
    assert.ok(!existsSync(recordOf(out, 1)), "killed before class 1 was finished");
    shards[1].child.kill("SIGKILL");
    const killed = await shards[1].done;
    assert.equal(killed.signal, "SIGKILL");
    const [first, third] = [await shards[0].done, await shards[2].done];
    for (const [r, k] of [
      [first, 0],
      [third, 2],
    ] as const) {
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stderr, new RegExp(`shard ${k}/3 \\(--shard ${k}/3\\): classes ${k} \\(1 of 3\\)`));
      // The other live shard may or may not have finished yet; class 1 cannot have.
      assert.match(
        r.stdout,
        new RegExp(
          `^shard ${k}/3 done in .*; classes not done yet: (${2 - k}, )?1(, ${2 - k})? \\(of 3\\); the process that finishes the last one writes the manifest\\n`,
        ),
      );
    }
    assert.ok(!existsSync(join(out, "manifest.json")), "no manifest while a class is missing");
    assert.ok(!existsSync(join(out, "classes.txt")));
    // The killed shard's lock is left; --status names its holder and why it is stale.
    const status = runCli(["distill", "--out", out, "--status"]);
    assert.equal(status.status, 0, status.stderr);
    assert.match(
      status.stdout,
      new RegExp(
        `^${out} \\(state ${out}\\.cao2\\): 3 classes, 2 done, 1 running, 0 missing; manifest not written yet\\n`,
      ),
    );
    assert.match(status.stdout, /\n {2}0 T-shirt\/top +done +by shard 0\/3, host \S+ pid \d+\n/);
    assert.match(
      status.stdout,
      new RegExp(
        `\\n {2}1 Trouser +running +shard 1/3, host \\S+ pid ${shards[1].child.pid}, since [^;]+; heartbeat \\d+ s ago \\(stale: its process ${shards[1].child.pid} on this host is gone; the next process for this class takes it over\\)\\n`,
      ),
    );
    const finished = [recordOf(out, 0), recordOf(out, 2)].map((p) => readFileSync(p, "utf8"));
    // The restarted shard takes the class over, finishes it last and writes the manifest.
    const again = runCli(args(out, ["--shard", "1/3"]));
    assert.equal(again.status, 0, again.stderr);
    assert.match(
      again.stderr,
      new RegExp(
        `took over the stale lock of class 1 \\(shard 1/3, host \\S+ pid ${shards[1].child.pid}, since [^)]+\\): its process ${shards[1].child.pid} on this host is gone`,
      ),
    );
    assert.match(again.stdout, /^distilled 3 classes x 2 images into /);
    assert.deepEqual(
      [recordOf(out, 0), recordOf(out, 2)].map((p) => readFileSync(p, "utf8")),
      finished,
      "other shards' classes are never rewritten",
    );
    assert.deepEqual(snapshot(out), reference);
    const m = JSON.parse(readFileSync(join(out, "manifest.json"), "utf8"));
    assert.deepEqual(
      m.execution.shards.map((s: { shard: string; classes: number[] }) => [s.shard, s.classes]),
      [
        ["0/3", [0]],
        ["1/3", [1]],
        ["2/3", [2]],
      ],
    );
    assert.equal(m.execution.hosts.length, 1);
    assert.equal(m.records[1].worker.shard, "1/3");
    const after = runCli(["distill", "--out", out, "--status"]);
    assert.match(after.stdout, /3 classes, 3 done, 0 running, 0 missing; manifest written\n/);
  });

  test("an Indexed Job pod (JOB_COMPLETION_INDEX with --shards) and a requeued Slurm array task (SLURM_ARRAY_TASK_ID/COUNT) pick their shard", () => {
    const out = join(dir, "env");
    const k8s = runCli(args(out, ["--shards", "2"]), { JOB_COMPLETION_INDEX: "0" });
    assert.equal(k8s.status, 0, k8s.stderr);
    assert.match(k8s.stderr, /shard 0\/2 \(--shards 2 with JOB_COMPLETION_INDEX=0\): classes 0 \(1 of 3\)/);
    // Array task 1 of job 77 ran before on another node, which died with it (fresh heartbeat, pid not ours to check):
    // its requeued run takes the class over at once, as its own.
    writeFileSync(
      lockOf(out, 1),
      JSON.stringify({
        host: "node7",
        pid: 99,
        since: "2026-01-01T00:00:00.000Z",
        task: "slurm:77_1",
        token: "0123456789abcdef",
      }),
    );
    const slurm = runCli(args(out), {
      SLURM_ARRAY_TASK_ID: "1",
      SLURM_ARRAY_TASK_MIN: "0",
      SLURM_ARRAY_TASK_COUNT: "2",
      SLURM_ARRAY_JOB_ID: "77",
    });
    assert.equal(slurm.status, 0, slurm.stderr);
    assert.match(
      slurm.stderr,
      /shard 1\/2 \(SLURM_ARRAY_TASK_ID=1, SLURM_ARRAY_TASK_MIN=0, SLURM_ARRAY_TASK_COUNT=2\): classes 1, 2 \(2 of 3\)/,
    );
    assert.match(
      slurm.stderr,
      /took over the stale lock of class 1 \(host node7 pid 99 \(slurm:77_1\), since 2026-01-01T00:00:00\.000Z\): it was taken by an earlier run of this task \(slurm:77_1\)/,
    );
    assert.equal(JSON.parse(readFileSync(recordOf(out, 2), "utf8")).worker.task, "slurm:77_1");
    assert.deepEqual(snapshot(out), reference);
  });

  test("a stale lock (another host, no heartbeat for longer than the rule) is taken over and logged; a live one is waited for", async () => {
    const out = join(dir, "stale");
    assert.equal(runCli(args(out, ["--shard", "0/2"])).status, 0);
    foreignLock(lockOf(out, 1), 7200);
    foreignLock(lockOf(out, 2), 0);
    const status = runCli(["distill", "--out", out, "--status"]);
    assert.match(
      status.stdout,
      /\n {2}1 Trouser +running +shard 1\/2, host other-host pid 4242, since 2026-01-01T00:00:00\.000Z; heartbeat 72\d\d s ago \(stale: no heartbeat for 72\d\d s \(the stale age is 600 s\); /,
    );
    assert.match(
      status.stdout,
      /\n {2}2 Pullover +running +shard 1\/2, host other-host pid 4242, since [^;]+; heartbeat \d+ s ago\n/,
    );
    // Class 1's lock is stale at once. Class 2's holder is alive (its heartbeat kept fresh here) until the shard says
    // it waits for it; then the heartbeat stops, and after the 3 s given here the shard takes the class over.
    const beat = setInterval(() => foreignLock(lockOf(out, 2), 0), 200);
    const shard = start(args(out, ["--shard", "1/2", "--stale-lock-after", "3"]));
    let stderr = "";
    shard.child.stderr!.on("data", (d: Buffer) => (stderr += d));
    try {
      await waitFor(() => /waiting for it/.test(stderr), shard.child as ChildProcess);
    } finally {
      clearInterval(beat);
    }
    const r = await shard.done;
    assert.equal(r.status, 0, r.stderr);
    assert.match(
      r.stderr,
      /took over the stale lock of class 1 \(shard 1\/2, host other-host pid 4242, since 2026-01-01T00:00:00\.000Z\): no heartbeat for 72\d\d s \(the stale age is 3 s\)/,
    );
    assert.match(
      r.stderr,
      /class 2 \(Pullover\) is being distilled by shard 1\/2, host other-host pid 4242, since 2026-01-01T00:00:00\.000Z: waiting for it/,
    );
    assert.match(r.stderr, /took over the stale lock of class 2 .*: no heartbeat for [3-9] s \(the stale age is 3 s\)/);
    assert.deepEqual(snapshot(out), reference);
  });

  test("bad input: malformed shards, and shards of other settings in one --out, are refused (one line, exit 2)", () => {
    const bad = (argv: string[], pattern: RegExp, extraEnv: NodeJS.ProcessEnv = {}) => {
      const r = runCli(argv, extraEnv);
      assert.equal(r.status, 2, `${argv.join(" ")}: exit ${r.status}\n${r.stderr}`);
      assert.match(r.stderr, pattern);
      assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    };
    const fresh = () => join(dir, `bad-${Math.random().toString(36).slice(2)}`);
    bad(
      args(fresh(), ["--shard", "3/2"]),
      /^cao2 distill: error: --shard 3\/2: the shard index K must be in 0\.\.1 \(K\/N counts K from 0\), got 3\n$/,
    );
    bad(
      args(fresh(), ["--shard", "0/0"]),
      /^cao2 distill: error: --shard 0\/0: the shard count N must be at least 1, got 0\n$/,
    );
    bad(args(fresh(), ["--shard", "1of3"]), /--shard 1of3: expected K\/N, shard K of N with K counted from 0/);
    bad(args(fresh(), ["--shard", "0/2", "--shards", "2"]), /give either --shard K\/N or --shards N/);
    bad(
      args(fresh(), ["--shards", "3"]),
      /--shards 3 takes the shard index from JOB_COMPLETION_INDEX .* and neither is set; use --shard K\/N/,
    );
    bad(
      args(fresh(), ["--shards", "3"]),
      /--shards 3 with JOB_COMPLETION_INDEX=3: the shard index K must be in 0\.\.2/,
      { JOB_COMPLETION_INDEX: "3" },
    );
    bad(args(fresh()), /SLURM_ARRAY_TASK_ID=4, .*SLURM_ARRAY_TASK_COUNT=2: the array must be contiguous/, {
      SLURM_ARRAY_TASK_ID: "4",
      SLURM_ARRAY_TASK_COUNT: "2",
    });
    bad(
      args(fresh(), ["--shard", "0/2", "--compat", "authors"]),
      /--compat authors draws every class from one random stream in class order, so its classes cannot be split into shards/,
    );
    const out = fresh();
    assert.equal(runCli(args(out, ["--shard", "0/3"])).status, 0);
    bad(
      args(out, ["--shard", "1/3", "--seed", "5"]),
      /was started with other settings \(seed differ\); resume with the same flags/,
    );
    bad(args(out, ["--shard", "1/3", "--ipc", "3"]), /was started with other settings \(ipc differ\)/);
    bad(args(out, ["--shard", "1/3", "--classes", "0-3"]), /was started with other settings \(classes differ\)/);
    assert.ok(!existsSync(recordOf(out, 1)), "nothing distilled by a refused shard");
    bad(
      ["distill", "--out", join(dir, "nowhere"), "--status"],
      /no cao2 run in .*nowhere: its state folder .*nowhere\.cao2 holds no run\.json/,
    );
    bad(
      ["distill", "--out", out, "--status", "--seed", "3"],
      /--status only reads the run in --out \(and --state\); it takes no --seed/,
    );
    rmSync(out, { recursive: true });
  });
});
