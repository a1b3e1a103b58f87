"""Tensor-engine parity fixtures: every op of src/torch on fixed random inputs, run by PyTorch.

Writes test/fixtures/torch/ops.safetensors with, per case `name`:
  name/in/<arg>   the inputs (generated here from one seeded generator),
  name/out/<i>    each output of the case's function,
  name/w/<i>      a random weight for each output that requires grad,
  name/grad/<arg> d/d<arg> of sum_i (out_i * w_i).sum() for each float input (unless listed in `nograd`),
and test/fixtures/torch/ops.json with each case's category and whether only its shape/dtype is defined (empty).
test/torch/ops-parity.test.ts holds the same table of case functions written with our API.

Run: /usr/bin/python3 tools/reference/ops_fixtures.py
"""
import math
import warnings

import torch
import torch.nn.functional as F

from common import fixture_path, save_json, save_safetensors

torch.set_num_threads(1)
# kl_div(reduction="mean") is one of the cases; its deprecation notice is noise here.
warnings.filterwarnings("ignore", message="reduction: .mean. divides")
gen = torch.Generator().manual_seed(20240601)


def randn(*shape):
    return torch.randn(*shape, generator=gen)


def uniform(lo, hi, *shape):
    return torch.rand(*shape, generator=gen) * (hi - lo) + lo


def ints(lo, hi, *shape):
    return torch.randint(lo, hi, shape, generator=gen)


def bools(*shape):
    return torch.rand(*shape, generator=gen) < 0.5


def G(seed):
    return torch.Generator().manual_seed(seed)


CASES = {}
category = None


def section(name):
    global category
    category = name


def case(name, fn, nograd=(), shape_only=False, **inputs):
    assert name not in CASES, name
    CASES[name] = dict(fn=fn, inputs=inputs, nograd=set(nograd), shape_only=shape_only, category=category)


# ---------------------------------------------------------------------------------------------------------------
section("creation")
case("zeros", lambda: torch.zeros(2, 3))
case("zeros_int64", lambda: torch.zeros(2, 3, dtype=torch.int64))
case("ones", lambda: torch.ones(4))
case("ones_bool", lambda: torch.ones(2, 2, dtype=torch.bool))
case("full", lambda: torch.full((2, 3), 2.5))
case("full_int64", lambda: torch.full((4,), 7, dtype=torch.int64))
case("empty", lambda: torch.empty(2, 3, 4), shape_only=True)
case("arange_n", lambda: torch.arange(10))
case("arange_int_step", lambda: torch.arange(-3, 7, 2))
case("arange_float", lambda: torch.arange(1, 2.5, 0.25))
case("linspace", lambda: torch.linspace(0, 1, 7))
case("linspace_neg", lambda: torch.linspace(-2, 3, 11))
case("eye", lambda: torch.eye(4))
case("eye_rect", lambda: torch.eye(3, 5))
case("zeros_like", lambda x: torch.zeros_like(x), x=randn(2, 5))
case("zeros_like_int64", lambda x: torch.zeros_like(x, dtype=torch.int64), x=randn(3))
case("ones_like", lambda x: torch.ones_like(x), x=randn(3, 2))
case("full_like", lambda x: torch.full_like(x, -1.5), x=randn(2, 3))
case("empty_like", lambda x: torch.empty_like(x), x=randn(4, 3), shape_only=True)
case("randn_gen", lambda: torch.randn(4, 5, generator=G(3)))
case("randn_gen_f64", lambda: torch.randn(7, generator=G(3), dtype=torch.float64))
case("rand_gen", lambda: torch.rand(3, 6, generator=G(4)))
case("randint_gen", lambda: torch.randint(0, 10, (20,), generator=G(5)))
case("randint_gen_neg", lambda: torch.randint(-50, 50, (3, 4), generator=G(6)))
case("randperm_gen", lambda: torch.randperm(20, generator=G(7)))
case("randn_manual_seed", lambda: (torch.manual_seed(11), torch.randn(3, 4))[1])
case("randn_like_manual_seed", lambda x: (torch.manual_seed(12), torch.randn_like(x))[1], x=randn(2, 3))
case("rand_like_manual_seed", lambda x: (torch.manual_seed(13), torch.rand_like(x))[1], x=randn(5))
case("normal_inplace", lambda: torch.empty(10).normal_(2.0, 0.5, generator=G(8)))
case("uniform_inplace", lambda: torch.empty(10).uniform_(-1.0, 3.0, generator=G(9)))

