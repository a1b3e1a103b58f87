// ResNet-18/34/50/101/152 (He et al.) as torchvision builds it (v1.5: a bottleneck's stride sits on its 3x3 conv), with
// torchvision's state-dict keys, so torchvision checkpoints load as they are. Two options come from the
// dataset-distillation evaluation codes: "instance" norm (GroupNorm(C, C), keys still bn1/bn2/..., weight and bias only)
// and the small-image stem that RDED / SRe2L use for 32x32 data (conv1 3x3 stride 1, no max pool).
import { InputError } from "../errors.js";
import { F, type Tensor, tidy } from "../torch/index.js";
import { kaimingNormalFanOut } from "./init.js";
import { BatchNorm2d, Conv2d, InstanceNormAffine, Linear } from "./layers.js";
import { checkPositiveIntegers, Model, type ModelOptions, Store, storeFor, VarBuilder } from "./module.js";

// ---- normalisation ---------------------------------------------------------------------------------------------------

export type Norm2dKind = "batch" | "instance";

export interface Norm2d {
  forward(x: Tensor): Tensor;
}

/** BatchNorm2d (running statistics) or the DD literature's instance norm, GroupNorm(C, C) with affine weights. */
export function norm2d(vb: VarBuilder, kind: Norm2dKind, channels: number): Norm2d {
  return kind === "batch" ? new BatchNorm2d(vb, channels) : new InstanceNormAffine(vb, channels);
}

/** A ResNet's defaults (also a saved model's, models/classifiers.ts). */
export const RESNET_DEFAULTS = { norm: "batch", stem: "imagenet" } as const;

/** The fields a ResNet-family config has (ResNet and ResNet-AP differ in their depths, stems and defaults). */
interface ResNetFamilyConfig<D extends number, S extends string> {
  depth: D;
  numClasses: number;
  inChannels?: number;
  norm?: Norm2dKind;
  stem?: S;
}

/** A ResNet-family config with its defaults filled in, checked: a known depth, norm and stem, positive sizes. */
export function resolveResNetConfig<D extends number, S extends string>(
  model: string,
  config: ResNetFamilyConfig<D, S>,
  defaults: { norm: Norm2dKind; stem: S },
  known: { depths: Record<D, unknown>; stems: readonly S[] },
): Required<ResNetFamilyConfig<D, S>> {
  const c = {
    depth: config.depth,
    numClasses: config.numClasses,
    inChannels: config.inChannels ?? 3,
    norm: config.norm ?? defaults.norm,
    stem: config.stem ?? defaults.stem,
  };
  const choices = (xs: readonly string[]) =>
    `${xs
      .slice(0, -1)
      .map((x) => `"${x}"`)
      .join(", ")} or "${xs[xs.length - 1]}"`;
  if (!Object.hasOwn(known.depths, c.depth))
    throw new InputError(`${model} depth must be one of ${Object.keys(known.depths).join(", ")}; got ${c.depth}`);
  checkPositiveIntegers(model, c, ["numClasses", "inChannels"]);
  if (c.norm !== "batch" && c.norm !== "instance")
    throw new InputError(`${model} norm must be "batch" or "instance"; got ${c.norm}`);
  if (!known.stems.includes(c.stem))
    throw new InputError(`${model} stem must be ${choices(known.stems)}; got ${c.stem}`);
  return c;
}

// ---- residual blocks -------------------------------------------------------------------------------------------------

/** Blocks per stage and block type for each depth (torchvision's table). */
const DEPTHS = {
  18: { block: "basic", layers: [2, 2, 2, 2] },
  34: { block: "basic", layers: [3, 4, 6, 3] },
  50: { block: "bottleneck", layers: [3, 4, 6, 3] },
  101: { block: "bottleneck", layers: [3, 4, 23, 3] },
  152: { block: "bottleneck", layers: [3, 8, 36, 3] },
} as const;

