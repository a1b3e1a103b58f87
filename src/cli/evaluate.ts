// `cao2 evaluate`: trains students on a (distilled) training set with the hard-label or soft-label protocol and
// reports test top-1 as mean ± std over repeats, with a JSON record of everything that decided the numbers.
import { existsSync, rmSync } from "node:fs";
import { InputError } from "../errors.js";
import { type FlagSpecs, type Parsed, parseCommand, UsageError } from "./args.js";
import { checkOutputFile } from "./outputs.js";
import { deviceFlag, MAX_BATCH, MAX_EPOCHS, precisionFlag, seedFlag, threadsFlag } from "./shared-flags.js";
import { loadEvalSet, matchClasses } from "../io/datasets/sets.js";
import type { ImageSet } from "../io/datasets/stream.js";
import { type EvalPreset, EVAL_PRESETS, type EvalPresetName, PRESETS } from "../evaluate/presets.js";
import { AUGMENT_CHOICES, type AugmentChoice, PROTOCOLS, protocolSettings } from "../evaluate/protocols.js";
import { formatMeanStd } from "../evaluate/record.js";
import { sha256File } from "../io/files.js";
import { mergeRepeatRecords } from "../evaluate/merge.js";
import { type EvaluationRecord, type RepeatRecord, runEvaluation } from "../evaluate/run.js";
import { STUDENT_ARCHS, type StudentArch } from "../evaluate/students.js";
import { loadTeacher } from "../evaluate/teacher.js";
import { isDistillRun } from "../report/read-run.js";
import { fashionMnistPart, IMAGENET_SUBSETS, type ImageNetSubset, indicesByClass } from "../io/datasets/index.js";
import * as torch from "../torch/index.js";
import { writeJsonAtomic } from "../util/atomic.js";
import { isRecord, readStateJson } from "../util/state-file.js";
import { Progress } from "../util/progress.js";
import { applyReadLimits, READ_LIMIT_FLAGS } from "./limits.js";
import { SUMMARIES } from "./commands.js";

