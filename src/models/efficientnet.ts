// EfficientNet-B0 (Tan & Le) as torchvision builds it, with torchvision's state-dict keys so that its checkpoints load
// as they are: features.0 the stem (conv 3x3 stride 2, BN, SiLU), features.1-7 the stages of MBConv blocks
// (features.s.i.block.{j}: [1x1 expand conv+BN+SiLU], kxk depthwise conv+BN+SiLU, squeeze-excitation (fc1, fc2 1x1
// convs with bias), 1x1 projection conv+BN), features.8 the 1x1 conv to 1280 channels, then global average pooling,
// dropout and classifier.1 (Linear). A block whose input and output shapes agree adds its input after stochastic
// depth (whole samples of the branch dropped with a probability rising linearly to 0.2 over the blocks).
import { InputError } from "../errors.js";
import { F, sigmoid, type Tensor, tidy } from "../torch/index.js";
import { kaimingNormalFanOut, uniform, zero } from "./init.js";
import { Conv2d, Dropout, Linear } from "./layers.js";
import { ConvBnAct } from "./mobilenet.js";
import { checkPositiveIntegers, Model, type ModelOptions, Store, storeFor, VarBuilder } from "./module.js";

export interface EfficientNetB0Config {
  numClasses: number;
  /** Input channels (default 3; torchvision's stem takes 3). */
  inChannels?: number;
  /** Dropout before the classifier in training mode (default 0.2, torchvision's for B0). */
  dropout?: number;
  /** Stochastic-depth probability of the last block (default 0.2, torchvision's); block b of B gets 0.2 b / B. */
  stochasticDepth?: number;
}

/** B0's stages: expansion, kernel, first stride, input and output channels, blocks (torchvision's _efficientnet_conf). */
const STAGES = [
  [1, 3, 1, 32, 16, 1],
  [6, 3, 2, 16, 24, 2],
  [6, 5, 2, 24, 40, 2],
  [6, 3, 2, 40, 80, 3],
  [6, 5, 1, 80, 112, 3],
  [6, 5, 2, 112, 192, 4],
  [6, 3, 1, 192, 320, 1],
] as const;
const LAST_CHANNELS = 1280;
/** torchvision's B0 regularisation: dropout before the classifier, stochastic depth of the last block. */
export const EFFICIENTNET_B0_DROPOUT = 0.2;
export const EFFICIENTNET_B0_STOCHASTIC_DEPTH = 0.2;

/** x times sigmoid(fc2(SiLU(fc1(mean over space of x)))): a per-channel gate from the block's own features. */
class SqueezeExcitation {
  private readonly fc1: Conv2d;
  private readonly fc2: Conv2d;
  constructor(vb: VarBuilder, channels: number, squeeze: number) {
    const init = { weightInit: kaimingNormalFanOut, biasInit: zero };
    this.fc1 = new Conv2d(vb.pp("fc1"), channels, squeeze, 1, init);
    this.fc2 = new Conv2d(vb.pp("fc2"), squeeze, channels, 1, init);
  }
  forward(x: Tensor): Tensor {
    return tidy(() => x.mul(sigmoid(this.fc2.forward(F.silu(this.fc1.forward(F.adaptiveAvgPool2d(x, 1)))))));
  }
}

class MBConv {
  private readonly layers: { forward(x: Tensor): Tensor }[] = [];
  private readonly drop: Dropout | null;
  constructor(
    vb: VarBuilder,
    expand: number,
    kernel: number,
    stride: number,
    inCh: number,
    outCh: number,
    dropProb: number,
  ) {
    const hidden = inCh * expand;
    const block = vb.pp("block");
    let i = 0;
    if (hidden !== inCh) this.layers.push(new ConvBnAct(block.pp(i++), inCh, hidden, 1, F.silu));
    this.layers.push(new ConvBnAct(block.pp(i++), hidden, hidden, kernel, F.silu, { stride, groups: hidden }));
    this.layers.push(new SqueezeExcitation(block.pp(i++), hidden, Math.max(1, Math.floor(inCh / 4))));
    this.layers.push(new ConvBnAct(block.pp(i), hidden, outCh, 1, null));
    this.drop = stride === 1 && inCh === outCh ? new Dropout(vb, dropProb, true) : null;
  }
  forward(x: Tensor): Tensor {
    return tidy(() => {
      const y = this.layers.reduce((h, l) => l.forward(h), x);
      return this.drop ? this.drop.forward(y).add(x) : y;
    });
  }
}

