// PyTorch parity of every tensor op: the same table of cases as tools/reference/ops_fixtures.py, run with our API on
// the fixture's inputs. Float outputs and gradients of sum_i (out_i * w_i).sum() must match at rel err <= 1e-5;
// integer, bool and float16/bfloat16 results (and indices) must be equal bit for bit.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, test } from "node:test";
import { loadSafetensors } from "../../src/io/safetensors.js";
import * as torch from "../../src/torch/index.js";
import { fixture, relErr } from "../helpers/fixtures.js";

type Tensor = torch.Tensor;
type Case = (x: Record<string, Tensor>) => Tensor | Tensor[];
const { F } = torch;
const TOL = 1e-5;
const gen = (seed: number) => new torch.Generator(seed);
const seeded = <T>(seed: number, fn: () => T): T => {
  torch.manualSeed(seed);
  return fn();
};

/** Applies an in-place helper to a clone of t and returns the clone. */
const inPlace = (t: Tensor, fn: (r: Tensor) => void) => {
  const r = t.clone();
  fn(r);
  return r;
};

const COMPARISONS = ["eq", "ne", "lt", "le", "gt", "ge"] as const;

const CASES: Record<string, Case> = {
  // ----- creation -----
  zeros: () => torch.zeros([2, 3]),
  zeros_int64: () => torch.zeros([2, 3], { dtype: "int64" }),
  ones: () => torch.ones([4]),
  ones_bool: () => torch.ones([2, 2], { dtype: "bool" }),
  full: () => torch.full([2, 3], 2.5),
  full_int64: () => torch.full([4], 7, { dtype: "int64" }),
  empty: () => torch.empty([2, 3, 4]),
  arange_n: () => torch.arange(10),
  arange_int_step: () => torch.arange(-3, 7, 2),
  arange_float: () => torch.arange(1, 2.5, 0.25),
  linspace: () => torch.linspace(0, 1, 7),
  linspace_neg: () => torch.linspace(-2, 3, 11),
  eye: () => torch.eye(4),
  eye_rect: () => torch.eye(3, 5),
  zeros_like: ({ x }) => torch.zerosLike(x),
  zeros_like_int64: ({ x }) => torch.zerosLike(x, { dtype: "int64" }),
  ones_like: ({ x }) => torch.onesLike(x),
  full_like: ({ x }) => torch.fullLike(x, -1.5),
  empty_like: ({ x }) => torch.emptyLike(x),
  randn_gen: () => torch.randn([4, 5], { generator: gen(3) }),
  randn_gen_f64: () => torch.randn([7], { generator: gen(3), dtype: "float64" }),
  rand_gen: () => torch.rand([3, 6], { generator: gen(4) }),
  randint_gen: () => torch.randint(0, 10, [20], { generator: gen(5) }),
  randint_gen_neg: () => torch.randint(-50, 50, [3, 4], { generator: gen(6) }),
  randperm_gen: () => torch.randperm(20, { generator: gen(7) }),
  randn_manual_seed: () => seeded(11, () => torch.randn([3, 4])),
  randn_like_manual_seed: ({ x }) => seeded(12, () => torch.randnLike(x)),
  rand_like_manual_seed: ({ x }) => seeded(13, () => torch.randLike(x)),
  normal_inplace: () => {
    const t = torch.empty([10]);
    torch.normalInto(t, 2, 0.5, gen(8));
    return t;
  },
  uniform_inplace: () => {
    const t = torch.empty([10]);
    torch.uniformInto(t, -1, 3, gen(9));
    return t;
  },

  // ----- shape -----
  reshape: ({ x }) => x.reshape(4, 6),
  reshape_infer: ({ x }) => torch.reshape(x, [-1, 3]),
  view: ({ x }) => x.view(6, 4),
  permute: ({ x }) => x.permute(2, 0, 1),
  transpose: ({ x }) => x.transpose(0, 2),
  contiguous: ({ x }) => x.transpose(0, 1).contiguous(),
  flatten: ({ x }) => x.flatten(),
  flatten_range: ({ x }) => x.flatten(1, 2),
  squeeze: ({ x }) => x.squeeze(),
  squeeze_dim: ({ x }) => x.squeeze(1),
  unsqueeze: ({ x }) => x.unsqueeze(1),
  unsqueeze_neg: ({ x }) => x.unsqueeze(-1),
  expand: ({ x }) => x.expand(2, 3, 4),
  expand_as: ({ x, y }) => torch.expandAs(x, y),
  repeat: ({ x }) => x.repeat(2, 1, 3),
  cat: ({ a, b }) => torch.cat([a, b], 1),
  cat_dim0: ({ a, b, c }) => torch.cat([a, b, c]),
  stack: ({ a, b }) => torch.stack([a, b]),
  stack_last: ({ a, b }) => torch.stack([a, b], -1),
  chunk: ({ x }) => x.chunk(3, 1),
  split: ({ x }) => x.split(2),
  split_sizes: ({ x }) => x.split([1, 3], 1),
  narrow: ({ x }) => x.narrow(1, 1, 3),
  slice_step: ({ x }) => x.slice(1, 1, undefined, 2),
  slice_range: ({ x }) => x.index([1, 3], null, [2, 5, 2]),
  slice_neg: ({ x }) => torch.slice(x, 0, -3, -1),
  select: ({ x }) => x.select(1, 2),
  index_mixed: ({ x }) => x.index(1, null, [null, null, 2]),
  index_select: ({ x, i }) => x.indexSelect(1, i),
  gather: ({ x, i }) => x.gather(1, i),
  scatter_src: ({ x, i, s }) => torch.scatter(x, 1, i, s),
  scatter_value: ({ x, i }) => torch.scatter(x, 0, i, 2.5),
  scatter_add: ({ x, i, s }) => torch.scatterAdd(x, 1, i, s),
  masked_fill: ({ x, m }) => x.maskedFill(m, -3),
  masked_fill_broadcast: ({ x, m }) => x.maskedFill(m, 1.5),
  where: ({ c, a, b }) => torch.where(c, a, b),
  where_scalar_other: ({ c, a }) => torch.where(c, a, 0.5),
  where_scalar_self: ({ c, b }) => torch.where(c, -1, b),
  flip: ({ x }) => x.flip(0, 2),
  roll: ({ x }) => torch.roll(x, 2, 1),
  roll_multi: ({ x }) => torch.roll(x, [1, -2], [0, 1]),
  pad_constant: ({ x }) => torch.pad(x, [1, 2, 0, 1], "constant", 0.5),
  pad_reflect: ({ x }) => torch.pad(x, [2, 1, 1, 2], "reflect"),
  pad_replicate: ({ x }) => torch.pad(x, [1, 3, 2, 0], "replicate"),
  pad_reflect_1d: ({ x }) => torch.pad(x, [3, 2], "reflect"),

  // ----- elementwise -----
  add: ({ a, b }) => a.add(b),
  add_broadcast: ({ a, b }) => torch.add(a, b),
  add_alpha: ({ a, b }) => torch.add(a, b, -0.5),
  add_scalar: ({ a }) => a.add(1.25),
  add_int64: ({ a, b }) => a.add(b),
  sub: ({ a, b }) => a.sub(b),
  sub_scalar: ({ a }) => a.sub(3),
  rsub: ({ a }) => torch.rsub(2, a),
  mul: ({ a, b }) => a.mul(b),
  mul_scalar: ({ a }) => a.mul(-2.5),
  div: ({ a, b }) => a.div(b),
  div_scalar: ({ a }) => a.div(3),
  pow_scalar: ({ a }) => a.pow(2.5),
  pow_int: ({ a }) => a.pow(3),
  pow_tensor: ({ a, e }) => a.pow(e),
  pow_scalar_base: ({ e }) => torch.pow(2, e),
  sqrt: ({ a }) => a.sqrt(),
  rsqrt: ({ a }) => a.rsqrt(),
  exp: ({ a }) => a.exp(),
  log: ({ a }) => a.log(),
  abs: ({ a }) => a.abs(),
  neg: ({ a }) => a.neg(),
  sign: ({ a }) => torch.sign(a),
  square: ({ a }) => torch.square(a),
  round: ({ a }) => torch.round(a),
  floor: ({ a }) => torch.floor(a),
  clamp: ({ a }) => a.clamp(-0.5, 0.7),
  clamp_min: ({ a }) => a.clamp(0.1),
  clamp_max: ({ a }) => a.clamp(undefined, -0.2),
  clamp_tensor: ({ a, lo, hi }) => torch.clamp(a, lo, hi),
  minimum: ({ a, b }) => torch.minimum(a, b),
  maximum: ({ a, b }) => torch.maximum(a, b),
  sin: ({ a }) => torch.sin(a),
  cos: ({ a }) => torch.cos(a),
  tanh: ({ a }) => torch.tanh(a),
  sigmoid: ({ a }) => torch.sigmoid(a),
  addcmul: ({ t, a, b }) => torch.addcmul(t, a, b, 0.5),
  addcdiv: ({ t, a, b }) => torch.addcdiv(t, a, b, -2),
  lerp: ({ a, b }) => torch.lerp(a, b, 0.3),
  add_inplace: ({ a, b }) => a.clone().add_(b, 2),
  add_inplace_scalar: ({ a }) => a.clone().add_(0.5),
  mul_inplace: ({ a, b }) => a.clone().mul_(b),
  mul_inplace_scalar: ({ a }) => a.clone().mul_(-3),
  addcmul_inplace: ({ t, a, b }) => inPlace(t, (r) => torch.addcmulInto(r, a, b, 0.3)),
  addcdiv_inplace: ({ t, a, b }) => inPlace(t, (r) => torch.addcdivInto(r, a, b, -0.7)),
  clamp_inplace: ({ a }) => inPlace(a, (r) => torch.clampInto(r, -0.3, 0.4)),
  copy_inplace: ({ a, b }) => a.clone().copy_(b),
  fill_inplace: ({ a }) => a.clone().fill_(1.5),
  ...Object.fromEntries(
    COMPARISONS.flatMap((op): [string, Case][] => [
      [op, ({ a, b }) => a[op](b)],
      [`${op}_scalar`, ({ a }) => torch[op](a, 1)],
    ]),
  ),
  logical_and: ({ a, b }) => torch.logicalAnd(a, b),
  logical_or: ({ a, b }) => torch.logicalOr(a, b),
  logical_xor: ({ a, b }) => torch.logicalXor(a, b),
  logical_not: ({ a }) => torch.logicalNot(a),
  isfinite: ({ a }) => torch.isfinite(a),

  // ----- reductions -----
  sum: ({ x }) => x.sum(),
  sum_dim: ({ x }) => x.sum(1),
  sum_dims_keepdim: ({ x }) => x.sum([0, 2], true),
  sum_int64: ({ x }) => x.sum(),
  mean: ({ x }) => x.mean(),
  mean_dim: ({ x }) => x.mean(-1),
  mean_dims_keepdim: ({ x }) => x.mean([1, 2], true),
  max_all: ({ x }) => x.max(),
  min_all: ({ x }) => x.min(),
  max_dim: ({ x }) => torch.maxDim(x, 1),
  max_dim_keepdim: ({ x }) => torch.maxDim(x, 0, true),
  min_dim: ({ x }) => torch.minDim(x, -1),
  argmax_all: ({ x }) => x.argmax(),
  argmax_dim: ({ x }) => x.argmax(1),
  argmax_keepdim: ({ x }) => x.argmax(0, true),
  argmin_dim: ({ x }) => torch.argmin(x, 1),
  amax: ({ x }) => torch.amax(x, 1),
  amax_all: ({ x }) => torch.amax(x),
  amax_dims: ({ x }) => torch.amax(x, [0, 2], true),
  amin: ({ x }) => torch.amin(x, 0),
  var: ({ x }) => torch.variance(x),
  var_dim: ({ x }) => torch.variance(x, 1),
  var_biased_keepdim: ({ x }) => torch.variance(x, [0, 2], { unbiased: false, keepdim: true }),
  std: ({ x }) => torch.std(x),
  std_dim_biased: ({ x }) => torch.std(x, 0, { unbiased: false }),
  logsumexp: ({ x }) => torch.logsumexp(x, 1),
  logsumexp_keepdim: ({ x }) => torch.logsumexp(x, [0, 1], true),
  norm_p1: ({ x }) => x.norm(1),
  norm_p2: ({ x }) => x.norm(),
  norm_inf: ({ x }) => x.norm(Infinity),
  norm_p2_dim: ({ x }) => x.norm(2, 1),
  norm_p1_dims_keepdim: ({ x }) => x.norm(1, [1, 2], true),
  norm_inf_dim: ({ x }) => torch.norm(x, Infinity, 0),
  sort: ({ x }) => torch.sort(x),
  sort_desc_dim0: ({ x }) => torch.sort(x, 0, true),
  sort_ties: ({ x }) => torch.sort(x),
  argsort: ({ x }) => torch.argsort(x),
  argsort_desc: ({ x }) => torch.argsort(x, 0, true),
  topk: ({ x }) => torch.topk(x, 3),
  topk_smallest_dim0: ({ x }) => torch.topk(x, 2, 0, false),
  cumsum: ({ x }) => torch.cumsum(x, 1),
  cumsum_dim0: ({ x }) => torch.cumsum(x, 0),
  all: ({ m }) => torch.all(m),
  any: ({ m }) => torch.any(m),

  // ----- linear algebra -----
  matmul: ({ a, b }) => a.matmul(b),
  matmul_batched_broadcast: ({ a, b }) => torch.matmul(a, b),
  matmul_vec: ({ a, v }) => torch.matmul(a, v),
  bmm: ({ a, b }) => torch.bmm(a, b),
  outer: ({ a, b }) => torch.outer(a, b),
  linear: ({ x, w, b }) => F.linear(x, w, b),
  linear_nobias: ({ x, w }) => F.linear(x, w),

  // ----- convolution, pooling, resampling -----
  conv2d: ({ x, w, b }) => F.conv2d(x, w, b),
  conv2d_stride_pad: ({ x, w, b }) => F.conv2d(x, w, b, { stride: 2, padding: 1 }),
  conv2d_dilation: ({ x, w }) => F.conv2d(x, w, null, { padding: [2, 1], dilation: [2, 1] }),
  conv2d_groups: ({ x, w, b }) => F.conv2d(x, w, b, { stride: [1, 2], padding: 1, groups: 2 }),
  conv2d_depthwise: ({ x, w }) => F.conv2d(x, w, null, { groups: 3 }),
  conv_transpose2d: ({ x, w, b }) => F.convTranspose2d(x, w, b),
  conv_transpose2d_stride: ({ x, w, b }) => F.convTranspose2d(x, w, b, { stride: 2, padding: 1, outputPadding: 1 }),
  conv_transpose2d_groups_dilation: ({ x, w }) => F.convTranspose2d(x, w, null, { groups: 2, dilation: 2 }),
  max_pool2d: ({ x }) => F.maxPool2d(x, 2),
  max_pool2d_stride_pad: ({ x }) => F.maxPool2d(x, 3, { stride: 2, padding: 1 }),
  max_pool2d_ceil: ({ x }) => F.maxPool2d(x, 2, { ceilMode: true }),
  avg_pool2d: ({ x }) => F.avgPool2d(x, 2),
  avg_pool2d_pad_exclude: ({ x }) => F.avgPool2d(x, 3, { stride: 2, padding: 1, countIncludePad: false }),
  avg_pool2d_pad_include: ({ x }) => F.avgPool2d(x, 3, { stride: 2, padding: 1 }),
  adaptive_avg_pool2d: ({ x }) => F.adaptiveAvgPool2d(x, [3, 3]),
  adaptive_avg_pool2d_1: ({ x }) => F.adaptiveAvgPool2d(x, 1),
  interp_nearest_size: ({ x }) => F.interpolate(x, { size: [7, 5] }),
  interp_nearest_scale: ({ x }) => F.interpolate(x, { scaleFactor: 2 }),
  interp_bilinear_size: ({ x }) => F.interpolate(x, { size: [7, 9], mode: "bilinear" }),
  interp_bilinear_align: ({ x }) => F.interpolate(x, { size: [7, 9], mode: "bilinear", alignCorners: true }),
  interp_bilinear_down: ({ x }) => F.interpolate(x, { scaleFactor: 0.5, mode: "bilinear" }),

  // ----- normalisation -----
  layer_norm: ({ x, w, b }) => F.layerNorm(x, [6], w, b),
  layer_norm_noaffine: ({ x }) => F.layerNorm(x, [4, 6], null, null, 1e-6),
  group_norm: ({ x, w, b }) => F.groupNorm(x, 2, w, b),
  group_norm_noaffine: ({ x }) => F.groupNorm(x, 3, null, null, 1e-6),
  batch_norm_train: ({ x, w, b, rm, rv }) => {
    const [runningMean, runningVar] = [rm.clone(), rv.clone()];
    return [
      F.batchNorm(x, true, { weight: w, bias: b, runningMean, runningVar, momentum: 0.2 }),
      runningMean,
      runningVar,
    ];
  },
  batch_norm_train_nostats: ({ x }) => F.batchNorm(x, true),
  batch_norm_eval: ({ x, w, b, rm, rv }) =>
    F.batchNorm(x, false, { weight: w, bias: b, runningMean: rm, runningVar: rv, eps: 1e-3 }),
  instance_norm: ({ x, w, b }) => F.instanceNorm(x, { weight: w, bias: b }),

  // ----- activations -----
  softmax: ({ x }) => F.softmax(x, 1),
  softmax_dim0: ({ x }) => F.softmax(x, 0),
  log_softmax: ({ x }) => F.logSoftmax(x, -1),
  gelu: ({ x }) => F.gelu(x),
  gelu_tanh: ({ x }) => F.gelu(x, "tanh"),
  silu: ({ x }) => F.silu(x),
  relu: ({ x }) => F.relu(x),
  relu6: ({ x }) => F.relu6(x),
  hardswish: ({ x }) => F.hardswish(x),
  dropout_seeded: ({ x }) => seeded(21, () => F.dropout(x, 0.3, true)),
  dropout_p0: ({ x }) => F.dropout(x, 0, true),
  dropout_eval: ({ x }) => F.dropout(x, 0.5, false),
  embedding: ({ w, i }) => F.embedding(w, i),

  // ----- losses -----
  cross_entropy: ({ x, t }) => F.crossEntropy(x, t),
  cross_entropy_weight_ignore: ({ x, t, w }) => F.crossEntropy(x, t, { weight: w }),
  cross_entropy_sum: ({ x, t }) => F.crossEntropy(x, t, { reduction: "sum" }),
  cross_entropy_none_4d: ({ x, t }) => F.crossEntropy(x, t, { reduction: "none" }),
  cross_entropy_smoothing: ({ x, t }) => F.crossEntropy(x, t, { labelSmoothing: 0.1 }),
  cross_entropy_soft: ({ x, p }) => F.crossEntropy(x, p),
  cross_entropy_soft_smoothing: ({ x, p }) => F.crossEntropy(x, p, { labelSmoothing: 0.2 }),
  kl_div_batchmean: ({ x, p }) => F.klDiv(x, p, { reduction: "batchmean" }),
  kl_div_mean: ({ x, p }) => F.klDiv(x, p),
  kl_div_sum: ({ x, p }) => F.klDiv(x, p, { reduction: "sum" }),
  kl_div_none: ({ x, p }) => F.klDiv(x, p, { reduction: "none" }),
  kl_div_log_target: ({ x, q }) => F.klDiv(x, q, { reduction: "batchmean", logTarget: true }),
  mse_loss: ({ x, y }) => F.mseLoss(x, y),
  mse_loss_sum: ({ x, y }) => F.mseLoss(x, y, "sum"),
  mse_loss_none: ({ x, y }) => F.mseLoss(x, y, "none"),
  l1_loss: ({ x, y }) => F.l1Loss(x, y),
  l1_loss_sum: ({ x, y }) => F.l1Loss(x, y, "sum"),

  // ----- dtype conversion -----
  to_float16: ({ x }) => x.to("float16"),
  to_bfloat16: ({ x }) => x.to("bfloat16"),
  float16_to_float32: ({ h }) => h.float(),
  bfloat16_to_float32: ({ h }) => h.float(),
  float32_to_float64: ({ x }) => x.to("float64"),
  float32_to_int64: ({ x }) => x.long(),
  int64_to_float32: ({ i }) => i.float(),
  bool_to_float32: ({ m }) => m.float(),
  float32_to_bool: ({ x }) => x.to("bool"),
};