export type ResNetDepth = keyof typeof DEPTHS;
type BlockKind = (typeof DEPTHS)[ResNetDepth]["block"];

/** Output channels of a block relative to its width `planes`. */
const EXPANSION: Record<BlockKind, number> = { basic: 1, bottleneck: 4 };

/**
 * A conv (no bias, padding (k - 1) / 2, torchvision's kaiming-normal fan-out init) followed by a norm: one convN/bnN
 * pair of a block, or the conv and norm of torchvision's Conv2dNormActivation (`groups` = channels: depthwise).
 */
export class ConvNorm {
  readonly conv: Conv2d;
  readonly norm: Norm2d;
  constructor(
    convVb: VarBuilder,
    normVb: VarBuilder,
    inCh: number,
    outCh: number,
    kernel: number,
    stride: number,
    norm: Norm2dKind,
    groups = 1,
  ) {
    this.conv = new Conv2d(convVb, inCh, outCh, kernel, {
      stride,
      padding: (kernel - 1) / 2,
      groups,
      bias: false,
      weightInit: kaimingNormalFanOut,
    });
    this.norm = norm2d(normVb, norm, outCh);
  }
  forward(x: Tensor): Tensor {
    return this.norm.forward(this.conv.forward(x));
  }
}

/**
 * BasicBlock (3x3, 3x3) and Bottleneck (1x1, 3x3, 1x1 x4) in one: a chain of conv/norm pairs with ReLU between them,
 * plus the identity or a projection shortcut (downsample.0 conv 1x1, downsample.1 norm), then ReLU.
 */
export class ResidualBlock {
  private readonly chain: ConvNorm[];
  private readonly downsample: ConvNorm | null;
  constructor(vb: VarBuilder, kind: BlockKind, inCh: number, planes: number, stride: number, norm: Norm2dKind) {
    const outCh = planes * EXPANSION[kind];
    const specs: [number, number, number, number][] =
      kind === "basic"
        ? [
            [inCh, planes, 3, stride],
            [planes, planes, 3, 1],
          ]
        : [
            [inCh, planes, 1, 1],
            [planes, planes, 3, stride],
            [planes, outCh, 1, 1],
          ];
    this.chain = specs.map(
      ([i, o, k, s], n) => new ConvNorm(vb.pp(`conv${n + 1}`), vb.pp(`bn${n + 1}`), i, o, k, s, norm),
    );
    const ds = vb.pp("downsample");
    this.downsample =
      stride !== 1 || inCh !== outCh ? new ConvNorm(ds.pp(0), ds.pp(1), inCh, outCh, 1, stride, norm) : null;
  }
  forward(x: Tensor): Tensor {
    // torchvision's in-place ReLUs and residual add, and each intermediate freed once the next one exists (autograd
    // keeps what it saved): fewer, cache-warm buffers. The norms' backward needs their input, not their output.
    return tidy(() => {
      let out = x;
      this.chain.forEach((cn, i) => {
        const prev = out;
        out = cn.forward(prev);
        if (prev !== x) prev.dispose();
        if (i < this.chain.length - 1) F.relu_(out);
      });
      return F.relu_(out.add_(this.downsample ? this.downsample.forward(x) : x));
    });
  }
}

// ---- the network -----------------------------------------------------------------------------------------------------

export type ResNetStem = "imagenet" | "cifar" | "mid";

export interface ResNetConfig {
  depth: ResNetDepth;
  numClasses: number;
  /** Input channels (default 3). */
  inChannels?: number;
  /** "batch" (default) or "instance" (GroupNorm(C, C), as the hard-label DD evaluation uses). */
  norm?: Norm2dKind;
  /**
   * "imagenet" (default): conv1 7x7 stride 2 and a 3x3 stride-2 max pool. "cifar": conv1 3x3 stride 1 and no max pool,
   * for 32x32 inputs. The DD codes make it by replacing torchvision's conv1 after construction, so that conv keeps
   * nn.Conv2d's default init rather than the kaiming-normal one. "mid": the 3x3 stride-1 conv1 followed by the max
   * pool, as IDC's ResNet uses for 64-128 px inputs (a quarter of the "cifar" cost at the same input size).
   */
  stem?: ResNetStem;
}