# ---------------------------------------------------------------------------------------------------------------
section("shape")
case("reshape", lambda x: x.reshape(4, 6), x=randn(2, 3, 4))
case("reshape_infer", lambda x: x.reshape(-1, 3), x=randn(2, 3, 4))
case("view", lambda x: x.view(6, 4), x=randn(2, 3, 4))
case("permute", lambda x: x.permute(2, 0, 1), x=randn(2, 3, 4))
case("transpose", lambda x: x.transpose(0, 2), x=randn(2, 3, 4))
case("contiguous", lambda x: x.transpose(0, 1).contiguous(), x=randn(3, 5))
case("flatten", lambda x: x.flatten(), x=randn(2, 3, 4))
case("flatten_range", lambda x: x.flatten(1, 2), x=randn(2, 3, 4, 2))
case("squeeze", lambda x: x.squeeze(), x=randn(2, 1, 3, 1))
case("squeeze_dim", lambda x: x.squeeze(1), x=randn(2, 1, 3, 1))
case("unsqueeze", lambda x: x.unsqueeze(1), x=randn(2, 3))
case("unsqueeze_neg", lambda x: x.unsqueeze(-1), x=randn(2, 3))
case("expand", lambda x: x.expand(2, 3, 4), x=randn(3, 1))
case("expand_as", lambda x, y: x.expand_as(y), x=randn(1, 4), y=randn(3, 4), nograd=["y"])
case("repeat", lambda x: x.repeat(2, 1, 3), x=randn(3, 2))
case("cat", lambda a, b: torch.cat([a, b], 1), a=randn(2, 3, 2), b=randn(2, 1, 2))
case("cat_dim0", lambda a, b, c: torch.cat([a, b, c]), a=randn(1, 3), b=randn(2, 3), c=randn(3, 3))
case("stack", lambda a, b: torch.stack([a, b]), a=randn(2, 3), b=randn(2, 3))
case("stack_last", lambda a, b: torch.stack([a, b], -1), a=randn(2, 3), b=randn(2, 3))
case("chunk", lambda x: x.chunk(3, 1), x=randn(2, 7))
case("split", lambda x: x.split(2), x=randn(5, 3))
case("split_sizes", lambda x: x.split([1, 3], 1), x=randn(2, 4))
case("narrow", lambda x: x.narrow(1, 1, 3), x=randn(3, 5))
case("slice_step", lambda x: x[:, 1::2], x=randn(3, 7))
case("slice_range", lambda x: x[1:3, :, 2:5:2], x=randn(4, 2, 6))
case("slice_neg", lambda x: x[-3:-1], x=randn(5, 2))
case("select", lambda x: x[:, 2], x=randn(3, 4, 2))
case("index_mixed", lambda x: x[1, :, ::2], x=randn(3, 4, 5))
case("index_select", lambda x, i: x.index_select(1, i), x=randn(3, 5), i=torch.tensor([4, 0, 2, 2]))
case("gather", lambda x, i: x.gather(1, i), x=randn(3, 5), i=ints(0, 5, 3, 4))
case("scatter_src", lambda x, i, s: x.scatter(1, i, s), x=randn(3, 5), i=torch.tensor([[0, 1], [2, 3], [4, 0]]),
     s=randn(3, 2))
