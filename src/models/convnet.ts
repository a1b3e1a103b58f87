// ConvNet-D, the standard evaluation net of dataset distillation (DC/DSA/DM/MTT `networks.ConvNet`): `depth` blocks of
// [conv3x3 (width, padding 1), norm, ReLU, AvgPool2d(2, 2)], then one Linear classifier on the flattened features.
// Keys follow that code's nn.Sequential: features.{i}.weight/bias counting the parameter-free ReLU and pool layers
// (instance/batch norm: conv 0, 4, 8, ..., norm 1, 5, 9, ...; no norm: conv 0, 3, 6, ...), then classifier.
import { InputError } from "../errors.js";
import { F, type Tensor, tidy } from "../torch/index.js";
import { Conv2d, Linear } from "./layers.js";
import { checkPositiveIntegers, Model, type ModelOptions, Store, storeFor, VarBuilder } from "./module.js";
import { type Norm2d, type Norm2dKind, norm2d } from "./resnet.js";

export type ConvNetNorm = Norm2dKind | "none";

export interface ConvNetConfig {
  numClasses: number;
  /** Conv blocks (default 3; the DD codes use 4 for 64x64 and 5 for 128x128 data). */
  depth?: number;
  /** Channels of every conv (default 128). */
  width?: number;
  /** Input channels (default 3). */
  inChannels?: number;
  /** Input height and width (default 32); the classifier's input size follows from it. */
  imageSize?: number | [number, number];
  /** "instance" (default, GroupNorm(width, width)), "batch" or "none". */
  norm?: ConvNetNorm;
  /**
   * Padding of the first conv. Default as the DC code: 3 for 1-channel input (so 28x28 MNIST-style images become
   * 32x32 and end at 4x4 after three pools), else 1.
   */
  firstPadding?: number;
}

class ConvBlock {
  readonly conv: Conv2d;
  readonly norm: Norm2d | null;
  constructor(conv: Conv2d, norm: Norm2d | null) {
    this.conv = conv;
    this.norm = norm;
  }
  forward(x: Tensor): Tensor {
    const h = this.conv.forward(x);
    return F.avgPool2d(F.relu(this.norm ? this.norm.forward(h) : h), 2, { stride: 2 });
  }
}

export class ConvNet extends Model {
  readonly config: Required<ConvNetConfig>;
  private readonly blocks: ConvBlock[];
  private readonly classifier: Linear;
  /** Flattened feature size feeding the classifier (width x h x w after the last pool). */
  readonly numFeatures: number;

  constructor(config: ConvNetConfig, store = new Store()) {
    super(store);
    const inChannels = config.inChannels ?? 3;
    const c = (this.config = {
      numClasses: config.numClasses,
      depth: config.depth ?? 3,
      width: config.width ?? 128,
      inChannels,
      imageSize: config.imageSize ?? 32,
      norm: config.norm ?? "instance",
      firstPadding: config.firstPadding ?? (inChannels === 1 ? 3 : 1),
    });
    checkPositiveIntegers("ConvNet", c, ["numClasses", "depth", "width", "inChannels"]);
    if (!Number.isInteger(c.firstPadding) || c.firstPadding < 0)
      throw new InputError(`ConvNet firstPadding must be a non-negative integer; got ${c.firstPadding}`);
    if (!["instance", "batch", "none"].includes(c.norm))
      throw new InputError(`ConvNet norm must be "instance", "batch" or "none"; got ${c.norm}`);

    // Each block is conv, [norm], ReLU, pool in the Sequential: 4 indices per block with a norm, 3 without.
    const stride = c.norm === "none" ? 3 : 4;
    const features = new VarBuilder(this.store).pp("features");
    let [h, w] = Array.isArray(c.imageSize) ? c.imageSize : [c.imageSize, c.imageSize];
    this.blocks = Array.from({ length: c.depth }, (_, d) => {
      const pad = d === 0 ? c.firstPadding : 1;
      const conv = new Conv2d(features.pp(d * stride), d === 0 ? c.inChannels : c.width, c.width, 3, { padding: pad });
      const norm = c.norm === "none" ? null : norm2d(features.pp(d * stride + 1), c.norm, c.width);
      h = Math.floor((h + 2 * pad - 2) / 2);
      w = Math.floor((w + 2 * pad - 2) / 2);
      if (h < 1 || w < 1) throw new InputError(`ConvNet: a ${c.imageSize} image is too small for depth ${c.depth}`);
      return new ConvBlock(conv, norm);
    });
    this.numFeatures = c.width * h * w;
    this.classifier = new Linear(new VarBuilder(this.store).pp("classifier"), this.numFeatures, c.numClasses);
  }

  /** Output of each block (after its pool), the maps a perceptual distance compares. */
  featureMaps(x: Tensor): Tensor[] {
    const [h, w] = Array.isArray(this.config.imageSize)
      ? this.config.imageSize
      : [this.config.imageSize, this.config.imageSize];
    if (x.ndim !== 4 || x.size(1) !== this.config.inChannels || x.size(2) !== h || x.size(3) !== w) {
      throw new InputError(`ConvNet expects input [N, ${this.config.inChannels}, ${h}, ${w}]; got [${x.shape}]`);
    }
    return tidy(() => {
      let out = x;
      return this.blocks.map((b) => (out = b.forward(out)));
    });
  }

  /** Flattened output of the last block, [N, numFeatures] (the classifier's input). */
  features(x: Tensor): Tensor {
    return tidy(() => this.featureMaps(x).at(-1)!.flatten(1));
  }

  /** Class logits [N, numClasses]. */
  forward(x: Tensor): Tensor {
    return tidy(() => this.classifier.forward(this.features(x)));
  }
}

/** A randomly initialised ConvNet with PyTorch's default inits, as the DD codes build it. */
export function createConvNet(config: ConvNetConfig, opts: ModelOptions = {}): ConvNet {
  return new ConvNet(config, storeFor(opts));
}
