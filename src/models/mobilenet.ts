// MobileNetV2 (Sandler et al.) as torchvision builds it, with torchvision's state-dict keys so that its checkpoints
// load as they are: features.0 the stem (conv 3x3 stride 2, BN, ReLU6), features.1-17 the inverted residual blocks
// (features.i.conv.{j}: [1x1 expand conv+BN+ReLU6], 3x3 depthwise conv+BN+ReLU6, 1x1 linear projection conv, BN),
// features.18 the 1x1 conv to 1280 channels, then global average pooling, dropout and classifier.1 (Linear).
import { InputError } from "../errors.js";
import { F, type Tensor, tidy } from "../torch/index.js";
import { normal, zero } from "./init.js";
import { Dropout, Linear } from "./layers.js";
import { checkPositiveIntegers, Model, type ModelOptions, Store, storeFor, VarBuilder } from "./module.js";
import { ConvNorm } from "./resnet.js";

export interface MobileNetV2Config {
  numClasses: number;
  /** Input channels (default 3; torchvision's stem takes 3). */
  inChannels?: number;
  /** Dropout before the classifier in training mode (default 0.2, torchvision's). */
  dropout?: number;
}

/** The paper's Table 2: expansion t, output channels c, repeats n, first stride s. */
const SETTINGS = [
  [1, 16, 1, 1],
  [6, 24, 2, 2],
  [6, 32, 3, 2],
  [6, 64, 4, 2],
  [6, 96, 3, 1],
  [6, 160, 3, 2],
  [6, 320, 1, 1],
] as const;
/** torchvision's dropout before the classifier. */
export const MOBILENET_V2_DROPOUT = 0.2;
const STEM_CHANNELS = 32;
const LAST_CHANNELS = 1280;

/** torchvision's Conv2dNormActivation (keys .0 conv, .1 BatchNorm) with an optional activation after it. */
export class ConvBnAct {
  private readonly cn: ConvNorm;
  constructor(
    vb: VarBuilder,
    inCh: number,
    outCh: number,
    kernel: number,
    private readonly act: ((x: Tensor) => Tensor) | null,
    o: { stride?: number; groups?: number } = {},
  ) {
    this.cn = new ConvNorm(vb.pp(0), vb.pp(1), inCh, outCh, kernel, o.stride ?? 1, "batch", o.groups ?? 1);
  }
  forward(x: Tensor): Tensor {
    return tidy(() => {
      const y = this.cn.forward(x);
      return this.act ? this.act(y) : y;
    });
  }
}

/** Expand (1x1, when t > 1), depthwise 3x3, linear projection (1x1 conv, BN); the input added when shapes agree. */
class InvertedResidual {
  private readonly layers: { forward(x: Tensor): Tensor }[] = [];
  private readonly residual: boolean;
  constructor(vb: VarBuilder, inCh: number, outCh: number, stride: number, expand: number) {
    const hidden = Math.round(inCh * expand);
    const conv = vb.pp("conv");
    let i = 0;
    if (expand !== 1) this.layers.push(new ConvBnAct(conv.pp(i++), inCh, hidden, 1, F.relu6));
    this.layers.push(new ConvBnAct(conv.pp(i++), hidden, hidden, 3, F.relu6, { stride, groups: hidden }));
    this.layers.push(new ConvNorm(conv.pp(i), conv.pp(i + 1), hidden, outCh, 1, 1, "batch"));
    this.residual = stride === 1 && inCh === outCh;
  }
  forward(x: Tensor): Tensor {
    return tidy(() => {
      const y = this.layers.reduce((h, l) => l.forward(h), x);
      return this.residual ? y.add(x) : y;
    });
  }
}

export class MobileNetV2 extends Model {
  readonly config: Required<MobileNetV2Config>;
  private readonly features_: { forward(x: Tensor): Tensor }[];
  private readonly dropout: Dropout;
  private readonly classifier: Linear;
  /** Width of the pooled features (1280). */
  readonly numFeatures = LAST_CHANNELS;

  constructor(config: MobileNetV2Config, store = new Store()) {
    super(store);
    const c = (this.config = {
      numClasses: config.numClasses,
      inChannels: config.inChannels ?? 3,
      dropout: config.dropout ?? MOBILENET_V2_DROPOUT,
    });
    checkPositiveIntegers("MobileNetV2", c, ["numClasses", "inChannels"]);
    if (!(c.dropout >= 0 && c.dropout < 1))
      throw new InputError(`MobileNetV2 dropout must be in [0, 1); got ${c.dropout}`);
    const vb = new VarBuilder(this.store);
    const features = vb.pp("features");
    this.features_ = [new ConvBnAct(features.pp(0), c.inChannels, STEM_CHANNELS, 3, F.relu6, { stride: 2 })];
    let inCh = STEM_CHANNELS;
    for (const [t, ch, n, s] of SETTINGS) {
      for (let i = 0; i < n; i++) {
        this.features_.push(new InvertedResidual(features.pp(this.features_.length), inCh, ch, i === 0 ? s : 1, t));
        inCh = ch;
      }
    }
    this.features_.push(new ConvBnAct(features.pp(this.features_.length), inCh, LAST_CHANNELS, 1, F.relu6));
    // classifier.0 is the dropout (no weights), classifier.1 the Linear; torchvision inits it N(0, 0.01), bias 0.
    this.dropout = new Dropout(vb, c.dropout);
    this.classifier = new Linear(vb.pp("classifier").pp(1), LAST_CHANNELS, c.numClasses, {
      weightInit: normal(0, 0.01),
      biasInit: zero,
    });
  }

  /** Globally average-pooled output of features.18, [N, 1280]. */
  features(x: Tensor): Tensor {
    if (x.ndim !== 4 || x.size(1) !== this.config.inChannels)
      throw new InputError(`MobileNetV2 expects input [N, ${this.config.inChannels}, H, W]; got [${x.shape}]`);
    return tidy(() =>
      F.adaptiveAvgPool2d(
        this.features_.reduce((h, l) => l.forward(h), x),
        1,
      ).flatten(1),
    );
  }

  /** Class logits [N, numClasses]. */
  forward(x: Tensor): Tensor {
    return tidy(() => this.classifier.forward(this.dropout.forward(this.features(x))));
  }
}

/** A randomly initialised MobileNetV2 with torchvision's init (kaiming-normal fan-out convs, norms 1/0). */
export function createMobileNetV2(config: MobileNetV2Config, opts: ModelOptions = {}): MobileNetV2 {
  return new MobileNetV2(config, storeFor(opts));
}
