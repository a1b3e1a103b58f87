// One evaluation: R repeats of a protocol on a training set (each repeat a fresh student from its own seed), test
// top-1 curves, best and final mean ± std, and the record that says exactly what was run on what.
import { type DatasetSource, type ImageSet, indicesByClass } from "../io/datasets/index.js";
import * as torch from "../torch/index.js";
import { deriveSeed } from "../util/seed.js";
import type { Progress } from "../util/progress.js";
import { matchClasses, type ClassPair } from "../io/datasets/sets.js";
import type { EvalPreset } from "./presets.js";
import { hardTrainer, type ProtocolSettings, type RunAt, softTrainer } from "./protocols.js";
import { meanStd, type Summary, versions, type Versions } from "./record.js";
import { buildClassifier, type ClassifierSpec } from "../models/classifiers.js";
import { studentSpec } from "./students.js";
import type { Teacher } from "./teacher.js";
import { type CurvePoint, testAccuracy, trainStudent } from "./train-student.js";

export const RECORD_FORMAT = "cao2-evaluation-record/1";

export interface EvaluationInput {
  train: ImageSet;
  test: ImageSet;
  /** What the user named the sets by (a folder or a built-in name), for the record and messages. */
  trainName: string;
  testName: string;
  preset: EvalPreset;
  settings: ProtocolSettings;
  /** Required for the soft protocol, with its file's SHA-256. */
  teacher?: Teacher & { sha256: string };
  repeats: number;
  seed: number;
  device: string;
  /** The students' (and the teacher's) arithmetic (default fp32): bf16/fp16 run them under autocast. */
  precision?: torch.Precision;
  threads: number;
  /** Test-set images per class when a subset was used (recorded), undefined for the whole set. */
  testPerClass?: number;
  testBatchSize?: number;
  progress?: Progress;
  /** Repeats finished by an earlier, interrupted run of the same evaluation (taken as they are). */
  done?: readonly RepeatRecord[];
  /** Runs this repeat (from 0) of the `repeats` alone; its record holds it alone (src/evaluate/merge.ts combines them). */
  only?: number;
  /** Called after each repeat with all repeats so far (to save progress). */
  onRepeat?: (repeats: readonly RepeatRecord[]) => void;
}

export interface RepeatRecord {
  repeat: number;
  /** deriveSeed(seed, repeat): student init uses deriveSeed(s, "init"), shuffling "data", augmentations "augment". */
  seed: number;
  curve: CurvePoint[];
  best: number;
  bestEpoch: number;
  final: number;
  wallSeconds: number;
}

export interface SetRecord {
  name: string;
  source: DatasetSource;
  images: number;
  imagesPerClass: number[];
  shape: number[];
  /** What was done to each image read, before the protocol's augmentations. */
  transform: string;
}

export interface EvaluationRecord {
  format: string;
  createdAt: string;
  versions: Versions;
  config: ProtocolSettings & {
    preset: EvalPreset;
    student: ClassifierSpec;
    repeats: number;
    seed: number;
    device: string;
    precision: torch.Precision;
    threads: number;
    testPerClass: number | null;
  };
  /** Repeats taken from an interrupted earlier run (their wall times are theirs; wallSeconds counts this run). */
  resumedRepeats: number;
  /** A record of one repeat alone (`--repeat K`), to be merged with the others. */
  part?: { repeat: number };
  /** A record merged from single repeats' records (`--merge`): each part's file, device and time. */
  mergedFrom?: { path: string; repeat: number; device: string; createdAt: string; wallSeconds: number }[];
  data: SetRecord;
  test: SetRecord;
  classMapping: ClassPair[];
  teacher: { path: string; sha256: string; spec: ClassifierSpec } | null;
  repeats: RepeatRecord[];
  summary: { best: Summary; final: Summary; std: string };
  wallSeconds: number;
}

const describeSet = (name: string, ds: ImageSet): SetRecord => ({
  name,
  source: ds.source,
  images: ds.labels.length,
  imagesPerClass: indicesByClass(ds).map((idx) => idx.length),
  shape: ds.shape,
  transform: ds.transform,
});