case("scatter_value", lambda x, i: x.scatter(0, i, 2.5), x=randn(3, 4), i=torch.tensor([[0, 1, 2, 0]]))
case("scatter_add", lambda x, i, s: x.scatter_add(1, i, s), x=randn(2, 4), i=ints(0, 4, 2, 6), s=randn(2, 6))
case("masked_fill", lambda x, m: x.masked_fill(m, -3.0), x=randn(4, 5), m=bools(4, 5))
case("masked_fill_broadcast", lambda x, m: x.masked_fill(m, 1.5), x=randn(3, 4), m=bools(1, 4))
case("where", lambda c, a, b: torch.where(c, a, b), c=bools(3, 4), a=randn(3, 4), b=randn(3, 4))
case("where_scalar_other", lambda c, a: torch.where(c, a, 0.5), c=bools(3, 4), a=randn(3, 4))
case("where_scalar_self", lambda c, b: torch.where(c, -1.0, b), c=bools(3, 4), b=randn(3, 4))
case("flip", lambda x: x.flip(0, 2), x=randn(2, 3, 4))
case("roll", lambda x: x.roll(2, 1), x=randn(3, 5))
case("roll_multi", lambda x: x.roll((1, -2), (0, 1)), x=randn(3, 5))
case("pad_constant", lambda x: F.pad(x, (1, 2, 0, 1), value=0.5), x=randn(1, 2, 3, 4))
case("pad_reflect", lambda x: F.pad(x, (2, 1, 1, 2), mode="reflect"), x=randn(1, 2, 4, 5))
case("pad_replicate", lambda x: F.pad(x, (1, 3, 2, 0), mode="replicate"), x=randn(2, 1, 3, 4))
case("pad_reflect_1d", lambda x: F.pad(x, (3, 2), mode="reflect"), x=randn(2, 3, 6))

# ---------------------------------------------------------------------------------------------------------------
section("elementwise")
case("add", lambda a, b: a + b, a=randn(3, 4), b=randn(3, 4))
case("add_broadcast", lambda a, b: a + b, a=randn(2, 3, 4), b=randn(4))
case("add_alpha", lambda a, b: torch.add(a, b, alpha=-0.5), a=randn(3, 4), b=randn(3, 4))
case("add_scalar", lambda a: a + 1.25, a=randn(3, 4))
case("add_int64", lambda a, b: a + b, a=ints(-9, 9, 6), b=ints(-9, 9, 6))
case("sub", lambda a, b: a - b, a=randn(3, 4), b=randn(1, 4))
case("sub_scalar", lambda a: a - 3, a=randn(5))
case("rsub", lambda a: 2 - a, a=randn(5))
case("mul", lambda a, b: a * b, a=randn(3, 4), b=randn(3, 1))
case("mul_scalar", lambda a: a * -2.5, a=randn(3, 4))
case("div", lambda a, b: a / b, a=randn(3, 4), b=uniform(0.5, 2, 3, 4))
case("div_scalar", lambda a: a / 3, a=randn(6))
case("pow_scalar", lambda a: a ** 2.5, a=uniform(0.1, 3, 10))
case("pow_int", lambda a: a ** 3, a=randn(10))
case("pow_tensor", lambda a, e: a ** e, a=uniform(0.5, 2, 10), e=randn(10))
case("pow_scalar_base", lambda e: torch.pow(2.0, e), e=randn(10))
case("sqrt", lambda a: a.sqrt(), a=uniform(0.1, 4, 3, 4))
case("rsqrt", lambda a: a.rsqrt(), a=uniform(0.1, 4, 3, 4))
case("exp", lambda a: a.exp(), a=randn(3, 4))
case("log", lambda a: a.log(), a=uniform(0.1, 5, 3, 4))
case("abs", lambda a: a.abs(), a=randn(3, 4))
case("neg", lambda a: -a, a=randn(3, 4))
case("sign", lambda a: a.sign(), a=torch.cat([randn(8), torch.zeros(2)]))
case("square", lambda a: a.square(), a=randn(6))
case("round", lambda a: a.round(), a=randn(8) * 3)
case("floor", lambda a: a.floor(), a=randn(8) * 3)
case("clamp", lambda a: a.clamp(-0.5, 0.7), a=randn(4, 5))
case("clamp_min", lambda a: a.clamp(min=0.1), a=randn(4, 5))
case("clamp_max", lambda a: a.clamp(max=-0.2), a=randn(4, 5))
case("clamp_tensor", lambda a, lo, hi: a.clamp(lo, hi), a=randn(4, 5), lo=uniform(-1, -0.1, 4, 5),
     hi=uniform(0.1, 1, 5))
