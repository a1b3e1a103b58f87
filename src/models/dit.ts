// DiT, the Diffusion Transformer of Peebles & Xie ("Scalable Diffusion Models with Transformers", 2023), with the
// official checkpoint's state_dict keys. Sections follow the paper: patchify + position embedding (3.2), conditioning
// on timestep and class (3.2, "adaLN-Zero"), the transformer blocks, the final layer + unpatchify, and classifier-free
// guidance as the reference sampler calls it (`forward_with_cfg`). Blocks may carry the DiffFit scales of a
// Minimax-fine-tuned DiT (docs/minimax.md).
import { InputError } from "../errors.js";
import {
  addcmul,
  arange,
  autocastToFloat,
  bmm,
  callOp,
  cat,
  cos,
  eq,
  exp,
  F,
  full,
  type Generator,
  keep,
  lt,
  maskedFill,
  noGrad,
  onesLike,
  outer,
  type Precision,
  pow,
  rand,
  sin,
  type Tensor,
  tensor,
  tidy,
} from "../torch/index.js";
import { fromDiffusers, isDiffusersNaming } from "./dit-keys.js";
import { normal, xavierUniform, zero } from "./init.js";
import { Conv2d, Linear } from "./layers.js";
import { cfgForward, type DiffusionModel } from "../diffusion/model.js";
import { DIT_SIZES, gammaKeyBlock, minimaxGammaBlocks } from "../io/dit-layout.js";
import type { LoadReport } from "../io/state-dict.js";
import { type Init, type LoadOptions, Model, type ModelOptions, storeFor, VarBuilder } from "./module.js";

// ---------------------------------------------------------------------------------------------------------------
// configurations
// ---------------------------------------------------------------------------------------------------------------

export interface DiTConfig {
  /** Latent side length (the model is built for square inputs of this size). */
  inputSize: number;
  inChannels: number;
  numClasses: number;
  /** Predict the variance too: 2 * inChannels output channels (eps first, then the variance interpolation). */
  learnSigma: boolean;
  /** Label dropout in training mode; > 0 adds the null class (row numClasses of the label table). */
  classDropoutProb: number;
  depth: number;
  hiddenSize: number;
  numHeads: number;
  patchSize: number;
  mlpRatio: number;
  /**
   * How many leading blocks carry DiffFit scales (gammas): 0 for the plain DiT, depth/2 (rounded down) for the
   * Minimax layout, the only other one.
   */
  gammaBlocks: number;
}

/** The reference constructor's defaults (DiT-XL/2 for 256x256 images, i.e. 4x32x32 latents). */
export const DIT_DEFAULTS: Readonly<DiTConfig> = {
  inputSize: 32,
  inChannels: 4,
  numClasses: 1000,
  learnSigma: true,
  classDropoutProb: 0.1,
  depth: 28,
  hiddenSize: 1152,
  numHeads: 16,
  patchSize: 2,
  mlpRatio: 4,
  gammaBlocks: 0,
};

/** "DiT-S/2" ... "DiT-XL/8". */
export const DIT_NAMES: readonly string[] = Object.keys(DIT_SIZES).flatMap((s) =>
  [2, 4, 8].map((p) => `DiT-${s}/${p}`),
);

/** The configuration of a named model ("DiT-XL/2"; "DiT-XL-2" as in the checkpoint file names is accepted too). */
export function ditConfig(name: string): DiTConfig {
  const m = /^DiT-(S|B|L|XL)[/-](2|4|8)$/.exec(name);
  if (!m) throw new InputError(`unknown DiT model '${name}' (expected one of ${DIT_NAMES.join(", ")})`);
  return { ...DIT_DEFAULTS, ...DIT_SIZES[m[1] as keyof typeof DIT_SIZES], patchSize: Number(m[2]) };
}

/** createDiT("DiT-XL/2") or createDiT({ ...ditConfig("DiT-XL/2"), inputSize: 16 }) or createDiT({ depth: 2, ... }). */
export function createDiT(config: string | Partial<DiTConfig>, opts: ModelOptions = {}): DiT {
  return new DiT(typeof config === "string" ? ditConfig(config) : { ...DIT_DEFAULTS, ...config }, opts);
}