const FLAGS = {
  data: {
    type: "string",
    help: "Training set: an ImageFolder (class folders, optional classes.txt), fashion-mnist (all 60k training images) or fashion-mnist-fit (minus the validation split)",
  },
  test: {
    type: "string",
    help: "Test set: fashion-mnist (its 10k test images), fashion-mnist-val (the validation split, for choosing settings) or an ImageFolder with the same classes",
    default: "fashion-mnist",
  },
  protocol: {
    type: "string",
    choices: PROTOCOLS,
    help: "hard: Minimax/IDC hard labels; soft: RDED teacher soft labels",
    default: "hard",
  },
  arch: { type: "string", choices: STUDENT_ARCHS, help: "Student architecture", default: "convnet3" },
  norm: {
    type: "string",
    choices: ["batch", "instance"],
    help: "Student normalisation",
    defaultText: "instance for hard, batch for soft",
  },
  teacher: {
    type: "string",
    help: "Soft-label teacher: a cao2 classifier file, or a state dict (.safetensors, .pt/.pth) whose architecture is read from its keys",
  },
  "teacher-arch": {
    type: "string",
    help: "Check that the teacher is this architecture (e.g. resnet18)",
    defaultText: "any",
  },
  preset: {
    type: "string",
    choices: ["auto", ...EVAL_PRESETS],
    help: "Data-set preset: image size, mean/std, epoch scaling (auto: fashion-mnist for --test fashion-mnist, else imagenet)",
    default: "auto",
  },
  epochs: {
    type: "int",
    help: "Training epochs",
    defaultText: "the protocol's count for the IPC, times the preset's scale",
    min: 1,
    max: MAX_EPOCHS,
  },
  "batch-size": {
    type: "int",
    help: "Training batch size",
    defaultText: "hard 64 (128 for 100+ ImageNet classes); soft by IPC (10/50/100, x2 for 100+ classes)",
    min: 1,
    max: MAX_BATCH,
  },
  lr: {
    type: "number",
    help: "Base learning rate",
    defaultText: "hard 0.01 (0.1 for 100+ ImageNet classes), soft 0.001",
    min: 0,
    exclusiveMin: true,
  },
  wd: {
    type: "number",
    help: "Weight decay",
    defaultText: "hard 5e-4 (1e-4 for 100+ ImageNet classes), soft 0.01",
    min: 0,
  },
  augment: {
    type: "string",
    choices: AUGMENT_CHOICES,
    help: "Per-image augmentations: the protocol's, crop-flip (its crop and flip only: a plain trainer), or none (normalisation only)",
    default: "protocol",
  },
  subset: {
    type: "string",
    choices: IMAGENET_SUBSETS,
    help: "Label order of both ImageFolders from this ImageNet subset's class list (class folders named by wnid, or <label>_<wnid> as cao2 writes them)",
    defaultText: "classes.txt, else sorted folder names",
  },
  "skip-corrupt": {
    type: "boolean",
    help: "Leave unreadable images of an ImageFolder out (counted in the record) instead of stopping before training",
    default: false,
  },
  cutmix: { type: "boolean", help: "CutMix every batch (beta 1); --no-cutmix turns it off", default: true },
  "test-every": {
    type: "int",
    help: "Test every N epochs (soft: within the last 20%)",
    defaultText: "the preset's cadence",
    min: 1,
    max: MAX_EPOCHS,
  },
  "test-per-class": {
    type: "int",
    help: "Test on a seeded subset of N images per class",
    defaultText: "the whole test set",
    min: 1,
  },
  repeats: {
    type: "int",
    help: "Repeats (fresh student, seed derived from --seed and the repeat)",
    default: 3,
    min: 1,
    max: 1000,
  },
  repeat: {
    type: "int",
    help: "Run only repeat K (from 0) of the --repeats and write its record to --json, for --merge (one job per repeat)",
    min: 0,
    max: 999,
  },
  merge: {
    type: "boolean",
    help: "Combine records of single repeats (--repeat K), given as arguments, into the evaluation's record (--json)",
    default: false,
  },
  seed: seedFlag("Run seed"),
  json: {
    type: "string",
    help: "Write the JSON record here (atomically); progress is kept in <json>.partial.json after each repeat",
    defaultText: "none",
  },
  resume: {
    type: "boolean",
    help: "Continue the evaluation saved next to --json (needs --json; its finished repeats are kept), or start it if there is none; other settings are refused",
    default: false,
  },
  device: deviceFlag,
  threads: threadsFlag,
  precision: precisionFlag("The students' and the teacher's arithmetic"),
  ...READ_LIMIT_FLAGS,
} satisfies FlagSpecs;

const USAGE =
  "cao2 evaluate --data <folder|fashion-mnist> [--test fashion-mnist|<folder>] [--protocol hard|soft] [--arch ...] [--teacher <file>] [flags]" +
  " | --merge --json <record> <repeat record>...";

/** The closing lines: the summary, and where the record is and how to see it. */
function printResult(record: EvaluationRecord, json: string | undefined): void {
  const s = record.summary;
  const what = record.part
    ? `repeat ${record.part.repeat} of ${record.config.repeats}`
    : `${record.repeats.length} repeat(s)`;
  process.stdout.write(
    `${record.config.protocol}-label ${record.config.arch}, ${what}: best top-1 ${formatMeanStd(s.best)}%, final ${formatMeanStd(s.final)}% (sample std)` +
      `${json ? `; record: ${json}` : ""}\n`,
  );
  if (json && !record.part) {
    const data = record.data.name;
    const report = isDistillRun(data)
      ? `cao2 report ${data} --eval ${json}`
      : `cao2 report --eval ${json} --out ${json.replace(/\.json$/i, "")}-report.html`;
    process.stdout.write(`report: ${report}\n`);
  }
}