case("minimum", lambda a, b: torch.minimum(a, b), a=randn(3, 4), b=randn(3, 4))
case("maximum", lambda a, b: torch.maximum(a, b), a=randn(3, 4), b=randn(4))
case("sin", lambda a: a.sin(), a=randn(3, 4))
case("cos", lambda a: a.cos(), a=randn(3, 4))
case("tanh", lambda a: a.tanh(), a=randn(3, 4))
case("sigmoid", lambda a: a.sigmoid(), a=randn(3, 4))
case("addcmul", lambda t, a, b: torch.addcmul(t, a, b, value=0.5), t=randn(3, 4), a=randn(3, 4), b=randn(4))
case("addcdiv", lambda t, a, b: torch.addcdiv(t, a, b, value=-2), t=randn(3, 4), a=randn(3, 4),
     b=uniform(0.5, 2, 3, 4))
case("lerp", lambda a, b: torch.lerp(a, b, 0.3), a=randn(3, 4), b=randn(3, 4))
# In place, on a clone (as our optimisers and buffers use them); gradients flow through the clone.
case("add_inplace", lambda a, b: a.clone().add_(b, alpha=2), a=randn(3, 4), b=randn(4))
case("add_inplace_scalar", lambda a: a.clone().add_(0.5), a=randn(3, 4))
case("mul_inplace", lambda a, b: a.clone().mul_(b), a=randn(3, 4), b=randn(3, 4))
case("mul_inplace_scalar", lambda a: a.clone().mul_(-3), a=randn(3, 4))
case("addcmul_inplace", lambda t, a, b: t.clone().addcmul_(a, b, value=0.3), t=randn(3, 4), a=randn(3, 4), b=randn(3, 4))
case("addcdiv_inplace", lambda t, a, b: t.clone().addcdiv_(a, b, value=-0.7), t=randn(3, 4), a=randn(3, 4),
     b=uniform(0.5, 2, 3, 4))
case("clamp_inplace", lambda a: a.clone().clamp_(-0.3, 0.4), a=randn(3, 4))
case("copy_inplace", lambda a, b: a.clone().copy_(b), a=randn(3, 4), b=randn(4))
case("fill_inplace", lambda a: a.clone().fill_(1.5), a=randn(3, 4))
levels = dict(a=ints(-2, 3, 4, 5).float(), b=ints(-2, 3, 4, 5).float())
for op in ["eq", "ne", "lt", "le", "gt", "ge"]:
    case(op, lambda a, b, op=op: getattr(torch, op)(a, b), **levels)
    case(op + "_scalar", lambda a, op=op: getattr(torch, op)(a, 1), a=levels["a"])
case("logical_and", lambda a, b: torch.logical_and(a, b), a=bools(3, 4), b=bools(3, 4))
case("logical_or", lambda a, b: torch.logical_or(a, b), a=bools(3, 4), b=bools(3, 4))
case("logical_xor", lambda a, b: torch.logical_xor(a, b), a=bools(3, 4), b=bools(3, 4))
case("logical_not", lambda a: torch.logical_not(a), a=bools(3, 4))
case("isfinite", lambda a: torch.isfinite(a), a=torch.tensor([1.0, math.inf, -math.inf, math.nan, 0.0, -2.0]))