function validate(c: DiTConfig): void {
  const bad = (msg: string) => new InputError(`invalid DiT configuration: ${msg}`);
  for (const k of ["inputSize", "inChannels", "numClasses", "depth", "hiddenSize", "numHeads", "patchSize"] as const) {
    if (!Number.isInteger(c[k]) || c[k] < 1) throw bad(`${k} must be a positive integer (got ${c[k]})`);
  }
  if (c.inputSize % c.patchSize) throw bad(`inputSize ${c.inputSize} is not a multiple of patchSize ${c.patchSize}`);
  if (c.hiddenSize % c.numHeads) throw bad(`hiddenSize ${c.hiddenSize} is not a multiple of numHeads ${c.numHeads}`);
  if (c.hiddenSize % 4)
    throw bad(`hiddenSize ${c.hiddenSize} must be a multiple of 4 (2-D sin-cos position embedding)`);
  if (!(c.classDropoutProb >= 0 && c.classDropoutProb < 1))
    throw bad(`classDropoutProb must be in [0, 1) (got ${c.classDropoutProb})`);
  if (!(c.mlpRatio > 0)) throw bad(`mlpRatio must be positive (got ${c.mlpRatio})`);
  const minimax = minimaxGammaBlocks(c.depth);
  if (c.gammaBlocks !== 0 && c.gammaBlocks !== minimax) {
    throw bad(
      `gammaBlocks must be 0 (plain DiT) or ${minimax} (Minimax: the first half of ${c.depth} blocks), got ${c.gammaBlocks}`,
    );
  }
}

// ---------------------------------------------------------------------------------------------------------------
// weight initialisation (the reference's initialize_weights), applied only when training from scratch
// ---------------------------------------------------------------------------------------------------------------

interface Inits {
  /** Linear weights: xavier uniform. */
  linear: Init;
  /** Biases everywhere, adaLN modulation and the final layer: zero (adaLN-Zero makes every block start as identity). */
  zero: Init;
  /** Patch embedding: xavier uniform of the weight viewed as [hidden, C*p*p], as a linear layer would be. */
  patch: Init;
  /** Label table and timestep MLP weights: N(0, 0.02). */
  embed: Init;
}

const xavierFlat: Init = (t, g) => {
  const flat = t.view(t.size(0), -1);
  xavierUniform()(flat, g);
  flat.dispose();
};

const INITS: Inits = { linear: xavierUniform(), zero, patch: xavierFlat, embed: normal(0, 0.02) };

// ---------------------------------------------------------------------------------------------------------------
// 1. patchify and the fixed 2-D sin-cos position embedding
// ---------------------------------------------------------------------------------------------------------------

/** [len, dim]: sin(pos * omega_i) for the first half of the channels, cos for the second; omega_i = 10000^(-2i/dim). */
function sincos1d(dim: number, pos: Tensor): Tensor {
  const omega = callOp("reciprocal", pow(10000, arange(0, dim / 2, 1, { dtype: "float64" }).div(dim / 2)));
  const angles = outer(pos, omega);
  return cat([sin(angles), cos(angles)], 1);
}

/**
 * [1, grid*grid, dim] in float64 (MAE style, tokens row-major): the first half of the channels encodes the token's
 * column, the second half its row.
 */
function sincos2d(dim: number, grid: number): Tensor {
  return tidy(() => {
    const r = arange(0, grid, 1, { dtype: "float64" });
    const col = r.repeat(grid);
    const row = r.unsqueeze(1).expand(grid, grid).reshape(-1);
    return cat([sincos1d(dim / 2, col), sincos1d(dim / 2, row)], 1).unsqueeze(0);
  });
}

/**
 * Patchify: x_embedder.proj is a Conv2d with kernel = stride = p, one token per p x p patch;
 * [N, C, H, W] -> [N, T, hidden], tokens row-major.
 */