// ---------------------------------------------------------------------------------------------------------------

interface Meta {
  category: string;
  shape_only: boolean;
}
const meta = JSON.parse(readFileSync(fixture("torch", "ops.json"), "utf8")) as Record<string, Meta>;
const stored = loadSafetensors(fixture("torch", "ops.safetensors"));

/** The fixture tensors of one case under `<name>/<kind>/`, by their key suffix. */
function part(name: string, kind: "in" | "out" | "w" | "grad"): Map<string, Tensor> {
  const prefix = `${name}/${kind}/`;
  return new Map([...stored].filter(([k]) => k.startsWith(prefix)).map(([k, v]) => [k.slice(prefix.length), v]));
}

const FLOAT = new Set(["float32", "float64"]);
const maxErr = new Map<string, { out: number; grad: number }>();
function record(category: string, kind: "out" | "grad", err: number): void {
  const m = maxErr.get(category) ?? { out: 0, grad: 0 };
  m[kind] = Math.max(m[kind], err);
  maxErr.set(category, m);
}

/** Shape and dtype always; values at rel err <= TOL for float32/64, exactly (bit patterns) for the rest. */
function compare(actual: Tensor, expected: Tensor, what: string, shapeOnly: boolean): number {
  assert.deepEqual(actual.shape, expected.shape, `${what}: shape`);
  assert.equal(actual.dtype, expected.dtype, `${what}: dtype`);
  if (shapeOnly) return 0;
  if (FLOAT.has(expected.dtype)) {
    const [a, b] = [actual.toFloat64Array(), expected.toFloat64Array()];
    // inf and nan (conversion cases) must sit at the same places; the rest is compared by relative error.
    const finite = b.map((v) => Number(Number.isFinite(v)));
    assert.deepEqual(
      Array.from(a.filter((_, i) => !finite[i])),
      Array.from(b.filter((_, i) => !finite[i])),
      `${what}: non-finite values`,
    );
    const e = relErr(
      a.filter((_, i) => finite[i]),
      b.filter((_, i) => finite[i]),
    );
    assert.ok(e <= TOL, `${what}: rel err ${e.toExponential(3)} > ${TOL}`);
    return e;
  }
  const values = (t: Tensor) => Array.from(t.toArray() as Iterable<number | bigint>);
  assert.deepEqual(values(actual), values(expected), `${what}: values`);
  return 0;
}

