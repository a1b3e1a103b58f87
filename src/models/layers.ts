// The layers the models share, each holding its weights under torch.nn's key names (weight, bias, running_mean, ...).
import { F, rand, type Tensor, tidy } from "../torch/index.js";
import { defaultBias, defaultWeight, one, zero } from "./init.js";
import type { Init } from "./module.js";
import type { VarBuilder } from "./module.js";

export class Linear {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  constructor(
    vb: VarBuilder,
    inFeatures: number,
    outFeatures: number,
    o: { bias?: boolean; weightInit?: Init; biasInit?: Init } = {},
  ) {
    this.weight = vb.param("weight", [outFeatures, inFeatures], o.weightInit ?? defaultWeight);
    this.bias = o.bias === false ? null : vb.param("bias", [outFeatures], o.biasInit ?? defaultBias(inFeatures));
  }
  forward(x: Tensor): Tensor {
    return F.linear(x, this.weight, this.bias);
  }
}

export class Conv2d {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  constructor(
    vb: VarBuilder,
    inCh: number,
    outCh: number,
    kernel: number,
    readonly o: {
      stride?: number;
      padding?: number;
      groups?: number;
      bias?: boolean;
      weightInit?: Init;
      biasInit?: Init;
    } = {},
  ) {
    const groups = o.groups ?? 1;
    this.weight = vb.param("weight", [outCh, inCh / groups, kernel, kernel], o.weightInit ?? defaultWeight);
    this.bias =
      o.bias === false ? null : vb.param("bias", [outCh], o.biasInit ?? defaultBias((inCh / groups) * kernel * kernel));
  }
  forward(x: Tensor): Tensor {
    return F.conv2d(x, this.weight, this.bias, {
      stride: this.o.stride,
      padding: this.o.padding,
      groups: this.o.groups,
    });
  }
}

export class GroupNorm {
  readonly weight: Tensor | null;
  readonly bias: Tensor | null;
  constructor(
    vb: VarBuilder,
    readonly groups: number,
    channels: number,
    readonly o: { eps?: number; affine?: boolean } = {},
  ) {
    const affine = o.affine ?? true;
    this.weight = affine ? vb.param("weight", [channels], one) : null;
    this.bias = affine ? vb.param("bias", [channels], zero) : null;
  }
  forward(x: Tensor): Tensor {
    return F.groupNorm(x, this.groups, this.weight, this.bias, this.o.eps ?? 1e-5);
  }
}

/** nn.BatchNorm2d: batch statistics and a running-average update in training mode, running statistics in eval. */
export class BatchNorm2d {
  readonly weight: Tensor;
  readonly bias: Tensor;
  readonly runningMean: Tensor;
  readonly runningVar: Tensor;
  readonly numBatchesTracked: Tensor;
  constructor(
    private readonly vb: VarBuilder,
    channels: number,
    readonly o: { eps?: number; momentum?: number } = {},
  ) {
    this.weight = vb.param("weight", [channels], one);
    this.bias = vb.param("bias", [channels], zero);
    this.runningMean = vb.buffer("running_mean", [channels], zero);
    this.runningVar = vb.buffer("running_var", [channels], one);
    this.numBatchesTracked = vb.buffer("num_batches_tracked", [], zero, "int64");
  }
  forward(x: Tensor): Tensor {
    const training = this.vb.training;
    if (training) this.numBatchesTracked.add_(1);
    return F.batchNorm(x, training, {
      weight: this.weight,
      bias: this.bias,
      runningMean: this.runningMean,
      runningVar: this.runningVar,
      momentum: this.o.momentum ?? 0.1,
      eps: this.o.eps ?? 1e-5,
    });
  }
}

/** nn.GroupNorm(C, C, affine=True): per-sample, per-channel normalisation ("instance norm" of the DD literature). */
export class InstanceNormAffine extends GroupNorm {
  constructor(vb: VarBuilder, channels: number, o: { eps?: number } = {}) {
    super(vb, channels, channels, o);
  }
}

/**
 * Zeroes each element (nn.Dropout, `rows` false) or each sample's whole tensor (torchvision's StochasticDepth "row",
 * `rows` true) with probability p in training mode, scaling the kept ones by 1 / (1 - p); the identity in eval mode.
 * The draws come from the model's own generator (the one its weights were initialised from), so a seeded student's
 * run does not depend on the global generator.
 */
export class Dropout {
  constructor(
    private readonly vb: VarBuilder,
    readonly p: number,
    readonly rows = false,
  ) {
    if (!(p >= 0 && p < 1)) throw new Error(`dropout probability must be in [0, 1), got ${p}`);
  }
  forward(x: Tensor): Tensor {
    if (!this.vb.training || this.p === 0) return x;
    return tidy(() => {
      const shape = this.rows ? [x.size(0), ...x.shape.slice(1).map(() => 1)] : x.shape;
      const keep = rand(shape, { generator: this.vb.store.generator, device: x.device }).ge(this.p).to(x.dtype);
      return x.mul(keep).div(1 - this.p);
    });
  }
}