export class ResNet extends Model {
  readonly config: Required<ResNetConfig>;
  private readonly conv1: Conv2d;
  private readonly bn1: Norm2d;
  private readonly stages: ResidualBlock[][];
  private readonly fc: Linear;
  /** Width of the penultimate features (512 for basic blocks, 2048 for bottlenecks). */
  readonly numFeatures: number;

  constructor(config: ResNetConfig, store = new Store()) {
    super(store);
    const c = (this.config = resolveResNetConfig("ResNet", config, RESNET_DEFAULTS, {
      depths: DEPTHS,
      stems: ["imagenet", "cifar", "mid"],
    }));
    const spec = DEPTHS[c.depth];
    const vb = new VarBuilder(this.store);
    this.conv1 =
      c.stem === "imagenet"
        ? new Conv2d(vb.pp("conv1"), c.inChannels, 64, 7, {
            stride: 2,
            padding: 3,
            bias: false,
            weightInit: kaimingNormalFanOut,
          })
        : new Conv2d(vb.pp("conv1"), c.inChannels, 64, 3, { stride: 1, padding: 1, bias: false });
    this.bn1 = norm2d(vb.pp("bn1"), c.norm, 64);
    let inCh = 64;
    this.stages = spec.layers.map((blocks, s) => {
      const planes = 64 << s;
      return Array.from({ length: blocks }, (_, i) => {
        const block = new ResidualBlock(
          vb.pp(`layer${s + 1}`).pp(i),
          spec.block,
          inCh,
          planes,
          i === 0 && s > 0 ? 2 : 1,
          c.norm,
        );
        inCh = planes * EXPANSION[spec.block];
        return block;
      });
    });
    this.numFeatures = inCh;
    this.fc = new Linear(vb.pp("fc"), inCh, c.numClasses);
  }

  /** Output of each stage (layer1..layer4), the maps a perceptual distance compares. */
  featureMaps(x: Tensor): Tensor[] {
    this.checkInput(x);
    return tidy(() => {
      // A channels-last model (toChannelsLast) takes its input into that order too, so no layer converts per call.
      const input = this.channelsLast ? x.contiguous("channels_last") : x;
      let h = F.relu_(this.bn1.forward(this.conv1.forward(input)));
      if (this.config.stem !== "cifar") h = F.maxPool2d(h, 3, { stride: 2, padding: 1 });
      return this.stages.map((stage) => {
        stage.forEach((block, i) => {
          const prev = h;
          h = block.forward(prev);
          // Inside a stage the previous output is dead (kept by autograd if needed); a stage's input is a map.
          if (i > 0) prev.dispose();
        });
        return h;
      });
    });
  }

  /** Penultimate features: global-average-pooled output of layer4, [N, numFeatures]. */
  features(x: Tensor): Tensor {
    return tidy(() => F.adaptiveAvgPool2d(this.featureMaps(x).at(-1)!, 1).flatten(1));
  }

  /** Class logits [N, numClasses]. In training mode batch norms use batch statistics and update their running ones. */
  forward(x: Tensor): Tensor {
    return tidy(() => this.fc.forward(this.features(x)));
  }

  private checkInput(x: Tensor): void {
    if (x.ndim !== 4 || x.size(1) !== this.config.inChannels) {
      throw new InputError(`ResNet expects input [N, ${this.config.inChannels}, H, W]; got [${x.shape}]`);
    }
  }
}

/** A randomly initialised ResNet (torchvision's init: kaiming-normal fan-out convs, norms 1/0, nn.Linear's default fc). */
export function createResNet(config: ResNetConfig, opts: ModelOptions = {}): ResNet {
  return new ResNet(config, storeFor(opts));
}
