// ResNet-AP, the ResNet of IDC (Kim et al. 2022) that Minimax evaluates with: torchvision's basic blocks with every
// conv at stride 1 and 2x2 average pooling doing the downsampling (after the first ReLU of a block, and between the
// 1x1 conv and the norm of its shortcut), an average-pooled stem, and the DD codes' instance norm by default.
// Keys follow that code: layer0.conv1 / layer0.bn1 (the stem), layerN.i.conv1/bn1/conv2/bn2, layerN.0.downsample.0
// (1x1 conv) and .2 (norm; .1 is the pool), fc. The stem depends on the input size, as there: "large" (> 128 px)
// conv 7x7 and a 4x4 average pool, "mid" (65-128 px) conv 3x3 and a 2x2 pool, "small" (<= 64 px) conv 3x3 alone.
import { InputError } from "../errors.js";
import { F, type Tensor, tidy } from "../torch/index.js";
import { kaimingNormalFanOut } from "./init.js";
import { Conv2d, Linear } from "./layers.js";
import { Model, type ModelOptions, Store, storeFor, VarBuilder } from "./module.js";
import { type Norm2d, type Norm2dKind, norm2d, resolveResNetConfig } from "./resnet.js";

/** Basic blocks per stage for each depth (IDC's table; the bottleneck depths are not built here). */
const DEPTHS = { 10: [1, 1, 1, 1], 18: [2, 2, 2, 2], 34: [3, 4, 6, 3] } as const;
export type ResNetAPDepth = keyof typeof DEPTHS;
export type ResNetAPStem = "large" | "mid" | "small";

export interface ResNetAPConfig {
  depth: ResNetAPDepth;
  numClasses: number;
  /** Input channels (default 3). */
  inChannels?: number;
  /** "instance" (default, GroupNorm(C, C)) or "batch". */
  norm?: Norm2dKind;
  /** Default: from imageSize by IDC's rule, else "large". */
  stem?: ResNetAPStem;
}

/** A ResNet-AP's defaults (also a saved model's, models/classifiers.ts): the DD codes' instance norm, the large stem. */
export const RESNET_AP_DEFAULTS = { norm: "instance", stem: "large" } as const;

/** IDC's choice of stem by input side: <= 64 small, <= 128 mid, else large. */
export const resnetAPStem = (imageSize: number): ResNetAPStem =>
  imageSize <= 64 ? "small" : imageSize <= 128 ? "mid" : "large";

const conv = (vb: VarBuilder, inCh: number, outCh: number, kernel: number) =>
  new Conv2d(vb, inCh, outCh, kernel, { padding: (kernel - 1) / 2, bias: false, weightInit: kaimingNormalFanOut });

class BasicBlockAP {
  private readonly conv1: Conv2d;
  private readonly bn1: Norm2d;
  private readonly conv2: Conv2d;
  private readonly bn2: Norm2d;
  private readonly downsample: { conv: Conv2d; norm: Norm2d } | null;
  constructor(
    vb: VarBuilder,
    inCh: number,
    planes: number,
    private readonly stride: number,
    norm: Norm2dKind,
  ) {
    this.conv1 = conv(vb.pp("conv1"), inCh, planes, 3);
    this.bn1 = norm2d(vb.pp("bn1"), norm, planes);
    this.conv2 = conv(vb.pp("conv2"), planes, planes, 3);
    this.bn2 = norm2d(vb.pp("bn2"), norm, planes);
    const ds = vb.pp("downsample");
    this.downsample =
      stride !== 1 || inCh !== planes
        ? { conv: conv(ds.pp(0), inCh, planes, 1), norm: norm2d(ds.pp(2), norm, planes) }
        : null;
  }
  private pool(x: Tensor): Tensor {
    return this.stride === 1 ? x : F.avgPool2d(x, this.stride, { stride: this.stride });
  }
  forward(x: Tensor): Tensor {
    return tidy(() => {
      const h = this.pool(F.relu(this.bn1.forward(this.conv1.forward(x))));
      const out = this.bn2.forward(this.conv2.forward(h));
      const shortcut = this.downsample ? this.downsample.norm.forward(this.pool(this.downsample.conv.forward(x))) : x;
      return F.relu(out.add(shortcut));
    });
  }
}

export class ResNetAP extends Model {
  readonly config: Required<ResNetAPConfig>;
  private readonly conv1: Conv2d;
  private readonly bn1: Norm2d;
  private readonly stages: BasicBlockAP[][];
  private readonly fc: Linear;
  /** Width of the pooled features (512). */
  readonly numFeatures: number;

  constructor(config: ResNetAPConfig, store = new Store()) {
    super(store);
    const c = (this.config = resolveResNetConfig("ResNetAP", config, RESNET_AP_DEFAULTS, {
      depths: DEPTHS,
      stems: ["large", "mid", "small"],
    }));
    const layers = DEPTHS[c.depth];
    const vb = new VarBuilder(this.store);
    const layer0 = vb.pp("layer0");
    this.conv1 = conv(layer0.pp("conv1"), c.inChannels, 64, c.stem === "large" ? 7 : 3);
    this.bn1 = norm2d(layer0.pp("bn1"), c.norm, 64);
    let inCh = 64;
    this.stages = layers.map((blocks, s) => {
      const planes = 64 << s;
      return Array.from({ length: blocks }, (_, i) => {
        const block = new BasicBlockAP(vb.pp(`layer${s + 1}`).pp(i), inCh, planes, i === 0 && s > 0 ? 2 : 1, c.norm);
        inCh = planes;
        return block;
      });
    });
    this.numFeatures = inCh;
    this.fc = new Linear(vb.pp("fc"), inCh, c.numClasses);
  }

  /** Average-pooled output of layer4 (a pool as wide as the map, as IDC's forward), [N, 512]. */
  features(x: Tensor): Tensor {
    if (x.ndim !== 4 || x.size(1) !== this.config.inChannels)
      throw new InputError(`ResNetAP expects input [N, ${this.config.inChannels}, H, W]; got [${x.shape}]`);
    return tidy(() => {
      let h = F.relu(this.bn1.forward(this.conv1.forward(x)));
      if (this.config.stem !== "small") {
        const k = this.config.stem === "large" ? 4 : 2;
        h = F.avgPool2d(h, k, { stride: k });
      }
      for (const stage of this.stages) for (const block of stage) h = block.forward(h);
      return F.avgPool2d(h, h.size(3)).flatten(1);
    });
  }

  /** Class logits [N, numClasses]. */
  forward(x: Tensor): Tensor {
    return tidy(() => this.fc.forward(this.features(x)));
  }
}

/** A randomly initialised ResNet-AP with IDC's init (convs N(0, 2 / (k k out)), norms 1/0, nn.Linear's default fc). */
export function createResNetAP(config: ResNetAPConfig, opts: ModelOptions = {}): ResNetAP {
  return new ResNetAP(config, storeFor(opts));
}
