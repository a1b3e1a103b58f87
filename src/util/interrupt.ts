// Graceful interruption: the first Ctrl-C (SIGINT) or SIGTERM asks long loops to stop at the next safe point (after
// a checkpoint); a second one exits at once. Loops poll `stopRequested()`.
let requested = false;
let installed = false;

export class Interrupted extends Error {
  constructor(what = "interrupted") {
    super(what);
    this.name = "Interrupted";
  }
}

export function installInterruptHandler(onFirst?: (signal: string) => void): void {
  if (installed) return;
  installed = true;
  const handler = (signal: NodeJS.Signals) => {
    if (requested) process.exit(130);
    requested = true;
    onFirst?.(signal);
  };
  process.on("SIGINT", handler);
  process.on("SIGTERM", handler);
}

export const stopRequested = (): boolean => requested;

/** Throws Interrupted when a stop was requested; call it at safe points. */
export function checkInterrupt(): void {
  if (requested) throw new Interrupted();
}
