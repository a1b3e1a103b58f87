// Graceful interruption. The first Ctrl-C (SIGINT) or SIGTERM asks long loops to stop at the next safe point
// (after a checkpoint); a second one ends the process at once. Loops run synchronously, so Node's signal events
// would only be delivered after they finish: the signals are counted by a native handler instead, and loops poll
// `stopRequested()`.
import { native } from "../torch/native.js";

export class Interrupted extends Error {
  constructor(what = "interrupted") {
    super(what);
    this.name = "Interrupted";
  }
}

let installed = false;

export function installInterruptHandler(): void {
  if (installed) return;
  installed = true;
  native.watchSignals();
}

export const stopRequested = (): boolean => installed && native.signalsReceived() > 0;

/** Throws Interrupted when a stop was requested; call it at safe points. */
export function checkInterrupt(what?: string): void {
  if (stopRequested()) throw new Interrupted(what);
}
