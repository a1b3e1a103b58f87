// AutoencoderKL: the Stable Diffusion VAE (Rombach et al., "High-Resolution Image Synthesis with Latent Diffusion
// Models"), with diffusers' AutoencoderKL parameter names, so sd-vae-ft-mse / sd-vae-ft-ema checkpoints load as they
// are; the channel list makes the same class serve our small embedded autoencoder.
//
//   x --Encoder--> h --quant_conv--> (mean, logvar)  q(z|x) = N(mean, exp(logvar))
//   z --post_quant_conv--> --Decoder--> x'
//
// Diffusion runs on z * scalingFactor (0.18215 for SD); encode/decode work on unscaled z, as diffusers does.
// Every activation is freed as soon as the next stage has used it (`chain`, and `tidy` inside each block): the
// embedded decoder runs thousands of times, and an SD decode at 256x256 makes dozens of 32 MB activations per image.
import { InputError } from "../errors.js";
import {
  add,
  bmm,
  clamp,
  exp,
  F,
  type Generator,
  matmul,
  mul,
  pad,
  pow,
  randn,
  sub,
  sum,
  type Tensor,
  tidy,
} from "../torch/index.js";
import { Conv2d, GroupNorm, Linear } from "./layers.js";
import type { LoadReport } from "../io/state-dict.js";
import { type LoadOptions, Model, type ModelOptions, Store, storeFor, VarBuilder } from "./module.js";

// ---------------------------------------------------------------------------------------------------------------
// configuration
// ---------------------------------------------------------------------------------------------------------------

export interface AutoencoderKLConfig {
  inChannels: number;
  outChannels: number;
  /** Channels of each resolution level, highest resolution first; each level after the first halves H and W. */
  blockOutChannels: readonly number[];
  /** Resnets per encoder level (the decoder has one more per level). */
  layersPerBlock: number;
  latentChannels: number;
  /** GroupNorm groups of every normalisation layer (eps is always 1e-6). */
  normNumGroups: number;
  /** Latents are multiplied by this before diffusion (and divided by it before decoding). */
  scalingFactor: number;
}

export const AUTOENCODER_KL_PRESETS = {
  /** Stable Diffusion's VAE (sd-vae-ft-mse, sd-vae-ft-ema): 83,653,863 values, 8x downsampling, 4 latent channels. */
  sd: {
    inChannels: 3,
    outChannels: 3,
    blockOutChannels: [128, 256, 512, 512],
    layersPerBlock: 2,
    latentChannels: 4,
    normNumGroups: 32,
    scalingFactor: 0.18215,
  },
} as const satisfies Record<string, AutoencoderKLConfig>;
export type AutoencoderKLPreset = keyof typeof AUTOENCODER_KL_PRESETS;

const EPS = 1e-6;

function validate(c: AutoencoderKLConfig): AutoencoderKLConfig {
  const positive = (v: unknown) => Number.isInteger(v) && (v as number) > 0;
  const bad: string[] = [];
  for (const k of ["inChannels", "outChannels", "layersPerBlock", "latentChannels", "normNumGroups"] as const) {
    if (!positive(c[k])) bad.push(`${k} must be a positive integer (got ${c[k]})`);
  }
  if (!Array.isArray(c.blockOutChannels) || c.blockOutChannels.length === 0 || !c.blockOutChannels.every(positive)) {
    bad.push(
      `blockOutChannels must be a non-empty list of positive integers (got ${JSON.stringify(c.blockOutChannels)})`,
    );
  } else if (positive(c.normNumGroups) && c.blockOutChannels.some((ch) => ch % c.normNumGroups !== 0)) {
    bad.push(
      `every entry of blockOutChannels [${c.blockOutChannels}] must be divisible by normNumGroups ${c.normNumGroups}`,
    );
  }
  if (!(typeof c.scalingFactor === "number" && c.scalingFactor > 0)) {
    bad.push(`scalingFactor must be a positive number (got ${c.scalingFactor})`);
  }
  if (bad.length) throw new InputError(`invalid autoencoder config: ${bad.join("; ")}`);
  return { ...c, blockOutChannels: [...c.blockOutChannels] };
}

/**
 * Reads a diffusers AutoencoderKL config.json. Settings that change the architecture away from the SD VAE (other block
 * types, activations, no quant convs, no mid attention) are refused rather than silently ignored.
 */