const patchify = (proj: Conv2d, x: Tensor): Tensor => proj.forward(x).flatten(2).transpose(1, 2);

// ---------------------------------------------------------------------------------------------------------------
// 2. conditioning: timestep and class embeddings, summed into c
// ---------------------------------------------------------------------------------------------------------------

/** Sinusoidal features of t (256: cos then sin of t * exp(-ln(10000) i/128)), then Linear-SiLU-Linear. */
class TimestepEmbedder {
  static readonly FREQ_DIM = 256;
  readonly fc1: Linear;
  readonly fc2: Linear;
  /** exp(-ln(10000) * i / 128), i = 0..127, in float32 as the reference computes it. */
  readonly freqs: Tensor;
  constructor(vb: VarBuilder, hidden: number, init: Inits) {
    const half = TimestepEmbedder.FREQ_DIM / 2;
    const mlp = vb.pp("mlp");
    this.fc1 = new Linear(mlp.pp(0), TimestepEmbedder.FREQ_DIM, hidden, {
      weightInit: init.embed,
      biasInit: init.zero,
    });
    this.fc2 = new Linear(mlp.pp(2), hidden, hidden, { weightInit: init.embed, biasInit: init.zero });
    this.freqs = keep(
      tidy(() => exp(arange(0, half, 1, { dtype: "float32" }).mul(-Math.log(10000)).div(half)).to(vb.store.device)),
    );
  }
  forward(t: Tensor): Tensor {
    const args = t.float().unsqueeze(1).mul(this.freqs);
    const feats = cat([cos(args), sin(args)], 1).to(this.fc1.weight.dtype);
    return this.fc2.forward(F.silu(this.fc1.forward(feats)));
  }
}

export interface LabelDropOptions {
  /** Per sample: 1 replaces the label by the null class (applies in eval mode too, as the reference's token_drop). */
  forceDropIds?: Tensor | readonly (number | boolean)[];
  /** Source of the random label dropout in training mode. */
  generator?: Generator;
}

const isTensor = (v: unknown): v is Tensor => (v as { __isTensor?: boolean } | null)?.__isTensor === true;

