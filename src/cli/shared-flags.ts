// Flags and bounds several commands share, with one definition each so their checks cannot drift apart.
import { checkDevice, PRECISIONS } from "../torch/index.js";
import { type FlagSpec, UsageError } from "./args.js";

/** Checked when the flags are parsed, before any work: a CUDA device this libtorch cannot use is one line naming
 * what was asked and what is available (exit code 2). */
export const deviceFlag = {
  type: "string",
  help: "cpu or cuda:N",
  default: "cpu",
  check: (value: string, flag: string) => checkDevice(value, flag),
} as const satisfies FlagSpec;

export const threadsFlag = {
  type: "int",
  help: "CPU threads for libtorch",
  defaultText: "all cores, or CAO2_THREADS",
  min: 1,
  max: 1024,
} as const satisfies FlagSpec;

/** The networks' arithmetic: fp32, or bf16/fp16 mixed precision under autocast (docs/precision.md). */
export const precisionFlag = (what: string) =>
  ({
    type: "string",
    choices: PRECISIONS,
    help: `${what}: fp32, or mixed precision (bf16: CPU and CUDA; fp16: CUDA), matmuls and convolutions in it and the rest in fp32`,
    default: "fp32",
  }) as const satisfies FlagSpec;

/** Seeds: non-negative integers (the parser already refuses any that a JS number does not hold exactly). */
export const seedFlag = (help: string) => ({ type: "int", help, default: 0, min: 0 }) as const satisfies FlagSpec;

// Upper bounds that stop a typo from asking for days of work or more memory than any machine has.
/** Images per class: no real class of the supported data sets has more (ImageNet-1k ~1,300, Fashion-MNIST 6,000). */
export const MAX_PER_CLASS = 10_000;
/** Images per model call or training batch. */
export const MAX_BATCH = 65_536;
/** Sampling steps: the respaced schedule keeps at most the 1,000 training timesteps. */
export const MAX_STEPS = 1000;
/** Epochs of a training run. */
export const MAX_EPOCHS = 100_000;

/** `--cfg-interval lo,hi`: classifier-free guidance only at the original timesteps lo..hi of the 1,000-step
 * schedule (SampleOptions.guidanceInterval); the default guides every step, as DiT's sampler. */
export const cfgIntervalFlag = {
  type: "ints",
  help: "Guide only the sampling steps whose original timestep (0..999) is in lo,hi; the others use the conditional output alone",
  defaultText: "every step",
  min: 0,
  max: 999,
} as const satisfies FlagSpec;

export function guidanceInterval(v: readonly number[] | undefined): [number, number] | undefined {
  if (v === undefined) return undefined;
  if (v.length !== 2 || v[0] > v[1])
    throw new UsageError(`--cfg-interval expects lo,hi with lo <= hi (timesteps 0..999), got '${v.join(",")}'`);
  return [v[0], v[1]];
}