export function autoencoderKLConfigFromDiffusers(json: Record<string, unknown>): AutoencoderKLConfig {
  const unsupported: string[] = [];
  const expect = (key: string, ok: (v: unknown) => boolean, want: string) => {
    if (key in json && !ok(json[key])) unsupported.push(`${key}=${JSON.stringify(json[key])} (supported: ${want})`);
  };
  const all = (t: string) => (v: unknown) => Array.isArray(v) && v.every((x) => x === t);
  expect("down_block_types", all("DownEncoderBlock2D"), "DownEncoderBlock2D");
  expect("up_block_types", all("UpDecoderBlock2D"), "UpDecoderBlock2D");
  expect("act_fn", (v) => v === "silu" || v === "swish", "silu");
  for (const k of ["use_quant_conv", "use_post_quant_conv", "mid_block_add_attention"])
    expect(k, (v) => v === true, "true");
  expect("shift_factor", (v) => v === null || v === 0, "null");
  if (unsupported.length) throw new InputError(`unsupported AutoencoderKL config: ${unsupported.join(", ")}`);
  const sd = AUTOENCODER_KL_PRESETS.sd;
  return validate({
    inChannels: (json.in_channels as number) ?? sd.inChannels,
    outChannels: (json.out_channels as number) ?? sd.outChannels,
    blockOutChannels: (json.block_out_channels as number[]) ?? sd.blockOutChannels,
    layersPerBlock: (json.layers_per_block as number) ?? sd.layersPerBlock,
    latentChannels: (json.latent_channels as number) ?? sd.latentChannels,
    normNumGroups: (json.norm_num_groups as number) ?? sd.normNumGroups,
    scalingFactor: (json.scaling_factor as number) ?? sd.scalingFactor,
  });
}

// ---------------------------------------------------------------------------------------------------------------
// building blocks (each forward frees its own temporaries: tidy keeps only what it returns)
// ---------------------------------------------------------------------------------------------------------------

interface Stage {
  forward(x: Tensor): Tensor;
}

/** Runs the stages in turn, freeing each stage's output once the next one has consumed it (x stays the caller's). */
function chain(x: Tensor, stages: readonly Stage[]): Tensor {
  let h = x;
  for (const stage of stages) {
    const next = stage.forward(h);
    if (h !== x) h.dispose();
    h = next;
  }
  return h;
}

/** ResnetBlock2D without a time embedding: shortcut(x) + conv2(silu(norm2(conv1(silu(norm1(x)))))). */
class ResnetBlock2D {
  readonly norm1: GroupNorm;
  readonly conv1: Conv2d;
  readonly norm2: GroupNorm;
  readonly conv2: Conv2d;
  /** A 1x1 convolution when the channel count changes, else the identity. */
  readonly convShortcut: Conv2d | null;
  constructor(vb: VarBuilder, inCh: number, outCh: number, groups: number) {
    this.norm1 = new GroupNorm(vb.pp("norm1"), groups, inCh, { eps: EPS });
    this.conv1 = new Conv2d(vb.pp("conv1"), inCh, outCh, 3, { padding: 1 });
    this.norm2 = new GroupNorm(vb.pp("norm2"), groups, outCh, { eps: EPS });
    this.conv2 = new Conv2d(vb.pp("conv2"), outCh, outCh, 3, { padding: 1 });
    this.convShortcut = inCh !== outCh ? new Conv2d(vb.pp("conv_shortcut"), inCh, outCh, 1) : null;
  }
  forward(x: Tensor): Tensor {
    return tidy(() => {
      const h = this.conv1.forward(F.silu(this.norm1.forward(x)));
      const out = this.conv2.forward(F.silu(this.norm2.forward(h)));
      // In place: conv2's backward does not need its output, so this is safe under autograd as well.
      return out.add_(this.convShortcut ? this.convShortcut.forward(x) : x);
    });
  }
}

/**
 * The mid-block attention: one head over the H*W positions of GN(x), with residual:
 *   q = Wq GN(x) + bq (likewise k, v),  out = x + Wo (v softmax(q^T k / sqrt(C))^T) + bo.
 * It stays in the channels-first layout [B, C, HW], so no transpose is ever copied: the projections are W @ h and
 * bmm reads its transposed operands through strides.
 */
