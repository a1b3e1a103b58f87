import assert from "node:assert/strict";
import { test } from "node:test";
import { makeCase, median, parseOptions, sideBySide } from "../../bench/common.js";
import { getNumThreads, matmul, randn } from "../../src/torch/index.js";

test("median of odd and even counts, input left unsorted", () => {
  const xs = [3, 1, 2];
  assert.equal(median(xs), 2);
  assert.deepEqual(xs, [3, 1, 2]);
  assert.equal(median([4, 1, 3, 2]), 2.5);
});

test("ratio is PyTorch's time over ours", () => {
  assert.equal(makeCase("a", 2, 3).ratio, 1.5);
});

test("bench options: defaults, overrides, and rejected values", () => {
  const d = { warmup: 3, repeats: 10 };
  assert.deepEqual(parseOptions([], d), { warmup: 3, repeats: 10, cases: [] });
  assert.deepEqual(parseOptions(["--repeats", "5", "--warmup", "0", "--cases", "a,b", "--out", "x-1"], d), {
    warmup: 0,
    repeats: 5,
    cases: ["a", "b"],
    out: "x-1",
  });
  assert.throws(() => parseOptions(["--repeats", "0"], d), /--repeats 0/);
  assert.throws(() => parseOptions(["--warmup", "1.5"], d), /--warmup 1.5/);
  assert.throws(() => parseOptions(["--out", "../x"], d), /file name/);
  assert.throws(() => parseOptions(["--repeats"], d), /missing value/);
  assert.throws(() => parseOptions(["--rounds", "2"], d), /unknown option --rounds/);
});

test("the PyTorch baseline runs with our threads and environment, one timed call per request", async () => {
  const a = randn([64, 64]);
  const r = await sideBySide(
    "bench_engine.py",
    { sgemm_1024: () => matmul(a, a).dispose() },
    { warmup: 0, repeats: 2, cases: [] },
  );
  assert.equal(r.python_env.threads, getNumThreads());
  assert.equal(r.python_env.openblas_coretype, process.env.OPENBLAS_CORETYPE ?? null);
  assert.equal(r.python_env.omp_wait_policy, process.env.OMP_WAIT_POLICY ?? null);
  const s = r.samples.sgemm_1024;
  assert.equal(s.ours_s.length, 2);
  assert.equal(s.pytorch_s.length, 2);
  assert.ok(s.pytorch_s.every((t) => t > 0) && s.pytorch_cpu_s.length === 2);
  assert.equal(r.cases[0].ratio, r.cases[0].pytorch_s / r.cases[0].ours_s);
});

test("a case the baseline does not implement is an error", async () => {
  await assert.rejects(
    sideBySide("bench_engine.py", { no_such_case: () => {} }, { warmup: 0, repeats: 1, cases: [] }),
    /lacks the case\(s\) no_such_case/,
  );
});