export class EfficientNetB0 extends Model {
  readonly config: Required<EfficientNetB0Config>;
  private readonly stem: ConvBnAct;
  private readonly blocks: MBConv[] = [];
  private readonly head: ConvBnAct;
  private readonly dropout: Dropout;
  private readonly classifier: Linear;
  /** Width of the pooled features (1280). */
  readonly numFeatures = LAST_CHANNELS;

  constructor(config: EfficientNetB0Config, store = new Store()) {
    super(store);
    const c = (this.config = {
      numClasses: config.numClasses,
      inChannels: config.inChannels ?? 3,
      dropout: config.dropout ?? EFFICIENTNET_B0_DROPOUT,
      stochasticDepth: config.stochasticDepth ?? EFFICIENTNET_B0_STOCHASTIC_DEPTH,
    });
    checkPositiveIntegers("EfficientNetB0", c, ["numClasses", "inChannels"]);
    for (const k of ["dropout", "stochasticDepth"] as const) {
      if (!(c[k] >= 0 && c[k] < 1)) throw new InputError(`EfficientNetB0 ${k} must be in [0, 1); got ${c[k]}`);
    }
    const vb = new VarBuilder(this.store);
    const features = vb.pp("features");
    this.stem = new ConvBnAct(features.pp(0), c.inChannels, STAGES[0][3], 3, F.silu, { stride: 2 });
    const total = STAGES.reduce((n, s) => n + s[5], 0);
    STAGES.forEach(([expand, kernel, stride, inCh, outCh, n], s) => {
      for (let i = 0; i < n; i++) {
        const p = (c.stochasticDepth * this.blocks.length) / total;
        this.blocks.push(
          new MBConv(features.pp(s + 1).pp(i), expand, kernel, i === 0 ? stride : 1, i === 0 ? inCh : outCh, outCh, p),
        );
      }
    });
    this.head = new ConvBnAct(features.pp(STAGES.length + 1), STAGES[STAGES.length - 1][4], LAST_CHANNELS, 1, F.silu);
    this.dropout = new Dropout(vb, c.dropout);
    // classifier.0 is the dropout, classifier.1 the Linear; torchvision inits it U(-1/sqrt(out), 1/sqrt(out)), bias 0.
    const range = 1 / Math.sqrt(c.numClasses);
    this.classifier = new Linear(vb.pp("classifier").pp(1), LAST_CHANNELS, c.numClasses, {
      weightInit: uniform(-range, range),
      biasInit: zero,
    });
  }

  /** Globally average-pooled output of features.8, [N, 1280]. */
  features(x: Tensor): Tensor {
    if (x.ndim !== 4 || x.size(1) !== this.config.inChannels)
      throw new InputError(`EfficientNetB0 expects input [N, ${this.config.inChannels}, H, W]; got [${x.shape}]`);
    return tidy(() => {
      const h = this.blocks.reduce((h, b) => b.forward(h), this.stem.forward(x));
      return F.adaptiveAvgPool2d(this.head.forward(h), 1).flatten(1);
    });
  }

  /** Class logits [N, numClasses]. */
  forward(x: Tensor): Tensor {
    return tidy(() => this.classifier.forward(this.dropout.forward(this.features(x))));
  }
}

/** A randomly initialised EfficientNet-B0 with torchvision's init (kaiming-normal fan-out convs, norms 1/0). */
export function createEfficientNetB0(config: EfficientNetB0Config, opts: ModelOptions = {}): EfficientNetB0 {
  return new EfficientNetB0(config, storeFor(opts));
}