class MidAttention {
  readonly groupNorm: GroupNorm;
  readonly toQ: Linear;
  readonly toK: Linear;
  readonly toV: Linear;
  readonly toOut: Linear;
  constructor(vb: VarBuilder, channels: number, groups: number) {
    this.groupNorm = new GroupNorm(vb.pp("group_norm"), groups, channels, { eps: EPS });
    this.toQ = new Linear(vb.pp("to_q"), channels, channels);
    this.toK = new Linear(vb.pp("to_k"), channels, channels);
    this.toV = new Linear(vb.pp("to_v"), channels, channels);
    this.toOut = new Linear(vb.pp("to_out").pp(0), channels, channels);
  }
  forward(x: Tensor): Tensor {
    return tidy(() => {
      const [b, c, h, w] = x.shape;
      const project = (l: Linear, t: Tensor) => matmul(l.weight, t).add_(l.bias!.view(c, 1));
      const hs = this.groupNorm.forward(x).view(b, c, h * w);
      const q = project(this.toQ, hs).mul_(1 / Math.sqrt(c));
      const probs = F.softmax(bmm(q.transpose(1, 2), project(this.toK, hs)), -1); // [B, query, key]
      const attended = bmm(project(this.toV, hs), probs.transpose(1, 2)); // [B, C, query]
      return project(this.toOut, attended)
        .add_(x.reshape(b, c, h * w))
        .view(b, c, h, w);
    });
  }
}

/** UNetMidBlock2D as the VAE uses it: resnet, attention, resnet at the lowest resolution. */
class MidBlock {
  readonly resnets: ResnetBlock2D[];
  readonly attention: MidAttention;
  constructor(vb: VarBuilder, channels: number, groups: number) {
    this.resnets = [0, 1].map((j) => new ResnetBlock2D(vb.pp("resnets").pp(j), channels, channels, groups));
    this.attention = new MidAttention(vb.pp("attentions").pp(0), channels, groups);
  }
  forward(x: Tensor): Tensor {
    return chain(x, [this.resnets[0], this.attention, this.resnets[1]]);
  }
}

/** Downsample2D with padding 0: one zero column on the right and one zero row below, then an unpadded stride-2 conv. */
class Downsample2D {
  readonly conv: Conv2d;
  constructor(vb: VarBuilder, channels: number) {
    this.conv = new Conv2d(vb.pp("conv"), channels, channels, 3, { stride: 2, padding: 0 });
  }
  forward(x: Tensor): Tensor {
    return tidy(() => this.conv.forward(pad(x, [0, 1, 0, 1])));
  }
}

/** Upsample2D: nearest-neighbour x2, then a 3x3 conv. */
class Upsample2D {
  readonly conv: Conv2d;
  constructor(vb: VarBuilder, channels: number) {
    this.conv = new Conv2d(vb.pp("conv"), channels, channels, 3, { padding: 1 });
  }
  forward(x: Tensor): Tensor {
    return tidy(() => this.conv.forward(F.interpolate(x, { scaleFactor: 2, mode: "nearest" })));
  }
}

/**
 * One resolution level: DownEncoderBlock2D (resnets, then downsamplers.0) or UpDecoderBlock2D (resnets, then
 * upsamplers.0); the last level on each side keeps its resolution.
 */
class Level {
  readonly resnets: ResnetBlock2D[];
  readonly resampler: Downsample2D | Upsample2D | null;
  constructor(
    vb: VarBuilder,
    inCh: number,
    outCh: number,
    layers: number,
    groups: number,
    resample: "down" | "up" | null,
  ) {
    this.resnets = Array.from({ length: layers }, (_, j) => {
      return new ResnetBlock2D(vb.pp("resnets").pp(j), j === 0 ? inCh : outCh, outCh, groups);
    });
    if (resample === "down") this.resampler = new Downsample2D(vb.pp("downsamplers").pp(0), outCh);
    else if (resample === "up") this.resampler = new Upsample2D(vb.pp("upsamplers").pp(0), outCh);
    else this.resampler = null;
  }
  forward(x: Tensor): Tensor {
    return chain(x, this.resampler ? [...this.resnets, this.resampler] : this.resnets);
  }
}

/** GroupNorm, SiLU, 3x3 convolution: the output head of both encoder and decoder. */
class OutputHead {
  readonly convNormOut: GroupNorm;
  readonly convOut: Conv2d;
  constructor(vb: VarBuilder, inCh: number, outCh: number, groups: number) {
    this.convNormOut = new GroupNorm(vb.pp("conv_norm_out"), groups, inCh, { eps: EPS });
    this.convOut = new Conv2d(vb.pp("conv_out"), inCh, outCh, 3, { padding: 1 });
  }
  forward(x: Tensor): Tensor {
    return tidy(() => this.convOut.forward(F.silu(this.convNormOut.forward(x))));
  }
}