# ---------------------------------------------------------------------------------------------------------------
section("reduction")
case("sum", lambda x: x.sum(), x=randn(4, 5))
case("sum_dim", lambda x: x.sum(1), x=randn(3, 4, 5))
case("sum_dims_keepdim", lambda x: x.sum((0, 2), keepdim=True), x=randn(3, 4, 5))
case("sum_int64", lambda x: x.sum(), x=ints(-100, 100, 50))
case("mean", lambda x: x.mean(), x=randn(4, 5))
case("mean_dim", lambda x: x.mean(-1), x=randn(3, 4, 5))
case("mean_dims_keepdim", lambda x: x.mean((1, 2), keepdim=True), x=randn(3, 4, 5))
case("max_all", lambda x: x.max(), x=randn(4, 5))
case("min_all", lambda x: x.min(), x=randn(4, 5))
case("max_dim", lambda x: x.max(1), x=randn(4, 5))
case("max_dim_keepdim", lambda x: x.max(0, keepdim=True), x=randn(4, 5))
case("min_dim", lambda x: x.min(-1), x=randn(3, 4, 5))
case("argmax_all", lambda x: x.argmax(), x=randn(4, 5))
case("argmax_dim", lambda x: x.argmax(1), x=randn(4, 5))
case("argmax_keepdim", lambda x: x.argmax(0, keepdim=True), x=randn(4, 5))
case("argmin_dim", lambda x: x.argmin(1), x=randn(4, 5))
case("amax", lambda x: x.amax(1), x=randn(3, 4, 5))
case("amax_all", lambda x: x.amax(), x=randn(3, 4))
case("amax_dims", lambda x: x.amax((0, 2), keepdim=True), x=randn(3, 4, 5))
case("amin", lambda x: x.amin(0), x=randn(3, 4))
case("var", lambda x: x.var(), x=randn(4, 5))
case("var_dim", lambda x: x.var(1), x=randn(4, 5))
case("var_biased_keepdim", lambda x: x.var((0, 2), unbiased=False, keepdim=True), x=randn(3, 4, 5))
case("std", lambda x: x.std(), x=randn(4, 5))
case("std_dim_biased", lambda x: x.std(0, unbiased=False), x=randn(4, 5))
case("logsumexp", lambda x: x.logsumexp(1), x=randn(4, 5) * 3)
case("logsumexp_keepdim", lambda x: x.logsumexp((0, 1), keepdim=True), x=randn(4, 5, 2))
case("norm_p1", lambda x: torch.linalg.vector_norm(x, 1), x=randn(4, 5))
case("norm_p2", lambda x: torch.linalg.vector_norm(x, 2), x=randn(4, 5))
case("norm_inf", lambda x: torch.linalg.vector_norm(x, math.inf), x=randn(4, 5))
case("norm_p2_dim", lambda x: torch.linalg.vector_norm(x, 2, dim=1), x=randn(4, 5))
case("norm_p1_dims_keepdim", lambda x: torch.linalg.vector_norm(x, 1, dim=(1, 2), keepdim=True), x=randn(3, 4, 5))
case("norm_inf_dim", lambda x: torch.linalg.vector_norm(x, math.inf, dim=0), x=randn(4, 5))
case("sort", lambda x: torch.sort(x, stable=True), x=randn(4, 6))
case("sort_desc_dim0", lambda x: torch.sort(x, dim=0, descending=True, stable=True), x=randn(4, 6))
case("sort_ties", lambda x: torch.sort(x, stable=True), x=ints(0, 4, 3, 10).float())
case("argsort", lambda x: torch.argsort(x), x=randn(4, 6))
case("argsort_desc", lambda x: torch.argsort(x, 0, descending=True), x=randn(4, 6))
case("topk", lambda x: torch.topk(x, 3), x=randn(4, 6))
case("topk_smallest_dim0", lambda x: torch.topk(x, 2, 0, largest=False), x=randn(4, 6))
case("cumsum", lambda x: x.cumsum(1), x=randn(3, 6))
case("cumsum_dim0", lambda x: x.cumsum(0), x=randn(3, 6))
case("all", lambda m: m.all(), m=bools(5))
case("any", lambda m: m.any(), m=bools(5))

# ---------------------------------------------------------------------------------------------------------------
section("linalg")
case("matmul", lambda a, b: a @ b, a=randn(4, 6), b=randn(6, 5))
case("matmul_batched_broadcast", lambda a, b: a @ b, a=randn(2, 3, 4, 6), b=randn(6, 5))
case("matmul_vec", lambda a, v: a @ v, a=randn(4, 6), v=randn(6))
case("bmm", lambda a, b: torch.bmm(a, b), a=randn(3, 4, 5), b=randn(3, 5, 2))
case("outer", lambda a, b: torch.outer(a, b), a=randn(4), b=randn(5))
case("linear", lambda x, w, b: F.linear(x, w, b), x=randn(2, 3, 6), w=randn(4, 6), b=randn(4))
case("linear_nobias", lambda x, w: F.linear(x, w), x=randn(5, 6), w=randn(4, 6))

# ---------------------------------------------------------------------------------------------------------------
section("conv")
case("conv2d", lambda x, w, b: F.conv2d(x, w, b), x=randn(2, 3, 7, 7), w=randn(4, 3, 3, 3), b=randn(4))
case("conv2d_stride_pad", lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1), x=randn(2, 3, 8, 8),
     w=randn(4, 3, 3, 3), b=randn(4))
