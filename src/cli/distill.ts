// `cao2 distill`: Algorithm 1 over a preset's classes. With no flags it distils the embedded Fashion-MNIST default
// at IPC 10 with the shipped models.
import { existsSync, mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { InputError } from "../errors.js";
import type { ConditionChoice } from "../distill/condition.js";
import { DEFAULT_STALE_LOCK_S, type DistillConfig, type DistillEvent, runDistill } from "../distill/run.js";
import { resolveShard, type Shard, shardName } from "../distill/shards.js";
import { type RunStatus, runStatus } from "../distill/status.js";
import { describeHolder } from "../util/lock-file.js";
import { ORDERS, type StageOrder } from "../distill/pipeline.js";
import { NORMS, type NormKind } from "../distill/refine.js";
import {
  type ClassSpec,
  type Compat,
  type Condition,
  DEFAULTS,
  type Defaults,
  defaultTMax,
  PRESETS,
  type PresetName,
  presetClasses,
  type RecipeDefaults,
  recipeDefaults,
} from "../distill/presets.js";
import type { ReferenceSpec } from "../distill/reference.js";
import { AUTO_IPC_THRESHOLD, resolveStrategy, STRATEGIES, type Strategy } from "../distill/select.js";
import { getNumThreads, installInterruptHandler, type Precision, setNumThreads } from "../torch/index.js";
import { assetPath } from "../util/assets.js";
import { formatDuration, Progress } from "../util/progress.js";
import { type FlagSpec, type FlagSpecs, type Parsed, parseCommand, UsageError } from "./args.js";
import { checkOutputFolder } from "./outputs.js";
import {
  cfgIntervalFlag,
  deviceFlag,
  guidanceInterval,
  MAX_BATCH,
  MAX_PER_CLASS,
  MAX_STEPS,
  precisionFlag,
  seedFlag,
  threadsFlag,
} from "./shared-flags.js";
import { applyReadLimits, READ_LIMIT_FLAGS } from "./limits.js";
import { SUMMARIES } from "./commands.js";

const P = "from preset";

/** --unwrap of the commands that load a DiT (distill, sample): which entry of a wrapped training checkpoint. */
export const DIT_UNWRAP_FLAG = {
  type: "string",
  help: "Entry of a wrapped DiT checkpoint (torch.save({model, ema, opt, args})) to load: auto (ema when there is one), ema, model, ...",
  default: "auto",
} as const satisfies FlagSpec;

const FLAGS = {
  preset: { type: "string", help: "Data set recipe", choices: PRESETS, default: "fashion-mnist" },
  compat: {
    type: "string",
    help: "paper defaults, or the released code's behaviour",
    choices: ["paper", "authors"],
    default: "paper",
  },
  defaults: {
    type: "string",
    help: "Settings not given as flags: validated on the preset's validation split (Fashion-MNIST, docs/results/validation.md; other presets have the paper's), or the paper's",
    choices: DEFAULTS,
    default: "validated",
  },
  dit: {
    type: "string",
    help: "Diffusion model checkpoint (cao2 file, official DiT .pt, Minimax .pt, diffusers safetensors)",
    defaultText: "shipped model (fashion-mnist)",
  },
  unwrap: DIT_UNWRAP_FLAG,
  vae: {
    type: "string",
    help: "Autoencoder checkpoint (cao2 file or diffusers AutoencoderKL)",
    defaultText: "shipped model (fashion-mnist)",
  },
  selector: {
    type: "string",
    help: "Selector classifier checkpoint: a cao2 file, or a torchvision ResNet / MobileNetV2 / EfficientNet-B0, ResNet-AP or ConvNet state dict (architecture read from its keys)",
    defaultText: "shipped model (fashion-mnist)",
  },
  classes: { type: "list", help: "Classes to distil: labels, ranges (0-4), ids (wnids) or names", defaultText: "all" },
  ipc: { type: "int", help: "Images per class", default: 10, min: 1, max: MAX_PER_CLASS },
  "pool-factor": { type: "int", help: "Pool size m: m x IPC candidates per class", defaultText: P, min: 1, max: 100 },
  select: { type: "string", help: "Selection strategy (docs/distill.md)", choices: STRATEGIES, defaultText: P },
  reference: {
    type: "string",
    help: "For --select mmd: real training images the kept samples are matched to (fashion-mnist, fashion-mnist-fit or an ImageFolder of the preset's classes); none is copied into the set",
    defaultText: "fashion-mnist-fit for the validated Fashion-MNIST default",
  },
  "reference-per-class": {
    type: "int",
    help: "For --select mmd: reference images drawn per class (seeded)",
    default: 1000,
    min: 1,
    max: MAX_PER_CLASS,
  },
  fill: {
    type: "string",
    help: "Fill-up when too few are correct: random (paper) or in the strategy's order (released code)",
    choices: ["random", "ordered"],
    defaultText: P,
  },
  "refine-iters": {
    type: "int",
    help: "Adam iterations per image (0 = selection only)",
    defaultText: P,
    min: 0,
    max: 100_000,
  },
  lr: { type: "number", help: "Adam learning rate of refinement", defaultText: P, min: 0, exclusiveMin: true },
  lambda: { type: "number", help: "Weight of the p-norm term", defaultText: P, min: 0 },
  norm: { type: "string", help: "The p-norm of the regulariser", choices: NORMS, defaultText: P },
  "t-max": {
    type: "int",
    help: "T^: refinement draws t from 1..T^ (indices of the respaced schedule; below --steps)",
    defaultText: "floor(steps/4) - 1, at least 1 (steps/8 for imagenet-100 with --compat authors)",
    min: 1,
    max: MAX_STEPS - 1,
  },
  "max-norm": { type: "number", help: "Optional bound eta on ||x' - x||_inf", min: 0, exclusiveMin: true },
  condition: {
    type: "string",
    help: "Condition c^ of refinement: true label, null label, or auto (by the selector's accuracy on held-out real images)",
    choices: ["true", "null", "auto"],
    defaultText: P,
  },
  "auto-threshold": {
    type: "number",
    help: "For --condition auto: the true label when the selector's top-1 reaches this, else the null label",
    defaultText: "0.9",
    min: 0,
    max: 1,
  },
  order: {
    type: "string",
    help: "Stage order: select then refine (Algorithm 1), or refine the whole pool then select (the appendix's ablation)",
    choices: ORDERS,
    default: "select-refine",
  },
  cfg: { type: "number", help: "Classifier-free guidance scale of the pool (1 = no guidance)", defaultText: P, min: 1 },
  "guide-channels": {
    type: "string",
    help: "Channels guided by CFG: 3 (the DiT reference) or all",
    choices: ["3", "all"],
    default: "3",
  },
  "cfg-interval": { ...cfgIntervalFlag, defaultText: P },
  steps: { type: "int", help: "Sampling steps (respaced DDPM)", defaultText: P, min: 2, max: MAX_STEPS },
  seed: seedFlag("Run seed (every draw derives from it, per class and candidate)"),
  out: {
    type: "string",
    help: "Output ImageFolder (class folders, classes.txt and manifest.json only)",
    defaultText: "distilled/<preset>-ipc<N>",
  },
  state: {
    type: "string",
    help: "Folder for the run's state (resume records, --save-pre-refine, --save-latents), outside --out",
    defaultText: "<out>.cao2 beside --out",
  },
  resume: {
    type: "boolean",
    help: "Continue the run in --out (finished classes are kept; other settings are refused), or start it if there is none",
    default: false,
  },
  shard: {
    type: "string",
    help: "Distil shard K of N of the classes (K from 0) into a shared --out; implies --resume (docs/scale-out.md)",
    defaultText: "from SLURM_ARRAY_TASK_ID/COUNT in a Slurm array, else the whole run",
  },
  shards: {
    type: "int",
    help: "Split into N shards, this process's index from JOB_COMPLETION_INDEX (Kubernetes Indexed Job) or SLURM_ARRAY_TASK_ID",
    min: 1,
    max: 100_000,
  },
  "stale-lock-after": {
    type: "int",
    help: "Seconds without a heartbeat after which another process's class lock is taken over",
    default: DEFAULT_STALE_LOCK_S,
    min: 1,
    max: 7 * 24 * 3600,
  },
  status: {
    type: "boolean",
    help: "Print which classes of the run in --out are done, running (and by whom) or missing, and exit",
    default: false,
  },
  device: deviceFlag,
  threads: threadsFlag,
  precision: precisionFlag("The DiT's arithmetic in sampling and refinement"),
  "batch-size": {
    type: "int",
    help: "Most images per model call (memory bound; the pool's random draws follow the batches, so a run is reproduced with the same value)",
    default: 64,
    min: 1,
    max: MAX_BATCH,
  },
  "save-pre-refine": {
    type: "boolean",
    help: "Also write the selected images before refinement (<state>/pre-refine)",
    default: false,
  },
  "save-latents": {
    type: "boolean",
    help: "Also write pool, selected and refined latents (<state>/latents)",
    default: false,
  },
  "latent-size": {
    type: "int",
    help: "Latent size for DiT checkpoints that do not record it (32 for 256x256)",
    min: 1,
    max: 1024,
  },
  "scaling-factor": {
    type: "number",
    help: "Latent scaling factor for autoencoders without cao2 metadata",
    default: 0.18215,
    min: 0,
    exclusiveMin: true,
  },
  ...READ_LIMIT_FLAGS,
} satisfies FlagSpecs;

/** Resolves --classes against a preset's class list (labels, label ranges, ids or names). */
export function pickClasses<C extends ClassSpec>(all: C[], wanted: string[] | undefined): C[] {
  if (!wanted || wanted.length === 0) return all;
  const out: C[] = [];
  for (const w of wanted) {
    const range = /^(\d+)-(\d+)$/.exec(w);
    const picks = range
      ? all.filter((c) => c.label >= Number(range[1]) && c.label <= Number(range[2]))
      : /^\d+$/.test(w)
        ? all.filter((c) => c.label === Number(w))
        : all.filter((c) => c.id === w || c.name.toLowerCase() === w.toLowerCase());
    if (picks.length === 0)
      throw new InputError(
        `--classes: no class '${w}' in this preset (labels 0..${all.length - 1}, ids such as ${all[0].id})`,
      );
    for (const p of picks) if (!out.includes(p)) out.push(p);
  }
  return out.sort((a, b) => a.label - b.label);
}

/** One line on how condition "auto" chose c^, for the log. */
function describeAuto(c: ConditionChoice): string {
  const label = `${c.chosen} label`;
  if (c.accuracy === undefined) return `condition auto: ${label} (note: ${c.note})`;
  const measured = `selector top-1 ${(c.accuracy * 100).toFixed(2)}% on ${c.images === undefined ? c.source : `${c.source} (${c.images} held-out images)`}`;
  return `condition auto: ${measured} ${c.chosen === "true" ? ">=" : "<"} ${c.threshold}: ${label}${c.note ? ` (note: ${c.note})` : ""}`;
}

/** Flags that --status reads; it refuses others (they would suggest it does something). */
const STATUS_FLAGS = new Set(["status", "out", "state", "stale-lock-after", "preset", "ipc"]);

/** `--status`: where the run in --out stands (it refuses flags that would suggest it does more). */
function showStatus(a: {
  given: Set<string>;
  out?: string;
  preset: string;
  ipc: number;
  state?: string;
  staleLockAfter: number;
}): number {
  const other = [...a.given].filter((f) => !STATUS_FLAGS.has(f));
  if (other.length)
    throw new UsageError(`--status only reads the run in --out (and --state); it takes no --${other[0]}`);
  printStatus(runStatus(a.out ?? `distilled/${a.preset}-ipc${a.ipc}`, a.state, a.staleLockAfter));
  return 0;
}

function printStatus(s: RunStatus): void {
  const count = (st: string) => s.classes.filter((c) => c.state === st).length;
  const width = Math.max(...s.classes.map((c) => `${c.class.label} ${c.class.name}`.length));
  const lines = s.classes.map((c) => {
    const head = `  ${`${c.class.label} ${c.class.name}`.padEnd(width)}  ${c.state.padEnd(7)}`;
    if (c.state === "done") {
      const w = c.record.worker;
      return w
        ? `${head}  by ${w.shard ? `shard ${w.shard}` : "a whole run"}, host ${w.host} pid ${w.pid}${w.task ? ` (${w.task})` : ""}`
        : head;
    }
    if (c.state === "running") {
      return `${head}  ${describeHolder(c.lock.holder)}; heartbeat ${Math.round(c.lock.ageS)} s ago${c.stale ? ` (stale: ${c.stale}; the next process for this class takes it over)` : ""}`;
    }
    return head;
  });
  process.stdout.write(
    `${s.layout.out} (state ${resolve(s.layout.state)}): ${s.classes.length} classes, ${count("done")} done, ${count("running")} running, ${count("missing")} missing; ` +
      `manifest ${s.manifest ? "written" : "not written yet"}\n${lines.join("\n")}\n`,
  );
}

/** A flag's checkpoint, or the shipped Fashion-MNIST model for the embedded default. */
function modelFile(
  given: string | undefined,
  flag: "dit" | "vae" | "selector",
  preset: PresetName,
  file: string,
): string {
  if (given) return given;
  if (preset !== "fashion-mnist")
    throw new UsageError(`the ${preset} preset needs --${flag} (a checkpoint you bring; see the README)`);
  const shipped = assetPath(`fashion-mnist/${file}`);
  if (!existsSync(shipped)) {
    throw new InputError(
      `the shipped Fashion-MNIST model ${shipped} is missing; train it with \`cao2 train\` (see docs/models.md) or pass --${flag}`,
    );
  }
  return shipped;
}

/** The mmd strategy's real images (from --reference or the preset's band); none for the other strategies. */
function referenceOf(
  select: Strategy,
  a: { ipc: number; reference?: string; referencePerClass: number; given: Set<string> },
  d: RecipeDefaults,
): ReferenceSpec | undefined {
  const strategy = resolveStrategy(select, a.ipc, AUTO_IPC_THRESHOLD);
  const flag = (["reference", "reference-per-class"] as const).find((f) => a.given.has(f));
  if (strategy !== "mmd") {
    if (flag) throw new UsageError(`--${flag} is for --select mmd (this run selects by ${strategy})`);
    return undefined;
  }
  // Without one, runDistill refuses the run (the library's check, before anything is written).
  const data = a.reference ?? d.referenceData;
  return data === undefined ? undefined : { data, perClass: a.referencePerClass };
}

/** The progress log's line for a run event, if it has one. */
function logEvent(progress: Progress, e: DistillEvent, o: { resume: boolean; classCount: number }): void {
  if (e.type === "condition" && e.choice.requested === "auto") progress.log(describeAuto(e.choice));
  if (e.type === "started" && e.resumed) progress.log(`resuming the run in ${e.out}`);
  else if (e.type === "started" && o.resume) progress.log(`nothing to resume in ${e.out}: starting a new run`);
  if (e.type === "shard") {
    const list = e.classes.map((c) => c.label);
    const which =
      list.length === 0
        ? "no classes (more shards than classes)"
        : `classes ${list.join(", ")} (${list.length} of ${o.classCount})`;
    progress.log(`shard ${shardName(e.shard)} (${e.shard.source}): ${which}`);
  }
  if (e.type === "class-done")
    progress.log(`class ${e.label} (${e.name}) done: ${e.record.items.length} images, ${e.record.filled} filled in`);
  if (e.type === "class-skipped") progress.log(`class ${e.label} (${e.name}) already done`);
  if (e.type === "class-busy")
    progress.log(`class ${e.label} (${e.name}) is being distilled by ${describeHolder(e.lock.holder)}: waiting for it`);
  if (e.type === "lock-taken-over") {
    const what = e.label === "manifest" ? "the manifest" : `class ${e.label}`;
    progress.log(`took over the stale lock of ${what} (${describeHolder(e.from.holder)}): ${e.reason}`);
  }
}

type DistillArgs = Parsed<typeof FLAGS>;

/** The run's configuration: each flag, else the recipe's default. */
function distillConfig(
  a: DistillArgs,
  d: RecipeDefaults,
  r: {
    preset: PresetName;
    compat: Compat;
    defaults: Defaults;
    classes: ClassSpec[];
    numClasses: number;
    steps: number;
    condition: Condition;
    out: string;
    shard?: Shard;
  },
): DistillConfig {
  const { preset, compat, defaults, classes, numClasses, steps, condition, out, shard } = r;
  const model = (flag: "dit" | "vae" | "selector", file: string) => modelFile(a[flag], flag, preset, file);
  const select = (a.select as Strategy | undefined) ?? d.select;
  return {
    preset,
    compat,
    defaults: compat === "paper" ? defaults : undefined,
    classes,
    numClasses,
    ipc: a.ipc,
    poolFactor: a.poolFactor ?? d.poolFactor,
    select,
    reference: referenceOf(select, a, d),
    fill: (a.fill as "random" | "ordered" | undefined) ?? d.fill,
    autoIpcThreshold: AUTO_IPC_THRESHOLD,
    refineIters: a.refineIters ?? d.refineIters,
    lr: a.lr ?? d.lr,
    lambda: a.lambda ?? d.lambda,
    norm: (a.norm as NormKind | undefined) ?? d.norm,
    tMax: a.tMax ?? defaultTMax(steps, d.tMaxDivisor),
    maxNorm: a.maxNorm,
    condition,
    autoConditionThreshold: a.autoThreshold ?? d.autoConditionThreshold,
    order: a.order as StageOrder,
    timestepMode: d.timestepMode,
    refineTrainMode: d.refineTrainMode,
    cfg: a.cfg ?? d.cfg,
    cfgInterval: guidanceInterval(a.cfgInterval) ?? d.cfgInterval,
    guidedChannels: a.guideChannels === "all" ? "all" : 3,
    steps,
    seed: a.seed,
    batchSize: a.batchSize,
    device: a.device,
    precision: a.precision as Precision,
    threads: getNumThreads(),
    savePreRefine: a.savePreRefine,
    saveLatents: a.saveLatents,
    out,
    state: a.state,
    shard,
    staleLockAfterS: a.staleLockAfter,
    models: {
      dit: model("dit", d.shippedDiT),
      vae: model("vae", "autoencoder.safetensors"),
      selector: model("selector", "selector.safetensors"),
    },
    modelOverrides: {
      latentSize: a.latentSize,
      scalingFactor: a.given.has("scaling-factor") ? a.scalingFactor : undefined,
      ditUnwrap: a.given.has("unwrap") ? a.unwrap : undefined,
    },
  };
}

export async function run(argv: string[]): Promise<number> {
  const a = parseCommand(
    argv,
    "cao2 distill [flags]",
    `${SUMMARIES.distill}. With no flags: the embedded Fashion-MNIST default at IPC 10.`,
    FLAGS,
  );
  if (!a) return 0;
  if (a.status) return showStatus(a);
  const shard = resolveShard({ shard: a.shard, shards: a.shards });
  applyReadLimits(a);
  const preset = a.preset as PresetName;
  const compat = a.compat as Compat;
  const defaults = a.defaults as Defaults;
  if (compat === "authors" && a.given.has("defaults"))
    throw new UsageError("--defaults applies to --compat paper (--compat authors has the released code's settings)");
  const d = recipeDefaults(preset, compat, { ipc: a.ipc, defaults });
  const embedded = preset === "fashion-mnist";
  if (a.threads !== undefined) setNumThreads(a.threads);
  const steps = a.steps ?? d.steps;
  const condition = (a.condition as Condition | undefined) ?? d.condition;
  if (a.given.has("auto-threshold") && condition !== "auto")
    throw new UsageError(`--auto-threshold applies to --condition auto only (the condition is ${condition})`);
  const all = presetClasses(preset);
  const classes = pickClasses(all, a.classes);
  const out = a.out ?? `distilled/${preset}-ipc${a.ipc}`;
  // The default output lives under ./distilled/, which a newcomer's first run has to create; a given --out must
  // have its parent already (a typo should not create folders).
  checkOutputFolder("--out", out, { createParents: a.out === undefined });
  if (a.state !== undefined) checkOutputFolder("--state", a.state);
  const config = distillConfig(a, d, {
    preset,
    compat,
    defaults,
    classes,
    numClasses: all.length,
    steps,
    condition,
    out,
    shard,
  });
  if (a.out === undefined) mkdirSync(dirname(out), { recursive: true });
  installInterruptHandler();
  const progress = new Progress({ unit: "steps" });
  const started = performance.now();
  let state = "";
  let missing: number[] = [];
  const manifest = await runDistill(config, {
    resume: a.resume,
    presetCondition: d.condition === "auto" ? "true" : d.condition,
    progress,
    onEvent: (e) => {
      logEvent(progress, e, { resume: a.resume, classCount: classes.length });
      if (e.type === "done" || e.type === "shard-done") state = e.state;
      if (e.type === "shard-done") missing = e.missing;
    },
  });
  progress.end();
  const took = formatDuration((performance.now() - started) / 1000);
  const summary = { ...a, out, classes: classes.length, took, state, embedded };
  process.stdout.write(
    manifest === undefined
      ? shardDone(shard, missing, { ...summary, stateFlag: a.state })
      : runDone({ ...summary, manifest }),
  );
  return 0;
}

/** What a process that did not write the manifest prints: its classes are done, others are not (or being written). */
function shardDone(
  shard: Shard | undefined,
  missing: number[],
  r: { out: string; classes: number; took: string; stateFlag?: string },
): string {
  return (
    `${shard ? `shard ${shardName(shard)}` : "this process's classes"} done in ${r.took}; ` +
    (missing.length > 0
      ? `classes not done yet: ${missing.join(", ")} (of ${r.classes}); the process that finishes the last one writes the manifest\n`
      : "another process is writing the manifest\n") +
    `status: cao2 distill --out ${r.out}${r.stateFlag ? ` --state ${r.stateFlag}` : ""} --status\n`
  );
}

/** What a finished run prints: where everything is, and the commands that evaluate and report it. */
function runDone(r: {
  out: string;
  classes: number;
  ipc: number;
  took: string;
  manifest: string;
  state: string;
  savePreRefine: boolean;
  saveLatents: boolean;
  embedded: boolean;
}): string {
  const testSpec = r.embedded ? "fashion-mnist" : "<test ImageFolder>";
  return (
    `distilled ${r.classes} classes x ${r.ipc} images into ${resolve(r.out)} in ${r.took}\n` +
    `manifest: ${resolve(r.manifest)}\n` +
    `run state (resume records${r.savePreRefine ? ", pre-refinement images" : ""}${r.saveLatents ? ", latents" : ""}): ${r.state}\n` +
    `evaluate: cao2 evaluate --data ${r.out} --test ${testSpec} --protocol hard --arch convnet3 --json ${r.out}-hard-convnet3.json\n` +
    `report:   cao2 report ${r.out}${r.savePreRefine ? "" : "   (distil with --save-pre-refine to see each image before refinement)"}\n`
  );
}
