// The training loop both protocols share: per epoch a seeded shuffle, the epoch's learning rate on every parameter
// group, batches in order (the last one may be smaller, as a DataLoader without drop_last), and test top-1 after the
// epochs the protocol names. Best is the highest test top-1 seen (the first of equal ones), final the last one.
// Batches come from an ImageSet; the next one is requested before the current one is trained on, so a streamed set
// decodes on its workers while the student computes.
import { type ImageSet, labelsTensor } from "../io/datasets/index.js";
import { toUnitFloat } from "../io/image.js";
import * as torch from "../torch/index.js";
import type { Generator, Precision, Tensor } from "../torch/index.js";
import { normalize } from "../io/image.js";
import { forwardAt, type Trainer } from "./protocols.js";
import type { Classifier } from "../models/classifiers.js";

export interface CurvePoint {
  /** Epoch after which the test ran, counted from 1. */
  epoch: number;
  /** Test top-1 accuracy in percent. */
  top1: number;
  /** Mean training loss over that epoch's batches. */
  trainLoss: number;
  /** Learning rate used during that epoch. */
  lr: number;
}

export interface TrainResult {
  curve: CurvePoint[];
  best: number;
  bestEpoch: number;
  final: number;
  seconds: number;
}

export interface EpochInfo {
  epoch: number;
  lr: number;
  trainLoss: number;
  top1?: number;
}

export interface TrainOptions {
  epochs: number;
  batchSize: number;
  testEpochs: readonly number[];
  /** Test top-1 in percent of the student as it is now (the loop switches it to eval mode and back). */
  test: () => Promise<number>;
  device: string;
  /** Shuffles the training set each epoch. */
  dataGen: Generator;
  /** Augmentation draws. */
  augGen: Generator;
  /** Called after every epoch (progress, tests in logs, the lr-schedule test). */
  onEpoch?: (info: EpochInfo) => void;
}

/** The batches of `order` in turn, each requested while the one before is in use. */
export async function* prefetched(
  data: ImageSet,
  order: readonly number[],
  batchSize: number,
): AsyncGenerator<{ images: Tensor; idx: number[] }> {
  const slice = (start: number) => order.slice(start, start + batchSize);
  let next = order.length ? data.images(slice(0)) : null;
  for (let start = 0; start < order.length; start += batchSize) {
    const images = await next!;
    next = start + batchSize < order.length ? data.images(slice(start + batchSize)) : null;
    try {
      yield { images, idx: slice(start) };
    } finally {
      images.dispose();
    }
  }
}

export async function trainStudent(
  student: Classifier,
  trainer: Trainer,
  data: ImageSet,
  options: TrainOptions,
): Promise<TrainResult> {
  const t0 = performance.now();
  const n = data.labels.length;
  const tests = new Set(options.testEpochs);
  const curve: CurvePoint[] = [];
  let best = -Infinity;
  let bestEpoch = 0;
  for (let e = 0; e < options.epochs; e++) {
    const lr = trainer.lr(e);
    for (const g of trainer.optimizer.paramGroups) g.lr = lr;
    student.train();
    const order = torch.tidy(() => torch.randperm(n, { generator: options.dataGen }).toNumbers());
    let lossSum = 0;
    let batches = 0;
    for await (const { images, idx } of prefetched(data, order, options.batchSize)) {
      lossSum += torch.tidy(() => {
        const x = toUnitFloat(images.to(options.device));
        const y = labelsTensor(Array.from(idx, (i) => data.labels[i])).to(options.device);
        const loss: Tensor = trainer.loss(x, y, options.augGen);
        loss.backward();
        return loss.item();
      });
      trainer.optimizer.step();
      trainer.optimizer.zeroGrad();
      batches++;
    }
    const info: EpochInfo = { epoch: e + 1, lr, trainLoss: lossSum / batches };
    if (tests.has(e + 1)) {
      student.eval();
      info.top1 = await options.test();
      student.train();
      curve.push({ epoch: e + 1, top1: info.top1, trainLoss: info.trainLoss, lr });
      if (info.top1 > best) {
        best = info.top1;
        bestEpoch = e + 1;
      }
    }
    options.onEpoch?.(info);
  }
  const final = curve.length ? curve[curve.length - 1].top1 : NaN;
  return { curve, best: curve.length ? best : NaN, bestEpoch, final, seconds: (performance.now() - t0) / 1000 };
}

/** Top-1 accuracy in percent of `model` (already in eval mode) on a data set, normalised as in training. */
export async function testAccuracy(
  model: Classifier,
  ds: ImageSet,
  options: { mean: number[]; std: number[]; device: string; batchSize?: number; precision?: Precision },
): Promise<number> {
  const forward = forwardAt(model, { device: options.device, precision: options.precision ?? "fp32" });
  const n = ds.labels.length;
  let correct = 0;
  for await (const { images, idx } of prefetched(
    ds,
    Array.from({ length: n }, (_, i) => i),
    options.batchSize ?? 500,
  )) {
    correct += torch.noGrad(() =>
      torch.tidy(() => {
        const x = normalize(toUnitFloat(images.to(options.device)), options.mean, options.std);
        const y = labelsTensor(Array.from(idx, (i) => ds.labels[i])).to(options.device);
        return forward(x).argmax(1).eq(y).sum().item();
      }),
    );
  }
  return (100 * correct) / n;
}
