// The shipped Slurm template on a real Slurm cluster (slow): a one-node cluster of Debian's slurm-wlm and munge on
// this machine (tools/slurm/local-cluster.sh), the template deploy/slurm/distill.sbatch submitted as a 3-task array
// with tiny settings, one task cancelled while it runs and requeued; the merged output's PNG bytes, class records and
// manifest must be a one-process run's. Skipped, saying why, where Slurm cannot start here (not installed, not
// root); CI installs it and sets CAO2_REQUIRE_SLURM=1 (.ci/run), under which those are failures instead.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { MAIN } from "../helpers/cli.js";
import { ROOT } from "../helpers/fixtures.js";
import { makeTinyModels, snapshot, TINY } from "../helpers/tiny-distill.js";

const CLUSTER = join(ROOT, "tools", "slurm", "local-cluster.sh");
const TEMPLATE = join(ROOT, "deploy", "slurm", "distill.sbatch");
const required = process.env.CAO2_REQUIRE_SLURM === "1";
/** Command-line arguments without one flag and its value. */
const without = (args: readonly string[], flag: string) => args.filter((a, i) => a !== flag && args[i - 1] !== flag);
// A TINY class takes well under a second, so a poll could miss its lock altogether; 2000 refinement iterations hold
// each class for a few seconds, long enough to see the lock and cancel the task while it is there.
const SETTINGS = [...without(TINY, "--refine-iters"), "--refine-iters", "2000"];

const onPath = (bin: string) =>
  spawnSync("/bin/sh", ["-c", `command -v ${bin} || test -x /usr/sbin/${bin}`]).status === 0;

/** Why Slurm cannot run here, or undefined. */
function slurmMissing(): string | undefined {
  const missing = ["munged", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "scancel"].filter(
    (b) => !onPath(b),
  );
  if (missing.length)
    return `Slurm is not installed (${missing.join(", ")} not found): apt-get install slurm-wlm munge (.ci/run does)`;
  if (process.getuid?.() !== 0) return "the local Slurm cluster needs root (slurmd starts jobs as their users)";
  return undefined;
}

const why = slurmMissing();
// Without the cluster's client configuration the commands would look for a system-wide one.
let slurmEnv: NodeJS.ProcessEnv = {};
const slurm = (cmd: string, args: string[]) => {
  const r = spawnSync(cmd, args, { encoding: "utf8", env: slurmEnv });
  assert.equal(r.status, 0, `${cmd} ${args.join(" ")}: ${r.stderr}`);
  return r.stdout.trim();
};
/** The array's tasks and their states (finished ones included). */
const states = (job: string) =>
  new Map(
    slurm("squeue", ["-h", "-t", "all", "-r", "-j", job, "-o", "%i %T"])
      .split("\n")
      .filter(Boolean)
      .map((l) => l.split(" ") as [string, string]),
  );
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(what: string, pred: () => boolean, ms = 300_000): Promise<void> {
  const t0 = Date.now();
  while (!pred()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await sleep(250);
  }
}