function merge(a: { given: Set<string>; json?: string; _: string[] }): number {
  const other = [...a.given].filter((f) => f !== "merge" && f !== "json");
  if (other.length)
    throw new UsageError(`--merge combines saved repeat records, which hold their settings; it takes no --${other[0]}`);
  if (!a.json) throw new UsageError("--merge needs --json: the combined record to write");
  if (a._.length === 0)
    throw new UsageError(
      "--merge needs the records to combine: cao2 evaluate --merge --json all.json r0.json r1.json ...",
    );
  checkOutputFile("--json", a.json);
  const record = mergeRepeatRecords(a._);
  writeJsonAtomic(a.json, record);
  printResult(record, a.json);
  return 0;
}

/**
 * The repeats an interrupted evaluation saved in `partial` (none when there is no such file: the evaluation starts).
 * Saved repeats of other settings or data are refused, never mixed in or dropped silently.
 */
function savedRepeats(partial: string, identity: string, progress: Progress): RepeatRecord[] {
  if (!existsSync(partial)) {
    progress.log(`nothing to resume (no ${partial}): starting the evaluation`);
    return [];
  }
  const saved = readStateJson<{ identity: string; repeats: RepeatRecord[] }>(
    partial,
    { what: "progress file of an interrupted evaluation", recover: "delete it to start the evaluation afresh" },
    (v) => isRecord(v) && typeof v.identity === "string" && Array.isArray(v.repeats) && v.repeats.every(isRecord),
  );
  if (saved.identity !== identity)
    throw new InputError(
      `${partial}: saved by an evaluation with other settings or data; resume with the same flags and data, or delete it to start afresh`,
    );
  return saved.repeats;
}

type EvaluateArgs = Parsed<typeof FLAGS>;

/** Flag combinations refused before any data is read. */
function checkFlags(a: EvaluateArgs): void {
  if (a._.length > 0) throw new UsageError(`unexpected argument '${a._[0]}' (see --help)`);
  if (!a.data)
    throw new UsageError("--data is required: the training set to evaluate (an ImageFolder, or fashion-mnist)");
  if (a.protocol === "soft" && !a.teacher) throw new UsageError("the soft protocol needs --teacher <state dict>");
  if (a.protocol === "hard" && a.teacher) throw new UsageError("--teacher is only used by the soft protocol");
  checkOutputFile("--json", a.json);
  torch.checkPrecision(a.precision as torch.Precision, a.device);
  if (a.resume && !a.json) throw new UsageError("--resume needs --json: progress is saved next to the record");
  if (a.repeat !== undefined) {
    if (a.repeat >= a.repeats!)
      throw new UsageError(
        `--repeat ${a.repeat} is not one of the ${a.repeats} repeats (0..${a.repeats! - 1}); give the whole evaluation's --repeats`,
      );
    if (!a.json)
      throw new UsageError("--repeat needs --json: the repeat's record, which --merge combines with the others");
    if (a.resume)
      throw new UsageError(
        "--resume continues an evaluation of several repeats; a single --repeat is run again as it is",
      );
  }
}

/** The training and test sets, every image read and checked before any training (io/datasets/stream.ts). */
async function openSets(
  a: EvaluateArgs,
  preset: EvalPreset,
  progress: Progress,
): Promise<{ train: ImageSet; test: ImageSet }> {
  const open = async (spec: string, split: "train" | "test", perClass?: { count: number; seed: number }) => {
    const set = await loadEvalSet(spec, split, preset, {
      perClass,
      skipCorrupt: a.skipCorrupt,
      classList: a.subset as ImageNetSubset | undefined,
    });
    const skipped = set.source.skipped;
    if (skipped)
      progress.log(
        `${spec}: ${skipped.count} unreadable image(s) left out (--skip-corrupt), e.g. ${skipped.files[0].file}: ${skipped.files[0].error}`,
      );
    return set;
  };
  const train = await open(a.data!, "train");
  const test = await open(
    a.test!,
    "test",
    a.testPerClass === undefined ? undefined : { count: a.testPerClass, seed: a.seed! },
  );
  matchClasses(train.classes, test.classes, { data: a.data!, test: a.test! }); // fail before any other work
  return { train, test };
}