// ---------------------------------------------------------------------------------------------------------------
// encoder and decoder
// ---------------------------------------------------------------------------------------------------------------

/** x [B, in, H, W] -> [B, 2*latent, H/f, W/f] (mean and log-variance), f = 2^(levels-1). */
class Encoder {
  readonly convIn: Conv2d;
  readonly downBlocks: Level[];
  readonly midBlock: MidBlock;
  readonly head: OutputHead;
  constructor(vb: VarBuilder, c: AutoencoderKLConfig) {
    const ch = c.blockOutChannels;
    const last = ch[ch.length - 1];
    this.convIn = new Conv2d(vb.pp("conv_in"), c.inChannels, ch[0], 3, { padding: 1 });
    this.downBlocks = ch.map((out, i) => {
      const resample = i < ch.length - 1 ? "down" : null;
      return new Level(
        vb.pp("down_blocks").pp(i),
        ch[Math.max(i - 1, 0)],
        out,
        c.layersPerBlock,
        c.normNumGroups,
        resample,
      );
    });
    this.midBlock = new MidBlock(vb.pp("mid_block"), last, c.normNumGroups);
    this.head = new OutputHead(vb, last, 2 * c.latentChannels, c.normNumGroups);
  }
  forward(x: Tensor): Tensor {
    return chain(x, [this.convIn, ...this.downBlocks, this.midBlock, this.head]);
  }
}

