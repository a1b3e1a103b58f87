// Parameters by checkpoint path. Model code asks a VarBuilder for each weight by the name PyTorch's state_dict uses
// (`vb.pp("blocks").pp(0).param("attn.qkv.weight", ...)`), so the key is visible where the weight is used; the
// Store behind it gives state dicts, loading with key checks, train/eval mode and parameter lists.
import { InputError } from "../errors.js";
import { checkStateDict, type LoadReport } from "../io/state-dict.js";
import { type DType, type Generator, keep, noGrad, type Tensor, toMemoryFormat_, zeros } from "../torch/index.js";

export class Store {
  readonly params = new Map<string, Tensor>();
  readonly buffers = new Map<string, Tensor>();
  training = true;
  /** The 4-D weights are in channels-last memory order (Model.toChannelsLast). */
  channelsLast = false;
  constructor(
    readonly device = "cpu",
    readonly dtype: DType = "float32",
    /** Source of the initial weights (the default generator when absent). */
    readonly generator?: Generator,
    /** false: leave every tensor at zero (fast creation before loading a checkpoint). */
    readonly initialise = true,
  ) {}

  register(kind: "param" | "buffer", path: string, t: Tensor): Tensor {
    if (this.params.has(path) || this.buffers.has(path)) throw new Error(`duplicate parameter path '${path}'`);
    keep(t);
    if (kind === "param") this.params.set(path, t.requiresGrad_(true));
    else this.buffers.set(path, t);
    return t;
  }
}

/** Where and how a factory (createDiT, createResNet, ...) builds a model: the second argument of every one. */
export interface ModelOptions {
  device?: string;
  dtype?: DType;
  /** Source of the random initial weights (the default generator when absent). */
  generator?: Generator;
  /** "random" (default): the architecture's own initialisation. "zeros": every weight at zero, for loading a checkpoint next. */
  init?: "random" | "zeros";
}

/** The parameter store a factory builds its model in. */
export const storeFor = (options: ModelOptions): Store =>
  new Store(options.device, options.dtype, options.generator, options.init !== "zeros");

/** Fills a new tensor in place (see init.ts). */
export type Init = (t: Tensor, generator?: Generator) => void;

/** Builds parameters under a path prefix. */
export class VarBuilder {
  constructor(
    readonly store: Store,
    readonly prefix = "",
  ) {}

  /** A builder one level down: pp("blocks").pp(3) addresses "blocks.3.". */
  pp(name: string | number): VarBuilder {
    return new VarBuilder(this.store, this.path(String(name)));
  }

  path(name: string): string {
    return this.prefix ? `${this.prefix}.${name}` : name;
  }

  /** A trainable parameter; `init` fills it in place (it starts at zero). */
  param(name: string, shape: readonly number[], init?: Init): Tensor {
    return this.store.register("param", this.path(name), this.make(shape, init));
  }

  /** A non-trainable tensor saved in the state dict (running statistics, counters). */
  buffer(name: string, shape: readonly number[], init?: Init, dtype?: DType): Tensor {
    return this.store.register("buffer", this.path(name), this.make(shape, init, dtype));
  }

  get training(): boolean {
    return this.store.training;
  }

  private make(shape: readonly number[], init?: Init, dtype?: DType): Tensor {
    const t = zeros(shape, { dtype: dtype ?? this.store.dtype, device: this.store.device });
    if (init && this.store.initialise) noGrad(() => init(t, this.store.generator));
    return t;
  }
}

/** Refuses a configuration whose `keys` are not positive integers: one line naming the model, the key and the value. */
export function checkPositiveIntegers<C extends object>(
  model: string,
  config: C,
  keys: readonly (keyof C & string)[],
): void {
  for (const k of keys) {
    const v = config[k];
    if (!Number.isInteger(v) || (v as number) < 1)
      throw new InputError(`${model} ${k} must be a positive integer; got ${v}`);
  }
}

export interface LoadOptions {
  /** Report missing and unexpected keys as errors (default true). Wrong shapes are always errors. */
  strict?: boolean;
  /** Strip this prefix from checkpoint keys first (e.g. "module." from DataParallel checkpoints). */
  stripPrefix?: string;
}

/** Base of every model: parameters by path, train/eval, state dicts. */
export abstract class Model {
  readonly store: Store;
  constructor(store: Store) {
    this.store = store;
  }

  get training(): boolean {
    return this.store.training;
  }
  train(on = true): this {
    this.store.training = on;
    return this;
  }
  eval(): this {
    return this.train(false);
  }
  /** A fixed network inside someone else's objective (teacher, perceptual distance): eval mode, no parameter grads. */
  freeze(): this {
    for (const p of this.parameters()) p.requiresGrad_(false);
    return this.eval();
  }

  /** Whether the 4-D weights are in channels-last memory order (toChannelsLast); inputs should follow. */
  get channelsLast(): boolean {
    return this.store.channelsLast;
  }
  /**
   * Puts every 4-D parameter and buffer in channels-last memory order, in place: the same tensors with the same
   * values and shapes (state dicts and saved files are unchanged), other strides. oneDNN's bf16 convolutions of a
   * batch-norm network run faster on it (docs/precision.md); give the model channels-last input too.
   */
  toChannelsLast(): this {
    noGrad(() => {
      for (const t of this.stateDict().values()) if (t.ndim === 4) toMemoryFormat_(t, "channels_last");
    });
    this.store.channelsLast = true;
    return this;
  }

  parameters(): Tensor[] {
    return [...this.store.params.values()];
  }
  namedParameters(): Map<string, Tensor> {
    return new Map(this.store.params);
  }
  /** Parameters and buffers by PyTorch state_dict key (the live tensors, not copies). */
  stateDict(): Map<string, Tensor> {
    return new Map([...this.store.params, ...this.store.buffers]);
  }
  numParameters(): number {
    return this.parameters().reduce((n, p) => n + p.numel, 0);
  }

  /**
   * Copies checkpoint values into the model. Every missing, unexpected and wrongly shaped key is reported by name;
   * nothing is copied unless the whole checkpoint fits. Dtypes are converted to the model's.
   */
  loadStateDict(sd: Map<string, Tensor>, opts: LoadOptions = {}): LoadReport {
    const strict = opts.strict ?? true;
    const src = new Map<string, Tensor>();
    for (const [k, v] of sd) {
      const key = opts.stripPrefix && k.startsWith(opts.stripPrefix) ? k.slice(opts.stripPrefix.length) : k;
      src.set(key, v);
    }
    const own = this.stateDict();
    const report = checkStateDict(own, src, strict, this.constructor.name);
    noGrad(() => {
      for (const [k, t] of own) {
        const s = src.get(k);
        if (s) t.copy_(s);
      }
    });
    return report;
  }
}
