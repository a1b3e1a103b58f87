// Shard specs and the split of a run's classes: from --shard, from a Slurm job array's variables, from a Kubernetes
// Indexed Job's index with --shards; balanced contiguous blocks that cover every class once.
import assert from "node:assert/strict";
import { test } from "node:test";
import { parseShard, resolveShard, shardClasses } from "../../src/distill/shards.js";

test("parseShard: K/N with K from 0; bad specs name what was expected", () => {
  assert.deepEqual(parseShard("2/4"), { index: 2, count: 4, source: "--shard 2/4" });
  assert.throws(
    () => parseShard("3/2"),
    /^InputError: --shard 3\/2: the shard index K must be in 0\.\.1 \(K\/N counts K from 0\), got 3$/,
  );
  assert.throws(() => parseShard("0/0"), /--shard 0\/0: the shard count N must be at least 1, got 0/);
  for (const bad of ["1", "1/", "-1/3", "1.5/3", "a/b", ""]) assert.throws(() => parseShard(bad), /expected K\/N/, bad);
});

test("resolveShard: the flag, then --shards with the scheduler's index, then a Slurm array, else none", () => {
  assert.equal(resolveShard({}, {}), undefined);
  assert.deepEqual(resolveShard({ shard: "1/2" }, { SLURM_ARRAY_TASK_ID: "5", SLURM_ARRAY_TASK_COUNT: "9" }), {
    index: 1,
    count: 2,
    source: "--shard 1/2",
  });
  // Slurm: the task's place in a contiguous array (--array=1-3 counts from its MIN).
  assert.deepEqual(
    resolveShard({}, { SLURM_ARRAY_TASK_ID: "3", SLURM_ARRAY_TASK_MIN: "1", SLURM_ARRAY_TASK_COUNT: "3" }),
    {
      index: 2,
      count: 3,
      source: "SLURM_ARRAY_TASK_ID=3, SLURM_ARRAY_TASK_MIN=1, SLURM_ARRAY_TASK_COUNT=3",
    },
  );
  assert.throws(
    () => resolveShard({}, { SLURM_ARRAY_TASK_ID: "8", SLURM_ARRAY_TASK_MIN: "0", SLURM_ARRAY_TASK_COUNT: "3" }),
    /the array must be contiguous \(e\.g\. --array=0-2\)/,
  );
  assert.throws(() => resolveShard({}, { SLURM_ARRAY_TASK_ID: "0" }), /without SLURM_ARRAY_TASK_COUNT/);
  assert.throws(
    () => resolveShard({}, { SLURM_ARRAY_TASK_ID: "x", SLURM_ARRAY_TASK_COUNT: "3" }),
    /SLURM_ARRAY_TASK_ID=x in the environment is not a non-negative integer/,
  );
  // Kubernetes Indexed Job: the index from JOB_COMPLETION_INDEX, the count from --shards.
  assert.deepEqual(resolveShard({ shards: 4 }, { JOB_COMPLETION_INDEX: "3" }), {
    index: 3,
    count: 4,
    source: "--shards 4 with JOB_COMPLETION_INDEX=3",
  });
  assert.equal(resolveShard({ shards: 4 }, { SLURM_ARRAY_TASK_ID: "1", SLURM_ARRAY_TASK_COUNT: "2" })?.index, 1);
  assert.throws(() => resolveShard({ shards: 4 }, {}), /neither is set/);
  assert.throws(() => resolveShard({ shard: "0/1", shards: 4 }, {}), /not both/);
});

test("shardClasses: contiguous blocks in order, sizes differing by at most one, every class exactly once", () => {
  const classes = Array.from({ length: 1000 }, (_, i) => i);
  for (const n of [1, 3, 7, 16, 999, 1000, 1500]) {
    const parts = Array.from({ length: n }, (_, k) => shardClasses(classes, { index: k, count: n }));
    assert.deepEqual(parts.flat(), classes, `${n} shards`);
    const sizes = parts.map((p) => p.length);
    assert.ok(
      Math.max(...sizes) - Math.min(...sizes) <= 1,
      `${n} shards: sizes ${Math.min(...sizes)}..${Math.max(...sizes)}`,
    );
  }
  assert.deepEqual(
    [0, 1, 2].map((k) => shardClasses(["a", "b", "c", "d"], { index: k, count: 3 })),
    [["a"], ["b"], ["c", "d"]],
  );
});