case("conv2d_dilation", lambda x, w: F.conv2d(x, w, None, padding=(2, 1), dilation=(2, 1)), x=randn(1, 2, 8, 7),
     w=randn(3, 2, 3, 3))
case("conv2d_groups", lambda x, w, b: F.conv2d(x, w, b, stride=(1, 2), padding=1, groups=2), x=randn(2, 4, 6, 6),
     w=randn(6, 2, 3, 3), b=randn(6))
case("conv2d_depthwise", lambda x, w: F.conv2d(x, w, groups=3), x=randn(1, 3, 5, 5), w=randn(3, 1, 3, 3))
case("conv_transpose2d", lambda x, w, b: F.conv_transpose2d(x, w, b), x=randn(2, 3, 4, 4), w=randn(3, 2, 3, 3),
     b=randn(2))
case("conv_transpose2d_stride", lambda x, w, b: F.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1),
     x=randn(1, 3, 4, 5), w=randn(3, 4, 3, 3), b=randn(4))
case("conv_transpose2d_groups_dilation", lambda x, w: F.conv_transpose2d(x, w, None, groups=2, dilation=2),
     x=randn(1, 4, 3, 3), w=randn(4, 1, 3, 3))
case("max_pool2d", lambda x: F.max_pool2d(x, 2), x=randn(2, 3, 6, 6))
case("max_pool2d_stride_pad", lambda x: F.max_pool2d(x, 3, stride=2, padding=1), x=randn(1, 2, 7, 7))
case("max_pool2d_ceil", lambda x: F.max_pool2d(x, 2, ceil_mode=True), x=randn(1, 2, 5, 5))
case("avg_pool2d", lambda x: F.avg_pool2d(x, 2), x=randn(2, 3, 6, 6))
case("avg_pool2d_pad_exclude", lambda x: F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False),
     x=randn(1, 2, 7, 7))
case("avg_pool2d_pad_include", lambda x: F.avg_pool2d(x, 3, stride=2, padding=1), x=randn(1, 2, 7, 7))
case("adaptive_avg_pool2d", lambda x: F.adaptive_avg_pool2d(x, (3, 3)), x=randn(2, 3, 7, 7))
case("adaptive_avg_pool2d_1", lambda x: F.adaptive_avg_pool2d(x, 1), x=randn(2, 3, 5, 4))
case("interp_nearest_size", lambda x: F.interpolate(x, size=(7, 5)), x=randn(1, 2, 4, 3))
case("interp_nearest_scale", lambda x: F.interpolate(x, scale_factor=2), x=randn(1, 2, 3, 4))
case("interp_bilinear_size", lambda x: F.interpolate(x, size=(7, 9), mode="bilinear"), x=randn(1, 2, 4, 5))
case("interp_bilinear_align", lambda x: F.interpolate(x, size=(7, 9), mode="bilinear", align_corners=True),
     x=randn(1, 2, 4, 5))
case("interp_bilinear_down", lambda x: F.interpolate(x, scale_factor=0.5, mode="bilinear"), x=randn(1, 2, 8, 6))

# ---------------------------------------------------------------------------------------------------------------
section("norm")
case("layer_norm", lambda x, w, b: F.layer_norm(x, (6,), w, b), x=randn(3, 4, 6), w=randn(6), b=randn(6))
case("layer_norm_noaffine", lambda x: F.layer_norm(x, (4, 6), eps=1e-6), x=randn(3, 4, 6))
case("group_norm", lambda x, w, b: F.group_norm(x, 2, w, b), x=randn(2, 4, 3, 3), w=randn(4), b=randn(4))
case("group_norm_noaffine", lambda x: F.group_norm(x, 3, eps=1e-6), x=randn(2, 6, 2, 3))


def bn_train(x, w, b, rm, rv):
    rm, rv = rm.clone(), rv.clone()
    return F.batch_norm(x, rm, rv, w, b, training=True, momentum=0.2), rm, rv


