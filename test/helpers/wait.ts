// Polls a condition while a child process runs (the kill-and-resume tests wait for a first record to appear).
import type { ChildProcess } from "node:child_process";

/** Resolves when `pred()` holds; rejects after `ms` or when the child exits first. */
export function waitFor(pred: () => boolean, child: ChildProcess, ms = 120_000, everyMs = 20): Promise<void> {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const iv = setInterval(() => {
      if (pred()) {
        clearInterval(iv);
        resolve();
      } else if (Date.now() - t0 > ms || child.exitCode !== null) {
        clearInterval(iv);
        reject(new Error("condition not reached"));
      }
    }, everyMs);
  });
}