describe("deploy/slurm/distill.sbatch on a real Slurm cluster (slow)", { skip: required ? false : why }, () => {
  let dir: string;
  let clusterDir: string;
  let models: string[];
  let reference: Map<string, string>;

  before(() => {
    if (required && why) assert.fail(`CAO2_REQUIRE_SLURM=1 but ${why}`);
    dir = mkdtempSync(join(tmpdir(), "cao2-slurm-"));
    clusterDir = join(dir, "cluster");
    const started = spawnSync(CLUSTER, ["start", clusterDir], { encoding: "utf8" });
    assert.equal(started.status, 0, `tools/slurm/local-cluster.sh start: ${started.stderr}`);
    slurmEnv = { ...process.env, SLURM_CONF: join(clusterDir, "slurm.conf") };
    for (const k of Object.keys(slurmEnv)) if (k.startsWith("SLURM_") && k !== "SLURM_CONF") delete slurmEnv[k];
    models = makeTinyModels(dir);
    const one = join(dir, "one");
    const r = spawnSync(
      process.execPath,
      [MAIN, "distill", "--dit", models[0], "--vae", models[1], "--selector", models[2], ...SETTINGS, "--out", one],
      {
        encoding: "utf8",
        env: { ...slurmEnv, CI: "true" },
      },
    );
    assert.equal(r.status, 0, r.stderr);
    reference = snapshot(one);
  });

  after(() => {
    if (!clusterDir) return;
    const stopped = spawnSync(CLUSTER, ["stop", clusterDir], { encoding: "utf8" });
    assert.equal(stopped.status, 0, stopped.stderr);
    for (const d of ["munged", "slurmctld", "slurmd"])
      assert.ok(!existsSync(join(clusterDir, `${d}.pid`)), `${d} stopped`);
    rmSync(dir, { recursive: true, force: true });
  });

  test("a 3-task array, one task cancelled while it runs and requeued: the bytes of a one-process run", async () => {
    const out = join(dir, "out");
    mkdirSync(join(dir, "logs"));
    // The template as shipped, with the options a user adapts on the command line (CPU here; the node's stand-in
    // GPUs take the template's --gres=gpu:1).
    const job = slurm("sbatch", [
      "--parsable",
      "--array=0-2",
      "--cpus-per-task=1",
      "--mem=1G",
      "--time=10",
      `--chdir=${dir}`,
      `--export=ALL,CAO2=${process.execPath} ${MAIN},CAO2_DEVICE=cpu,CI=true`,
      TEMPLATE,
      "--dit",
      models[0],
      "--vae",
      models[1],
      "--selector",
      models[2],
      ...without(SETTINGS, "--threads"),
      "--out",
      out,
    ]);
    assert.match(job, /^\d+$/);
    const task1 = `${job}_1`;
    // Cancel task 1 once it is distilling its class (its class lock is there), then requeue it; Slurm holds a
    // requeued job back for a while, which the test does not wait for.
    const lock = join(`${out}.cao2`, "locks", "1.lock");
    await until(
      "task 1 to lock class 1",
      () => existsSync(lock) || existsSync(join(`${out}.cao2`, "classes", "1.json")),
    );
    assert.ok(existsSync(lock), "task 1 finished its class before it could be cancelled");
    assert.match(readFileSync(lock, "utf8"), new RegExp(`"task": "slurm:${task1}"`));
    slurm("scancel", [task1]);
    await until("task 1 to be cancelled", () => states(job).get(task1) === "CANCELLED", 60_000);
    slurm("scontrol", ["requeue", task1]);
    slurm("scontrol", ["update", `jobid=${task1}`, "StartTime=now"]);
    await until("the array to complete", () => {
      const s = states(job);
      return s.size === 3 && [...s.values()].every((v) => v === "COMPLETED");
    });
    assert.match(slurm("scontrol", ["show", "job", task1]), /\bRestarts=1\b/, "task 1 ran twice");
    // Task 1's log (appended over both runs): both runs were shard 1/3, taken from the array's variables.
    const log = readFileSync(join(dir, "logs", `cao2-distill-${task1}.out`), "utf8");
    assert.equal(
      log.match(
        /shard 1\/3 \(SLURM_ARRAY_TASK_ID=1, SLURM_ARRAY_TASK_MIN=0, SLURM_ARRAY_TASK_COUNT=3\): classes 1 \(1 of 3\)/g,
      )?.length,
      2,
      log,
    );
    assert.deepEqual(snapshot(out), reference);
    const m = JSON.parse(readFileSync(join(out, "manifest.json"), "utf8"));
    assert.deepEqual(
      m.records.map((r: { worker: { shard: string; task: string } }) => [r.worker.shard, r.worker.task]),
      [0, 1, 2].map((k) => [`${k}/3`, `slurm:${job}_${k}`]),
    );
    assert.equal(m.config.threads, 1, "threads from SLURM_CPUS_PER_TASK");
  });
});