/** A table of numClasses (+1 null row when label dropout is on) vectors; dropout to null trains the unconditional model. */
class LabelEmbedder {
  readonly table: Tensor;
  constructor(
    vb: VarBuilder,
    readonly numClasses: number,
    hidden: number,
    readonly dropProb: number,
    init: Inits,
  ) {
    this.table = vb.param("embedding_table.weight", [numClasses + (dropProb > 0 ? 1 : 0), hidden], init.embed);
  }
  forward(y: Tensor, training: boolean, o: LabelDropOptions): Tensor {
    const rows = this.table.size(0);
    for (const label of y.toNumbers()) {
      if (!Number.isInteger(label) || label < 0 || label >= rows) {
        const nul = rows > this.numClasses ? `, ${this.numClasses} = null` : "";
        throw new InputError(`DiT: class label ${label} out of range 0..${rows - 1}${nul}`);
      }
    }
    let labels = y;
    if ((training && this.dropProb > 0) || o.forceDropIds !== undefined) {
      if (rows === this.numClasses)
        throw new InputError("DiT: label dropout needs a null class (classDropoutProb > 0)");
      const force = o.forceDropIds;
      const drop =
        force === undefined
          ? lt(rand([y.size(0)], { generator: o.generator, device: y.device }), this.dropProb)
          : eq(isTensor(force) ? force : tensor(force.map(Number), { dtype: "int64", device: y.device }), 1);
      labels = maskedFill(y, drop, this.numClasses);
    }
    return F.embedding(this.table, labels);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// 3. DiT block with adaLN-Zero: c regresses shift, scale and a residual gate for attention and for the MLP
// ---------------------------------------------------------------------------------------------------------------

const LN_EPS = 1e-6;
/** LayerNorm without affine parameters: adaLN supplies scale and shift. */
const norm = (x: Tensor) => F.layerNorm(x, [x.size(-1)], null, null, LN_EPS);
/**
 * base + a * b, fused when all three share a dtype. Under autocast (a bf16 branch meeting the fp32 residual stream)
 * it is PyTorch's two steps: the product in the operands' low precision, then the sum in fp32, as the reference
 * code's `x + gate * branch` rounds, and with the product's backward in low precision too.
 */
const mulAdd = (base: Tensor, a: Tensor, b: Tensor) =>
  a.dtype === base.dtype && b.dtype === base.dtype ? addcmul(base, a, b) : base.add(a.mul(b));
/** x * (1 + scale) + shift, per sample (scale and shift are [N, 1, D]). */
const modulate = (x: Tensor, shift: Tensor, scale: Tensor) => mulAdd(shift, x, scale.add(1));

/**
 * A DiffFit scale of `size` channels, at 1 even when the model is built without initialisation: a model with gammas
 * at 1 is the plain DiT, so a plain checkpoint loaded into it (DiT.loadStateDict's gammasFromPlain) stays exact.
 */
function gamma(vb: VarBuilder, name: string, size: number): Tensor {
  const g = vb.param(name, [size]);
  noGrad(() => void g.fill_(1));
  return g;
}

/**
 * Multi-head self-attention with one qkv projection (with bias): softmax(q k^T / sqrt(head_dim)) v. In a Minimax
 * block, gamma1 [3 dim] scales the qkv output and gamma2 [dim] the output projection.
 */
class Attention {
  readonly qkv: Linear;
  readonly proj: Linear;
  readonly gamma1: Tensor | null;
  readonly gamma2: Tensor | null;
  readonly scale: number;
  constructor(
    vb: VarBuilder,
    dim: number,
    readonly heads: number,
    gammas: boolean,
    init: Inits,
  ) {
    this.qkv = new Linear(vb.pp("qkv"), dim, 3 * dim, { weightInit: init.linear, biasInit: init.zero });
    this.proj = new Linear(vb.pp("proj"), dim, dim, { weightInit: init.linear, biasInit: init.zero });
    this.gamma1 = gammas ? gamma(vb, "gamma1", 3 * dim) : null;
    this.gamma2 = gammas ? gamma(vb, "gamma2", dim) : null;
    this.scale = (dim / heads) ** -0.5;
  }
  forward(x: Tensor): Tensor {
    const [n, t, d] = x.shape;
    const h = this.heads;
    const hd = d / h;
    // One copy into [3, N*heads, T, head_dim]; q, k and v are then contiguous views for the batched GEMMs.
    // Intermediates live in nested scopes and are freed as soon as they are used, so the allocator hands the next
    // step buffers that are still in cache (as PyTorch's reference counting does); autograd keeps what it saved.
    return tidy(() => {
      const out = tidy(() => {
        const proj = this.gamma1 ? this.qkv.forward(x).mul(this.gamma1) : this.qkv.forward(x);
        const qkv = proj
          .view(n, t, 3, h, hd)
          .permute(2, 0, 3, 1, 4)
          .contiguous()
          .view(3, n * h, t, hd);
        const [q, k, v] = [0, 1, 2].map((i) => qkv.select(0, i));
        // Scale q first, as timm's Attention does. (Not baddbmm with beta = 0: libtorch 1.13's CPU kernel still reads
        // its uninitialised output for small matrices, so 0 * NaN leaked garbage into the scores now and then.)
        const attn = F.softmax(
          tidy(() => bmm(q.mul(this.scale), k.transpose(1, 2))),
          -1,
        );
        return bmm(attn, v).view(n, h, t, hd).transpose(1, 2).reshape(n, t, d);
      });
      return this.gamma2 ? this.proj.forward(out).mul(this.gamma2) : this.proj.forward(out);
    });
  }
}

/** fc1 -> tanh-approximated GELU -> fc2. */
class Mlp {
  readonly fc1: Linear;
  readonly fc2: Linear;
  constructor(vb: VarBuilder, dim: number, hidden: number, init: Inits) {
    this.fc1 = new Linear(vb.pp("fc1"), dim, hidden, { weightInit: init.linear, biasInit: init.zero });
    this.fc2 = new Linear(vb.pp("fc2"), hidden, dim, { weightInit: init.linear, biasInit: init.zero });
  }
  forward(x: Tensor): Tensor {
    return tidy(() => this.fc2.forward(tidy(() => F.gelu(this.fc1.forward(x), "tanh"))));
  }
}

/** With gammas (Minimax), gamma1 [D] scales the gated attention branch and gamma2 [D] the gated MLP branch. */
class DiTBlock {
  readonly attn: Attention;
  readonly mlp: Mlp;
  /** adaLN_modulation = Sequential(SiLU, Linear): only the Linear (index 1) has weights. */
  readonly adaLN: Linear;
  readonly gamma1: Tensor | null;
  readonly gamma2: Tensor | null;
  constructor(vb: VarBuilder, c: DiTConfig, gammas: boolean, init: Inits) {
    const d = c.hiddenSize;
    this.attn = new Attention(vb.pp("attn"), d, c.numHeads, gammas, init);
    this.mlp = new Mlp(vb.pp("mlp"), d, Math.trunc(d * c.mlpRatio), init);
    this.adaLN = new Linear(vb.pp("adaLN_modulation").pp(1), d, 6 * d, { weightInit: init.zero, biasInit: init.zero });
    this.gamma1 = gammas ? gamma(vb, "gamma1", d) : null;
    this.gamma2 = gammas ? gamma(vb, "gamma2", d) : null;
  }
  /** x: [N, T, D]; siluC: SiLU(c), [N, D]. x + gate * branch, the gate times gamma in a Minimax block. */
  forward(x: Tensor, siluC: Tensor): Tensor {
    return tidy(() => {
      const [shiftMsa, scaleMsa, gateMsa, shiftMlp, scaleMlp, gateMlp] = this.adaLN
        .forward(siluC)
        .unsqueeze(1)
        .chunk(6, 2);
      const gateA = this.gamma1 ? gateMsa.mul(this.gamma1) : gateMsa;
      const gateM = this.gamma2 ? gateMlp.mul(this.gamma2) : gateMlp;
      const h = tidy(() => mulAdd(x, gateA, this.attn.forward(tidy(() => modulate(norm(x), shiftMsa, scaleMsa)))));
      return mulAdd(h, gateM, this.mlp.forward(tidy(() => modulate(norm(h), shiftMlp, scaleMlp))));
    });
  }
}

// ---------------------------------------------------------------------------------------------------------------
// 4. final layer (adaLN shift/scale, then a linear decoder to p*p*out_channels per token) and unpatchify
// ---------------------------------------------------------------------------------------------------------------

class FinalLayer {
  readonly adaLN: Linear;
  readonly linear: Linear;
  constructor(vb: VarBuilder, hidden: number, patch: number, outCh: number, init: Inits) {
    this.adaLN = new Linear(vb.pp("adaLN_modulation").pp(1), hidden, 2 * hidden, {
      weightInit: init.zero,
      biasInit: init.zero,
    });
    this.linear = new Linear(vb.pp("linear"), hidden, patch * patch * outCh, {
      weightInit: init.zero,
      biasInit: init.zero,
    });
  }
  forward(x: Tensor, siluC: Tensor): Tensor {
    return tidy(() => {
      const [shift, scale] = this.adaLN.forward(siluC).unsqueeze(1).chunk(2, 2);
      return this.linear.forward(tidy(() => modulate(norm(x), shift, scale)));
    });
  }
}

// ---------------------------------------------------------------------------------------------------------------
// 5. the model
// ---------------------------------------------------------------------------------------------------------------

export interface CfgOptions {
  /** Channels that get guidance: 3 (the reference's choice for 4-channel latents) or "all" eps channels. */
  guidedChannels?: number | "all";
}

/** A DiT's forward and guided forward at a precision (DiT.atPrecision). */
export interface DiTAtPrecision extends Required<DiffusionModel> {
  forward(x: Tensor, t: Tensor | number, y: Tensor, opts?: LabelDropOptions): Tensor;
}

export class DiT extends Model implements DiffusionModel {
  readonly config: Readonly<DiTConfig>;
  readonly outChannels: number;
  /** Tokens per side of the latent. */
  readonly grid: number;
  readonly xEmbedder: Conv2d;
  /** Fixed, not trained, but part of the official state dict. */
  readonly posEmbed: Tensor;
  readonly tEmbedder: TimestepEmbedder;
  readonly yEmbedder: LabelEmbedder;
  readonly blocks: DiTBlock[];
  readonly finalLayer: FinalLayer;

  constructor(config: DiTConfig, opts: ModelOptions = {}) {
    validate(config);
    super(storeFor(opts));
    const c = (this.config = Object.freeze({ ...config }));
    const init = INITS;
    const vb = new VarBuilder(this.store);
    const d = c.hiddenSize;
    this.outChannels = c.learnSigma ? 2 * c.inChannels : c.inChannels;
    this.grid = c.inputSize / c.patchSize;
    const patch = { stride: c.patchSize, weightInit: init.patch, biasInit: init.zero };
    this.xEmbedder = new Conv2d(vb.pp("x_embedder").pp("proj"), c.inChannels, d, c.patchSize, patch);
    this.tEmbedder = new TimestepEmbedder(vb.pp("t_embedder"), d, init);
    this.yEmbedder = new LabelEmbedder(vb.pp("y_embedder"), c.numClasses, d, c.classDropoutProb, init);
    // Computed even without initialisation: diffusers checkpoints do not carry it.
    this.posEmbed = vb.buffer("pos_embed", [1, this.grid * this.grid, d]);
    noGrad(() => tidy(() => void this.posEmbed.copy_(sincos2d(d, this.grid))));
    this.blocks = Array.from(
      { length: c.depth },
      (_, i) => new DiTBlock(vb.pp("blocks").pp(i), c, i < c.gammaBlocks, init),
    );
    this.finalLayer = new FinalLayer(vb.pp("final_layer"), d, c.patchSize, this.outChannels, init);
  }

  /** The label of the unconditional model (the label table's last row). */
  get nullClass(): number {
    return this.config.numClasses;
  }

  /**
   * Noise (and, with learnSigma, variance) prediction. x: [N, C, H, W] latents; t: [N] timesteps (int64 or float)
   * or one number for all; y: [N] int64 class labels (numClasses = null). Returns [N, outChannels, H, W].
   */
  forward(x: Tensor, t: Tensor | number, y: Tensor, opts: LabelDropOptions = {}): Tensor {
    const c = this.config;
    const [n, ch, hh, ww] = x.shape;
    if (x.ndim !== 4 || ch !== c.inChannels || hh !== c.inputSize || ww !== c.inputSize) {
      throw new InputError(
        `DiT: expected latents [N, ${c.inChannels}, ${c.inputSize}, ${c.inputSize}], got [${x.shape}]`,
      );
    }
    if (y.ndim !== 1 || y.size(0) !== n)
      throw new InputError(`DiT: expected ${n} class labels, got shape [${y.shape}]`);
    return tidy(() => {
      const steps = typeof t === "number" ? full([n], t, { device: x.device }) : t;
      if (steps.ndim !== 1 || steps.size(0) !== n)
        throw new InputError(`DiT: expected ${n} timesteps, got shape [${steps.shape}]`);
      let h = patchify(this.xEmbedder, x).add(this.posEmbed);
      const cond = this.tEmbedder.forward(steps).add(this.yEmbedder.forward(y, this.training, opts));
      // Every adaLN_modulation starts with SiLU(c): compute it once.
      const siluC = F.silu(cond);
      for (const block of this.blocks) {
        const prev = h;
        h = tidy(() => block.forward(prev, siluC));
        prev.dispose();
      }
      return this.unpatchify(this.finalLayer.forward(h, siluC));
    });
  }

  /** [N, T, p*p*C] -> [N, C, H, W]. */
  private unpatchify(x: Tensor): Tensor {
    const p = this.config.patchSize;
    const g = this.grid;
    const oc = this.outChannels;
    return x
      .view(x.size(0), g, g, p, p, oc)
      .permute(0, 5, 1, 3, 2, 4)
      .reshape(x.size(0), oc, g * p, g * p);
  }

  /**
   * Classifier-free guidance as the reference's forward_with_cfg: x, t and y hold the conditional half then the
   * unconditional half (y = labels, then null labels). Only x's first half is used (duplicated); the guided eps
   * uncond + scale * (cond - uncond) is returned for both halves, the remaining channels as predicted.
   */
  forwardWithCfg(x: Tensor, t: Tensor | number, y: Tensor, scale: number, opts: CfgOptions = {}): Tensor {
    const n = x.size(0);
    if (n % 2)
      throw new InputError(
        `DiT.forwardWithCfg: the batch holds conditional and unconditional halves, got ${n} samples`,
      );
    return cfgForward(this, x, t, y, scale, this.guidedChannelCount(opts));
  }

  /**
   * This DiT as sampling and refinement call it: the forward under autocast at `precision` with its output back in
   * fp32 (torch/autocast.ts), so that guidance, computed from that forward, and everything after it stay fp32.
   * fp32: the model's own arithmetic throughout.
   */
  atPrecision(device: string, precision: Precision, cfg: CfgOptions = {}): DiTAtPrecision {
    const model: DiTAtPrecision = {
      forward: (x, t, y, opts = {}) => autocastToFloat(device, precision, () => this.forward(x, t, y, opts)),
      forwardWithCfg: (x, t, y, scale) => cfgForward(model, x, t, y, scale, this.guidedChannelCount(cfg)),
    };
    return model;
  }

  /** How many output channels guidance combines (CfgOptions.guidedChannels, checked). */
  guidedChannelCount(opts: CfgOptions = {}): number {
    const g = opts.guidedChannels === "all" ? this.config.inChannels : (opts.guidedChannels ?? 3);
    if (!Number.isInteger(g) || g < 1 || g > this.outChannels) {
      throw new InputError(`DiT.forwardWithCfg: guidedChannels must be 1..${this.outChannels} or "all" (got ${g})`);
    }
    return g;
  }

  /**
   * Loads the official checkpoint names or diffusers' (detected). A diffusers checkpoint has no pos_embed (diffusers
   * does not save it); it is a fixed function of the configuration, so this model's own is kept. With
   * gammasFromPlain, a checkpoint without any gamma loads into a Minimax model with its gammas at 1.
   */
  override loadStateDict(sd: Map<string, Tensor>, opts: DiTLoadOptions = {}): LoadReport {
    const { stripPrefix, gammasFromPlain, ...rest } = opts;
    let src = sd;
    if (stripPrefix)
      src = new Map([...sd].map(([k, v]) => [k.startsWith(stripPrefix) ? k.slice(stripPrefix.length) : k, v]));
    return tidy(() => {
      const diffusers = isDiffusersNaming(src);
      const official = diffusers ? fromDiffusers(src) : new Map(src);
      if (diffusers && !official.has("pos_embed")) official.set("pos_embed", this.posEmbed);
      if (gammasFromPlain && ![...official.keys()].some((k) => gammaKeyBlock(k) !== null)) {
        // Upstream loads the plain DiT into its Minimax model with strict=False; here only the gammas may be absent.
        for (const [k, t] of this.stateDict()) if (gammaKeyBlock(k) !== null) official.set(k, onesLike(t));
      }
      return super.loadStateDict(official, rest);
    });
  }
}

export interface DiTLoadOptions extends LoadOptions {
  /** A checkpoint without gammas (a plain DiT) loads into a model with them, keeping them at 1. */
  gammasFromPlain?: boolean;
}