case("batch_norm_train", bn_train, x=randn(4, 3, 2, 2), w=randn(3), b=randn(3), rm=randn(3), rv=uniform(0.5, 2, 3),
     nograd=["rm", "rv"])
case("batch_norm_train_nostats", lambda x: F.batch_norm(x, None, None, training=True), x=randn(5, 3))
case("batch_norm_eval", lambda x, w, b, rm, rv: F.batch_norm(x, rm, rv, w, b, training=False, eps=1e-3),
     x=randn(4, 3, 2, 2), w=randn(3), b=randn(3), rm=randn(3), rv=uniform(0.5, 2, 3), nograd=["rm", "rv"])
case("instance_norm", lambda x, w, b: F.instance_norm(x, weight=w, bias=b), x=randn(2, 3, 4, 4), w=randn(3),
     b=randn(3))

# ---------------------------------------------------------------------------------------------------------------
section("activation")
case("softmax", lambda x: F.softmax(x, 1), x=randn(3, 5) * 2)
case("softmax_dim0", lambda x: F.softmax(x, 0), x=randn(3, 5, 2))
case("log_softmax", lambda x: F.log_softmax(x, -1), x=randn(3, 5) * 2)
case("gelu", lambda x: F.gelu(x), x=randn(4, 5) * 2)
case("gelu_tanh", lambda x: F.gelu(x, approximate="tanh"), x=randn(4, 5) * 2)
case("silu", lambda x: F.silu(x), x=randn(4, 5) * 2)
case("relu", lambda x: F.relu(x), x=randn(4, 5))
case("relu6", lambda x: F.relu6(x), x=randn(4, 5) * 5)
case("hardswish", lambda x: F.hardswish(x), x=randn(4, 5) * 4)
case("dropout_seeded", lambda x: (torch.manual_seed(21), F.dropout(x, 0.3, True))[1], x=randn(8, 16))
case("dropout_p0", lambda x: F.dropout(x, 0.0, True), x=randn(4, 5))
case("dropout_eval", lambda x: F.dropout(x, 0.5, False), x=randn(4, 5))
case("embedding", lambda w, i: F.embedding(i, w), w=randn(10, 4), i=ints(0, 10, 2, 3))

# ---------------------------------------------------------------------------------------------------------------
section("loss")
hard = ints(0, 5, 6)
hard[2] = -100
case("cross_entropy", lambda x, t: F.cross_entropy(x, t), x=randn(6, 5), t=ints(0, 5, 6))
case("cross_entropy_weight_ignore", lambda x, t, w: F.cross_entropy(x, t, weight=w), x=randn(6, 5), t=hard,
     w=uniform(0.5, 2, 5), nograd=["w"])
case("cross_entropy_sum", lambda x, t: F.cross_entropy(x, t, reduction="sum"), x=randn(6, 5), t=ints(0, 5, 6))
case("cross_entropy_none_4d", lambda x, t: F.cross_entropy(x, t, reduction="none"), x=randn(2, 4, 3, 3),
     t=ints(0, 4, 2, 3, 3))
case("cross_entropy_smoothing", lambda x, t: F.cross_entropy(x, t, label_smoothing=0.1), x=randn(6, 5),
     t=ints(0, 5, 6))
case("cross_entropy_soft", lambda x, p: F.cross_entropy(x, p), x=randn(6, 5), p=F.softmax(randn(6, 5), 1))
case("cross_entropy_soft_smoothing", lambda x, p: F.cross_entropy(x, p, label_smoothing=0.2), x=randn(6, 5),
     p=F.softmax(randn(6, 5), 1))
logp = dict(x=F.log_softmax(randn(4, 6), 1), p=F.softmax(randn(4, 6), 1))
case("kl_div_batchmean", lambda x, p: F.kl_div(x, p, reduction="batchmean"), **logp)
case("kl_div_mean", lambda x, p: F.kl_div(x, p, reduction="mean"), **logp)
case("kl_div_sum", lambda x, p: F.kl_div(x, p, reduction="sum"), **logp)
case("kl_div_none", lambda x, p: F.kl_div(x, p, reduction="none"), **logp)
case("kl_div_log_target", lambda x, q: F.kl_div(x, q, reduction="batchmean", log_target=True),
     x=F.log_softmax(randn(4, 6), 1), q=F.log_softmax(randn(4, 6), 1))