export async function run(argv: string[]): Promise<number> {
  // --merge takes any number of records as arguments; the other forms none.
  const a = parseCommand(argv, USAGE, SUMMARIES.evaluate, FLAGS, Number.MAX_SAFE_INTEGER);
  if (!a) return 0;
  if (a.merge) return merge(a);
  checkFlags(a);
  applyReadLimits(a);
  const protocol = a.protocol as (typeof PROTOCOLS)[number];
  const device = a.device;
  const precision = a.precision as torch.Precision;
  if (a.threads !== undefined) torch.setNumThreads(a.threads);
  const testName = a.test!;
  const presetName = (
    a.preset === "auto" ? (fashionMnistPart(testName, "test") ? "fashion-mnist" : "imagenet") : a.preset
  ) as EvalPresetName;
  const preset = PRESETS[presetName];

  const progress = new Progress({ unit: "epochs" });
  const { train, test } = await openSets(a, preset, progress);
  const teacher = a.teacher
    ? {
        ...loadTeacher(a.teacher, { preset, classes: train.classes, arch: a.teacherArch, device }),
        sha256: sha256File(a.teacher),
      }
    : undefined;
  const settings = protocolSettings({
    protocol,
    arch: a.arch as StudentArch,
    preset,
    ipc: Math.max(...indicesByClass(train).map((idx) => idx.length)),
    numClasses: train.classes.length,
    setSize: train.labels.length,
    norm: a.norm as "batch" | "instance" | undefined,
    epochs: a.epochs,
    batchSize: a.batchSize,
    lr: a.lr,
    weightDecay: a.wd,
    augment: a.augment as AugmentChoice,
    cutmix: a.cutmix,
    testEvery: a.testEvery,
  });
  const partial = a.json ? `${a.json}.partial.json` : undefined;
  // Everything that decides a repeat's numbers: a saved repeat is reused only when all of it is the same.
  const identity = JSON.stringify({
    settings,
    preset,
    seed: a.seed,
    data: train.source.sha256,
    test: test.source.sha256,
    testImages: test.labels.length,
    teacher: teacher?.sha256 ?? null,
    // Only a mixed precision is named, so that progress saved before the flag existed (fp32) still resumes.
    ...(precision !== "fp32" && { precision }),
  });
  // --resume continues the evaluation saved next to --json if there is one, else starts it (one command line for a
  // scheduler's retries).
  const done = a.resume && partial ? savedRepeats(partial, identity, progress) : [];
  if (process.env.MALLOC_MMAP_THRESHOLD_ === undefined)
    progress.log(
      "note: long runs need MALLOC_MMAP_THRESHOLD_=131072 in the environment, else glibc lets memory grow each step (docs/evaluation.md)",
    );
  progress.log(
    `${protocol}-label ${settings.arch} (${settings.norm} norm) on ${a.data}: ${train.labels.length} images, ${train.classes.length} classes, ` +
      `${settings.epochs} epochs, batch ${settings.batchSize}, ${a.repeats} repeat(s); test ${testName} (${test.labels.length} images)`,
  );
  const record = await runEvaluation({
    train,
    test,
    trainName: a.data!,
    testName,
    preset,
    settings,
    teacher,
    repeats: a.repeats!,
    seed: a.seed!,
    device,
    precision,
    threads: torch.getNumThreads(),
    testPerClass: a.testPerClass,
    progress,
    done,
    only: a.repeat,
    onRepeat: (repeats) => partial && a.repeat === undefined && writeJsonAtomic(partial, { identity, repeats }),
  });
  await Promise.all([train.close(), test.close()]);
  if (a.json) {
    writeJsonAtomic(a.json, record);
    rmSync(partial!, { force: true });
  }
  printResult(record, a.json);
  return 0;
}
