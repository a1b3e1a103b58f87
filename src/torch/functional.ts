// Neural-network functions with torch.nn.functional's argument conventions and defaults.
import { call, callInPlace } from "./dispatch.js";
import type { Reduction } from "./ops.js";
import type { Tensor } from "./tensor.js";

type Pair = number | [number, number];
const pair = (v: Pair): [number, number] => (Array.isArray(v) ? v : [v, v]);
const REDUCTION: Record<Reduction, number> = { none: 0, mean: 1, sum: 2 };

export const linear = (x: Tensor, weight: Tensor, bias?: Tensor | null) => call("linear", x, weight, bias ?? null);

export interface ConvOptions {
  stride?: Pair;
  padding?: Pair;
  dilation?: Pair;
  groups?: number;
}
export const conv2d = (x: Tensor, weight: Tensor, bias?: Tensor | null, options: ConvOptions = {}) =>
  call(
    "conv2d",
    x,
    weight,
    bias ?? null,
    pair(options.stride ?? 1),
    pair(options.padding ?? 0),
    pair(options.dilation ?? 1),
    options.groups ?? 1,
  );
export const convTranspose2d = (
  x: Tensor,
  weight: Tensor,
  bias?: Tensor | null,
  options: ConvOptions & { outputPadding?: Pair } = {},
) =>
  call(
    "conv_transpose2d.input",
    x,
    weight,
    bias ?? null,
    pair(options.stride ?? 1),
    pair(options.padding ?? 0),
    pair(options.outputPadding ?? 0),
    options.groups ?? 1,
    pair(options.dilation ?? 1),
  );

export interface PoolOptions {
  stride?: Pair;
  padding?: Pair;
  ceilMode?: boolean;
}
export const maxPool2d = (x: Tensor, kernel: Pair, options: PoolOptions & { dilation?: Pair } = {}) =>
  call(
    "max_pool2d",
    x,
    pair(kernel),
    pair(options.stride ?? kernel),
    pair(options.padding ?? 0),
    pair(options.dilation ?? 1),
    options.ceilMode ?? false,
  );
export const avgPool2d = (
  x: Tensor,
  kernel: Pair,
  options: PoolOptions & { countIncludePad?: boolean; divisorOverride?: number } = {},
) =>
  call(
    "avg_pool2d",
    x,
    pair(kernel),
    pair(options.stride ?? kernel),
    pair(options.padding ?? 0),
    options.ceilMode ?? false,
    options.countIncludePad ?? true,
    options.divisorOverride ?? null,
  );
export const adaptiveAvgPool2d = (x: Tensor, size: Pair) => call("adaptive_avg_pool2d", x, pair(size));

/** F.interpolate for 4-d input: give `size` or `scaleFactor` (scale factors are passed through, as PyTorch does). */
export function interpolate(
  x: Tensor,
  options: {
    size?: Pair;
    scaleFactor?: number | [number, number];
    mode?: "nearest" | "bilinear";
    alignCorners?: boolean;
  },
): Tensor {
  if ((options.size === undefined) === (options.scaleFactor === undefined))
    throw new Error("interpolate: give exactly one of size and scaleFactor");
  const size = options.size === undefined ? null : pair(options.size);
  const scales = options.scaleFactor === undefined ? null : pair(options.scaleFactor);
  const mode = options.mode ?? "nearest";
  if (mode === "nearest") {
    if (options.alignCorners !== undefined) throw new Error("interpolate: alignCorners only applies to bilinear mode");
    return call("upsample_nearest2d.vec", x, size, scales);
  }
  return call("upsample_bilinear2d.vec", x, size, options.alignCorners ?? false, scales);
}

/**
 * The input of an affine norm in its parameters' dtype: under autocast a bf16 activation meets fp32 weights, for
 * which libtorch 1.13 has no mixed-dtype layer/group norm kernel; the norm then runs in fp32, as autocast's fp32
 * list has norms run.
 */
const inDtypeOf = (x: Tensor, weight?: Tensor | null) => (weight && weight.dtype !== x.dtype ? x.to(weight.dtype) : x);