test("the case table and the fixture list the same cases", () => {
  assert.deepEqual(Object.keys(CASES).sort(), Object.keys(meta).sort());
});

for (const [name, fn] of Object.entries(CASES)) {
  const m = meta[name];
  if (!m) continue; // reported by the test above
  test(`${m.category}: ${name}`, () =>
    torch.tidy(() => {
      const inputs = part(name, "in");
      const expected = part(name, "out");
      const weights = part(name, "w");
      const grads = part(name, "grad");
      for (const k of grads.keys()) inputs.get(k)!.requiresGrad_(true);
      const result = fn(Object.fromEntries(inputs));
      const outs = Array.isArray(result) ? result : [result];
      assert.equal(outs.length, expected.size, "number of outputs");
      outs.forEach((o, i) =>
        record(m.category, "out", compare(o, expected.get(String(i))!, `output ${i}`, m.shape_only)),
      );
      if (grads.size === 0) return;
      const terms = [...weights].map(([i, w]) => {
        const o = outs[Number(i)];
        assert.ok(o.requiresGrad, `output ${i} should require grad`);
        return o.mul(w).sum();
      });
      const loss = terms.reduce((a, b) => a.add(b));
      const names = [...grads.keys()];
      const got = torch.grad(
        loss,
        names.map((k) => inputs.get(k)!),
      );
      names.forEach((k, j) => record(m.category, "grad", compare(got[j]!, grads.get(k)!, `grad ${k}`, false)));
    }));
}

after(() => {
  const rows = [...maxErr].map(
    ([c, e]) => `${c.padEnd(12)} out ${e.out.toExponential(2)}  grad ${e.grad.toExponential(2)}`,
  );
  console.log(`ops parity, max rel err per category (float outputs / gradients):\n${rows.join("\n")}`);
});
