import assert from "node:assert/strict";
import { test } from "node:test";
import { InputError } from "../../src/errors.js";
import * as torch from "../../src/torch/index.js";
import { chooseOpenblasCore } from "../../src/torch/native.js";

test("tensors round-trip through typed arrays for every dtype", () => {
  const cases: [torch.DType, torch.Tensor][] = [
    ["float32", torch.fromArray(new Float32Array([1.5, -2, 3]), [3])],
    ["float64", torch.fromArray(new Float64Array([1.5, -2, 3]), [3])],
    ["int32", torch.fromArray(new Int32Array([1, -2, 3]), [3])],
    ["int64", torch.fromArray(new BigInt64Array([1n, -2n, 3n]), [3])],
    ["uint8", torch.fromArray(new Uint8Array([1, 2, 255]), [3])],
    ["bool", torch.fromArray(new Uint8Array([1, 0, 1]), [3], { dtype: "bool" })],
  ];
  for (const [dtype, t] of cases) {
    assert.equal(t.dtype, dtype);
    assert.deepEqual(t.shape, [3]);
  }
  assert.deepEqual(cases[3][1].toNumbers(), [1, -2, 3]);
  assert.deepEqual(cases[5][1].toNumbers(), [1, 0, 1]);
});

test("float16 and bfloat16 convert to and from float32", () => {
  const x = torch.tensor([1, -2.5, 65504, 1e-3]);
  for (const d of ["float16", "bfloat16"] as const) {
    const h = x.to(d);
    assert.equal(h.dtype, d);
    const bits = h.toArray() as Uint16Array;
    const back = torch.fromArray(bits, [4], { dtype: d }).toFloat32Array();
    assert.deepEqual(Array.from(back), Array.from(h.toFloat32Array()));
  }
  // 1.0 is 0x3c00 in IEEE half and 0x3f80 in bfloat16.
  assert.equal((torch.tensor([1]).to("float16").toArray() as Uint16Array)[0], 0x3c00);
  assert.equal((torch.tensor([1]).to("bfloat16").toArray() as Uint16Array)[0], 0x3f80);
});

test("libtorch errors become JS Errors carrying libtorch's message, and the process carries on", () => {
  assert.throws(
    () => torch.matmul(torch.ones([2, 3]), torch.ones([2, 3])),
    /mat1 and mat2 shapes cannot be multiplied \(2x3 and 2x3\)/,
  );
  assert.throws(
    () => torch.add(torch.ones([2]), torch.ones([3])),
    /size of tensor a \(2\) must match the size of tensor b \(3\)/,
  );
  assert.throws(
    () => torch.indexSelect(torch.ones([2, 3]), 0, torch.tensor([5], { dtype: "int64" })),
    /index out of range/,
  );
  assert.throws(
    () => torch.indexSelect(torch.ones([2, 3]), 0, torch.tensor([0.5])),
    /Expected dtype int32\/int64 for index|index_select\(\): Expected dtype/,
  );
  assert.equal(torch.ones([2]).add(1).sum().item(), 4);
});

test("a disposed tensor throws a clear error when used", () => {
  const t = torch.ones([2]);
  t.dispose();
  assert.throws(() => t.add(1), /disposed/);
  assert.throws(() => t.shape, /disposed/);
});

test("tidy frees what it does not return and keeps what it returns", () => {
  let inner: torch.Tensor | undefined;
  const out = torch.tidy(() => {
    inner = torch.ones([3]);
    return { y: inner.mul(2) };
  });
  assert.ok(inner!.isDisposed);
  assert.deepEqual(out.y.toNumbers(), [2, 2, 2]);
  const kept = torch.tidy(() => torch.keep(torch.zeros([1])));
  assert.equal(kept.isDisposed, false);
});

test("tidy nested: a result of the inner scope belongs to the outer one", () => {
  let mid: torch.Tensor | undefined;
  torch.tidy(() => {
    mid = torch.tidy(() => torch.ones([1]));
    assert.equal(mid.isDisposed, false);
  });
  assert.ok(mid!.isDisposed);
});

test("OpenBLAS core type is chosen only for AVX-512 CPUs and never overrides the user", () => {
  assert.equal(chooseOpenblasCore({}, "flags\t\t: fpu sse avx2 avx512f avx512bw\n"), "SkylakeX");
  assert.equal(chooseOpenblasCore({}, "flags\t\t: fpu sse avx2\n"), undefined);
  assert.equal(chooseOpenblasCore({ OPENBLAS_CORETYPE: "Haswell" }, "flags : avx512f\n"), undefined);
});

test("threads default to every core", async () => {
  const { availableParallelism } = await import("node:os");
  if (process.env.CAO2_THREADS === undefined) assert.equal(torch.getNumThreads(), availableParallelism());
});

test("noGrad disables recording and restores the previous mode", () => {
  const w = torch.ones([2]).requiresGrad_();
  const y = torch.noGrad(() => w.mul(2));
  assert.equal(y.requiresGrad, false);
  assert.equal(torch.isGradEnabled(), true);
  const z = torch.noGrad(() => torch.enableGrad(() => w.mul(2)));
  assert.equal(z.requiresGrad, true);
});

test("cuda devices are refused with a clear message when libtorch has no CUDA", () => {
  if (torch.cudaDeviceCount() > 0) return;
  assert.deepEqual(torch.availableDevices(), ["cpu"]);
  assert.throws(
    () => torch.checkDevice("cuda:0"),
    (e: unknown) =>
      e instanceof InputError &&
      /^device cuda:0: this libtorch has no CUDA support or sees no GPU \(available: cpu;/.test(e.message),
  );
  assert.throws(
    () => torch.checkDevice("tpu", "--device"),
    (e: unknown) =>
      e instanceof InputError &&
      /^--device 'tpu' is not a device: expected cpu, cuda or cuda:N \(available: cpu\)$/.test(e.message),
  );
});