export const layerNorm = (
  x: Tensor,
  normalizedShape: readonly number[],
  weight?: Tensor | null,
  bias?: Tensor | null,
  eps = 1e-5,
) => call("layer_norm", inDtypeOf(x, weight), normalizedShape, weight ?? null, bias ?? null, eps, true);
export const groupNorm = (x: Tensor, groups: number, weight?: Tensor | null, bias?: Tensor | null, eps = 1e-5) =>
  call("group_norm", inDtypeOf(x, weight), groups, weight ?? null, bias ?? null, eps, true);

export interface NormStats {
  runningMean?: Tensor | null;
  runningVar?: Tensor | null;
  weight?: Tensor | null;
  bias?: Tensor | null;
  momentum?: number;
  eps?: number;
}
/** In training mode the running statistics (if given) are updated in place, as torch.nn.functional.batch_norm. */
export const batchNorm = (x: Tensor, training: boolean, s: NormStats = {}) =>
  call(
    "batch_norm",
    x,
    s.weight ?? null,
    s.bias ?? null,
    s.runningMean ?? null,
    s.runningVar ?? null,
    training,
    s.momentum ?? 0.1,
    s.eps ?? 1e-5,
    true,
  );
export const instanceNorm = (x: Tensor, s: NormStats & { useInputStats?: boolean } = {}) =>
  call(
    "instance_norm",
    x,
    s.weight ?? null,
    s.bias ?? null,
    s.runningMean ?? null,
    s.runningVar ?? null,
    s.useInputStats ?? true,
    s.momentum ?? 0.1,
    s.eps ?? 1e-5,
    true,
  );

export const softmax = (x: Tensor, dim: number) => call("softmax.int", x, dim);
export const logSoftmax = (x: Tensor, dim: number) => call("log_softmax.int", x, dim);
export const gelu = (x: Tensor, approximate: "none" | "tanh" = "none") => call("gelu", x, approximate);
export const silu = (x: Tensor) => call("silu", x);
export const relu = (x: Tensor) => call("relu", x);
/** In-place ReLU (torch.relu_ / nn.ReLU(inplace=True)); returns x. */
export const relu_ = (x: Tensor) => (callInPlace("relu_", x), x);
export const relu6 = (x: Tensor) => call("hardtanh", x, 0, 6);
export const hardswish = (x: Tensor) => call("hardswish", x);
export const dropout = (x: Tensor, p: number, training: boolean) => call("dropout", x, p, training);
export const embedding = (weight: Tensor, indices: Tensor) => call("embedding", weight, indices);

/** Cross entropy from logits; `target` holds class indices (int64) or class probabilities (float). */
export const crossEntropy = (
  logits: Tensor,
  target: Tensor,
  options: { weight?: Tensor; reduction?: Reduction; ignoreIndex?: number; labelSmoothing?: number } = {},
) =>
  call(
    "cross_entropy_loss",
    logits,
    target,
    options.weight ?? null,
    REDUCTION[options.reduction ?? "mean"],
    options.ignoreIndex ?? -100,
    options.labelSmoothing ?? 0,
  );

/** KL divergence with `input` as log-probabilities; "batchmean" divides the sum by the batch size (F.kl_div). */
export function klDiv(
  input: Tensor,
  target: Tensor,
  options: { reduction?: Reduction | "batchmean"; logTarget?: boolean } = {},
): Tensor {
  const r = options.reduction ?? "mean";
  if (r !== "batchmean") return call("kl_div", input, target, REDUCTION[r], options.logTarget ?? false);
  const total = call("kl_div", input, target, REDUCTION.sum, options.logTarget ?? false);
  const out = call("div.Scalar", total, input.size(0));
  total.dispose();
  return out;
}
export const mseLoss = (x: Tensor, y: Tensor, reduction: Reduction = "mean") =>
  call("mse_loss", x, y, REDUCTION[reduction]);
export const l1Loss = (x: Tensor, y: Tensor, reduction: Reduction = "mean") =>
  call("l1_loss", x, y, REDUCTION[reduction]);