/** z [B, latent, h, w] -> [B, out, h*f, w*f]. up_blocks[0] works at the lowest resolution (the channel list reversed). */
class Decoder {
  readonly convIn: Conv2d;
  readonly midBlock: MidBlock;
  readonly upBlocks: Level[];
  readonly head: OutputHead;
  constructor(vb: VarBuilder, c: AutoencoderKLConfig) {
    const ch = [...c.blockOutChannels].reverse();
    this.convIn = new Conv2d(vb.pp("conv_in"), c.latentChannels, ch[0], 3, { padding: 1 });
    this.midBlock = new MidBlock(vb.pp("mid_block"), ch[0], c.normNumGroups);
    this.upBlocks = ch.map((out, i) => {
      const resample = i < ch.length - 1 ? "up" : null;
      return new Level(
        vb.pp("up_blocks").pp(i),
        ch[Math.max(i - 1, 0)],
        out,
        c.layersPerBlock + 1,
        c.normNumGroups,
        resample,
      );
    });
    this.head = new OutputHead(vb, ch[ch.length - 1], c.outChannels, c.normNumGroups);
  }
  forward(z: Tensor): Tensor {
    return chain(z, [this.convIn, this.midBlock, ...this.upBlocks, this.head]);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// posterior q(z|x)
// ---------------------------------------------------------------------------------------------------------------

/** diffusers' DiagonalGaussianDistribution (a plain object, so tidy() keeps its tensors when it is returned). */
export interface DiagonalGaussian {
  readonly mean: Tensor;
  /** Clamped to [-30, 20] as diffusers does, so exp() never overflows. */
  readonly logvar: Tensor;
  /** exp(0.5 * logvar) */
  readonly std: Tensor;
  /** mean + std * eps, eps ~ N(0, I) drawn from `generator` (the default generator when absent). */
  sample(generator?: Generator): Tensor;
  /** KL(q || N(0, I)) per sample: 0.5 * sum(mean^2 + var - 1 - logvar) over C, H, W. */
  kl(): Tensor;
}

function diagonalGaussian(moments: Tensor): DiagonalGaussian {
  const [mean, logvar, std] = tidy(() => {
    const [m, lv] = moments.chunk(2, 1);
    const clamped = clamp(lv, -30, 20);
    return [m, clamped, exp(mul(clamped, 0.5))];
  });
  moments.dispose(); // mean is a view and keeps the storage alive
  return {
    mean,
    logvar,
    std,
    sample: (generator) =>
      tidy(() => add(mean, mul(std, randn(mean.shape, { generator, dtype: mean.dtype, device: mean.device })))),
    kl: () => tidy(() => mul(sum(sub(sub(add(pow(mean, 2), exp(logvar)), 1), logvar), [1, 2, 3]), 0.5)),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// the model
// ---------------------------------------------------------------------------------------------------------------

export class AutoencoderKL extends Model {
  readonly config: AutoencoderKLConfig;
  readonly encoder: Encoder;
  readonly decoder: Decoder;
  readonly quantConv: Conv2d;
  readonly postQuantConv: Conv2d;

  constructor(config: AutoencoderKLConfig, store: Store, vb: VarBuilder = new VarBuilder(store)) {
    super(store);
    this.config = validate(config);
    const latent = this.config.latentChannels;
    this.encoder = new Encoder(vb.pp("encoder"), this.config);
    this.decoder = new Decoder(vb.pp("decoder"), this.config);
    this.quantConv = new Conv2d(vb.pp("quant_conv"), 2 * latent, 2 * latent, 1);
    this.postQuantConv = new Conv2d(vb.pp("post_quant_conv"), latent, latent, 1);
  }

  get scalingFactor(): number {
    return this.config.scalingFactor;
  }

  /** Images [B, in, H, W] (SD: in [-1, 1]) -> the posterior over unscaled latents [B, latent, H/f, W/f]. */
  encode(x: Tensor): DiagonalGaussian {
    return diagonalGaussian(chain(x, [this.encoder, this.quantConv]));
  }

  /** Unscaled latents [B, latent, h, w] -> images [B, out, h*f, w*f]. */
  decode(z: Tensor): Tensor {
    return chain(z, [this.postQuantConv, this.decoder]);
  }

  /** Accepts diffusers' old mid-attention names and conv-shaped attention weights (see adaptAutoencoderKLStateDict). */
  override loadStateDict(sd: Map<string, Tensor>, opts: LoadOptions = {}): LoadReport {
    const adapted = adaptAutoencoderKLStateDict(sd);
    const given = new Set(sd.values());
    try {
      return super.loadStateDict(adapted, opts);
    } finally {
      for (const t of adapted.values()) if (!given.has(t)) t.dispose();
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// checkpoints
// ---------------------------------------------------------------------------------------------------------------

const OLD_ATTENTION_NAMES: Record<string, string> = {
  query: "to_q",
  key: "to_k",
  value: "to_v",
  proj_attn: "to_out.0",
};
const OLD_ATTENTION_KEY = /^(.*\bmid_block\.attentions\.\d+\.)(query|key|value|proj_attn)\.(weight|bias)$/;
const ATTENTION_WEIGHT = /\bmid_block\.attentions\.\d+\.(to_q|to_k|to_v|to_out\.0)\.weight$/;

/**
 * A checkpoint in this model's naming: older diffusers releases called the mid-block attention weights query, key,
 * value and proj_attn (now to_q, to_k, to_v, to_out.0; group_norm kept its name), and checkpoints converted from the
 * original LDM code can keep them as 1x1-conv weights [C, C, 1, 1] (now Linear [C, C]). Any key prefix is kept, so
 * LoadOptions.stripPrefix still applies. An old name is left alone when its new name is present too (it is then
 * reported as unexpected). Reshaped weights are views: nothing is copied.
 */
export function adaptAutoencoderKLStateDict(sd: Map<string, Tensor>): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  for (const [key, t] of sd) {
    const m = OLD_ATTENTION_KEY.exec(key);
    const renamed = m ? `${m[1]}${OLD_ATTENTION_NAMES[m[2]]}.${m[3]}` : key;
    const name = renamed !== key && sd.has(renamed) ? key : renamed;
    const s = t.shape;
    const convShaped = ATTENTION_WEIGHT.test(name) && s.length === 4 && s[2] === 1 && s[3] === 1;
    out.set(name, convShaped ? t.reshape(s[0], s[1]) : t);
  }
  return out;
}

/** An AutoencoderKL from a preset name ("sd") or a full config. */
export function createAutoencoderKL(
  config: AutoencoderKLPreset | AutoencoderKLConfig,
  opts: ModelOptions = {},
): AutoencoderKL {
  if (typeof config === "string" && !Object.hasOwn(AUTOENCODER_KL_PRESETS, config)) {
    throw new InputError(
      `unknown autoencoder preset '${config}' (known: ${Object.keys(AUTOENCODER_KL_PRESETS).join(", ")})`,
    );
  }
  const c = typeof config === "string" ? AUTOENCODER_KL_PRESETS[config] : config;
  const store = storeFor(opts);
  return new AutoencoderKL(c, store, new VarBuilder(store));
}
