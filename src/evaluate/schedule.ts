// The numbers of the two evaluation protocols (docs/evaluation.md), as pure functions so they can be tested against the
// formulas: epochs, learning-rate schedules, batch sizes and when the test set is evaluated.

export type Protocol = "hard" | "soft";

// ----- hard-label (Minimax / IDC) -----

/**
 * Epochs by images per class: IPC 1 -> 3000, <= 10 -> 2000, <= 50 -> 1500, above -> 1000. For 100+ classes x2/3,
 * truncated and rounded down to a multiple of 100 as Minimax's ipc_epoch does (2000, 1300, 1000, 600).
 */
export function hardEpochs(ipc: number, numClasses: number): number {
  const base = ipc <= 1 ? 3000 : ipc <= 10 ? 2000 : ipc <= 50 ? 1500 : 1000;
  if (numClasses < 100) return base;
  const e = Math.floor((2 * base) / 3);
  return e - (e % 100);
}

/** MultiStep: x0.2 at 2E/3 and again at 5E/6 (epoch e counts from 0). */
export function hardLr(baseLr: number, epoch: number, epochs: number): number {
  const milestones = [Math.floor((2 * epochs) / 3), Math.floor((5 * epochs) / 6)];
  return baseLr * 0.2 ** milestones.filter((m) => epoch >= m).length;
}

/**
 * The test set is evaluated every E/count epochs (the protocol: count 100; at least every epoch) and after the last
 * one. Epochs count from 1 (after epoch e has been trained).
 */
export function hardTestEpochs(epochs: number, count = 100): number[] {
  return everyNEpochs(epochs, Math.max(1, Math.floor(epochs / count)));
}

/** Epochs every, 2 every, ... up to E, and E itself. */
export function everyNEpochs(epochs: number, every: number): number[] {
  const out: number[] = [];
  for (let e = every; e <= epochs; e += every) out.push(e);
  if (out[out.length - 1] !== epochs) out.push(epochs);
  return out;
}

// ----- soft-label (RDED) -----

/** LR factor 0.5 * (1 + cos(pi * e / E / 2)): a half cosine from 1 down to 0.5 over the run. */
export function softLr(baseLr: number, epoch: number, epochs: number): number {
  return baseLr * 0.5 * (1 + Math.cos((Math.PI * epoch) / epochs / 2));
}

/** Batch size for 10 classes: IPC 1 -> 10, IPC 10 -> 50, IPC 50 -> 100 (x2 for 100+ classes), capped at the set size. */
export function softBatchSize(ipc: number, numClasses: number, setSize: number): number {
  const base = ipc <= 1 ? 10 : ipc <= 10 ? 50 : 100;
  return Math.min(setSize, numClasses >= 100 ? base * 2 : base);
}

/**
 * The test set is evaluated every `every` (10) epochs once 80% of the run has passed, and after the last epoch.
 * Epochs count from 1; RDED's loop tests after 0-based epoch i when i % 10 == 9 (or i is the last) and i > 0.8 E, so
 * for E = 300 the first test follows epoch 250 (i = 249), not 240.
 */
export function softTestEpochs(epochs: number, every = 10): number[] {
  const out: number[] = [];
  for (let e = every; e <= epochs; e += every) if (e - 1 > 0.8 * epochs) out.push(e);
  if (out[out.length - 1] !== epochs) out.push(epochs);
  return out;
}

/** Scales epoch counts for a data-set preset (e.g. a fast Fashion-MNIST schedule); milestones scale with them. */
export const scaleEpochs = (epochs: number, factor: number) => Math.max(1, Math.round(epochs * factor));