export async function runEvaluation(input: EvaluationInput): Promise<EvaluationRecord> {
  const t0 = performance.now();
  const s = input.settings;
  const classMapping = matchClasses(input.train.classes, input.test.classes, {
    data: input.trainName,
    test: input.testName,
  });
  if (s.protocol === "soft" && !input.teacher) throw new Error("the soft-label protocol needs a teacher");
  const spec = studentSpec(s.arch, {
    numClasses: input.train.classes.length,
    inChannels: input.preset.channels,
    imageSize: input.preset.imageSize,
    norm: s.norm,
    stem: input.preset.resnetStem,
  });
  const at: RunAt = { device: input.device, precision: input.precision ?? "fp32" };
  if (input.teacher && channelsLastPays(input.teacher.spec, at)) input.teacher.model.toChannelsLast();
  const resumed = input.only === undefined ? (input.done ?? []).slice(0, input.repeats) : [];
  const repeats: RepeatRecord[] = resumed.slice();
  if (repeats.length > 0) input.progress?.log(`resumed: ${repeats.length} of ${input.repeats} repeats already done`);
  if (input.only !== undefined && !(Number.isInteger(input.only) && input.only >= 0 && input.only < input.repeats))
    throw new Error(`repeat ${input.only} is not one of 0..${input.repeats - 1}`);
  const todo =
    input.only !== undefined
      ? [input.only]
      : Array.from({ length: input.repeats - repeats.length }, (_, i) => repeats.length + i);
  for (const r of todo) {
    const seed = deriveSeed(input.seed, r);
    const student = buildClassifier(spec, {
      device: input.device,
      generator: new torch.Generator(deriveSeed(seed, "init")),
    });
    if (channelsLastPays(spec, at)) student.toChannelsLast();
    const trainer =
      s.protocol === "hard"
        ? hardTrainer(student, s, input.preset, at)
        : softTrainer(student, input.teacher!, s, input.preset, at);
    const label = `repeat ${r + 1}/${input.repeats}`;
    input.progress?.stage(label, s.epochs);
    const result = await trainStudent(student, trainer, input.train, {
      epochs: s.epochs,
      batchSize: s.batchSize,
      testEpochs: s.testEpochs,
      test: () =>
        testAccuracy(student, input.test, {
          mean: input.preset.mean,
          std: input.preset.std,
          device: input.device,
          batchSize: input.testBatchSize,
          precision: at.precision,
        }),
      device: input.device,
      dataGen: new torch.Generator(deriveSeed(seed, "data")),
      augGen: new torch.Generator(deriveSeed(seed, "augment")),
      onEpoch: (e) => {
        if (e.top1 !== undefined)
          input.progress?.log(
            `${label} epoch ${e.epoch}/${s.epochs}: train loss ${e.trainLoss.toFixed(4)}, test top-1 ${e.top1.toFixed(2)}%`,
          );
        input.progress?.tick();
      },
    });
    input.progress?.end();
    trainer.optimizer.dispose();
    for (const t of student.stateDict().values()) t.dispose();
    const { curve, best, bestEpoch, final, seconds } = result;
    repeats.push({ repeat: r, seed, curve, best, bestEpoch, final, wallSeconds: seconds });
    input.progress?.log(
      `${label}: best ${best.toFixed(2)}% (epoch ${bestEpoch}), final ${final.toFixed(2)}%, ${seconds.toFixed(0)} s`,
    );
    input.onRepeat?.(repeats);
  }
  return {
    format: RECORD_FORMAT,
    createdAt: new Date().toISOString(),
    versions: versions(),
    config: {
      ...s,
      preset: input.preset,
      student: spec,
      repeats: input.repeats,
      seed: input.seed,
      device: input.device,
      precision: at.precision,
      threads: input.threads,
      testPerClass: input.testPerClass ?? null,
    },
    resumedRepeats: resumed.length,
    ...(input.only !== undefined ? { part: { repeat: input.only } } : {}),
    data: describeSet(input.trainName, input.train),
    test: describeSet(input.testName, input.test),
    classMapping,
    teacher: input.teacher
      ? { path: input.teacher.path, sha256: input.teacher.sha256, spec: input.teacher.spec }
      : null,
    repeats,
    summary: summarise(repeats),
    wallSeconds: (performance.now() - t0) / 1000,
  };
}

/**
 * Where channels-last memory order was measured to pay (docs/precision.md): batch-norm ResNets under a mixed
 * precision (ResNet-18 bf16: 19% faster per training step); the instance-norm ConvNet is slower with it.
 */
export const channelsLastPays = (spec: ClassifierSpec, at: RunAt) =>
  at.precision !== "fp32" && spec.kind === "resnet" && spec.norm === "batch";

/** Best and final top-1 over the repeats, mean ± sample std. */
export const summarise = (repeats: readonly RepeatRecord[]): EvaluationRecord["summary"] => ({
  best: meanStd(repeats.map((r) => r.best)),
  final: meanStd(repeats.map((r) => r.final)),
  std: "sample standard deviation (n - 1)",
});