case("mse_loss", lambda x, y: F.mse_loss(x, y), x=randn(4, 5), y=randn(4, 5))
case("mse_loss_sum", lambda x, y: F.mse_loss(x, y, reduction="sum"), x=randn(4, 5), y=randn(4, 5))
case("mse_loss_none", lambda x, y: F.mse_loss(x, y, reduction="none"), x=randn(4, 5), y=randn(4, 5))
case("l1_loss", lambda x, y: F.l1_loss(x, y), x=randn(4, 5), y=randn(4, 5))
case("l1_loss_sum", lambda x, y: F.l1_loss(x, y, reduction="sum"), x=randn(4, 5), y=randn(4, 5))

# ---------------------------------------------------------------------------------------------------------------
section("dtype")
# float32 values across the half/bfloat16 ranges plus the cases that test rounding: ties to even, overflow to inf,
# subnormals, signed zero, inf and nan.
special = torch.tensor([0.0, -0.0, 1.0, -2.5, 65504.0, 65519.99, 65520.0, 1e5, -1e5, 2.0 ** -24, 2.0 ** -25,
                        2.0 ** -25 * 1.0001, 6e-8, 1 + 2.0 ** -11, 1 + 3 * 2.0 ** -11, 1 + 2.0 ** -8, 1 + 3 * 2.0 ** -8,
                        3e38, -3.4e38, 1e-39, math.inf, -math.inf, math.nan])
floats = torch.cat([special, randn(200) * torch.exp2(uniform(-30, 20, 200).round())])
case("to_float16", lambda x: x.to(torch.float16), x=floats)
case("to_bfloat16", lambda x: x.to(torch.bfloat16), x=floats)
case("float16_to_float32", lambda h: h.float(), h=ints(0, 1 << 16, 300).to(torch.int16).view(torch.float16))
case("bfloat16_to_float32", lambda h: h.float(), h=ints(0, 1 << 16, 300).to(torch.int16).view(torch.bfloat16))
case("float32_to_float64", lambda x: x.double(), x=randn(20))
case("float32_to_int64", lambda x: x.long(), x=randn(20) * 10)
case("int64_to_float32", lambda i: i.float(), i=ints(-1000, 1000, 20))
case("bool_to_float32", lambda m: m.float(), m=bools(10))
case("float32_to_bool", lambda x: x.bool(), x=torch.tensor([0.0, -0.0, 1.0, -2.0, 0.5]))


def run(c):
    inputs = {k: v.clone() for k, v in c["inputs"].items()}
    wants = [k for k, v in inputs.items() if v.is_floating_point() and k not in c["nograd"]]
    for k in wants:
        inputs[k].requires_grad_(True)
    r = c["fn"](**inputs)
    outs = list(r) if isinstance(r, (tuple, list)) else [r]
    tensors = {f"in/{k}": v for k, v in c["inputs"].items()}
    # An uninitialised result (empty) is stored as zeros: only its shape and dtype are compared.
    tensors.update({f"out/{i}": torch.zeros_like(o) if c["shape_only"] else o.detach() for i, o in enumerate(outs)})
    diff = [i for i, o in enumerate(outs) if o.requires_grad]
    if diff:
        ws = {i: torch.randn(outs[i].shape, generator=gen) for i in diff}
        loss = sum((outs[i] * ws[i]).sum() for i in diff)
        grads = torch.autograd.grad(loss, [inputs[k] for k in wants])
        tensors.update({f"w/{i}": w for i, w in ws.items()})
        tensors.update({f"grad/{k}": g for k, g in zip(wants, grads)})
    return tensors


def main():
    tensors = {}
    meta = {}
    for name, c in CASES.items():
        for k, v in run(c).items():
            tensors[f"{name}/{k}"] = v
        meta[name] = {"category": c["category"], "shape_only": c["shape_only"]}
    path = fixture_path("torch", "ops.safetensors")
    save_safetensors(path, tensors)
    save_json(fixture_path("torch", "ops.json"), meta)
    print(f"{path}: {len(CASES)} cases, {len(tensors)} tensors")


if __name__ == "__main__":
    main()
