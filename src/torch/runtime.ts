// Threads, devices and build information.
import { InputError, Interrupted } from "../errors.js";
import { native } from "./native.js";

/** Sets libtorch's intra-op thread count (default: every core, or CAO2_THREADS). Returns the count in force. */
export function setNumThreads(n: number): number {
  return native.numThreads(n);
}
export const getNumThreads = (): number => native.numThreads();
export const cudaDeviceCount = (): number => native.cudaDeviceCount();
export const torchVersion = (): string => native.version();
export const parallelInfo = (): string => native.parallelInfo();

/** The devices this libtorch can use: cpu, then cuda:0.. for every visible GPU. */
export const availableDevices = (): string[] => [
  "cpu",
  ...Array.from({ length: cudaDeviceCount() }, (_, i) => `cuda:${i}`),
];

/**
 * Checks a device string ("cpu", "cuda", "cuda:N") against what this libtorch offers; returns it normalised. The
 * error names what was asked (`what`: "device", or the flag that gave it) and what is available.
 */
export function checkDevice(device: string, what = "device"): string {
  if (device === "cpu") return device;
  const m = /^cuda(?::(\d+))?$/.exec(device);
  const available = () => `available: ${availableDevices().join(", ")}`;
  if (!m) throw new InputError(`${what} '${device}' is not a device: expected cpu, cuda or cuda:N (${available()})`);
  const n = cudaDeviceCount();
  if (n === 0)
    throw new InputError(
      `${what} ${device}: this libtorch has no CUDA support or sees no GPU (${available()}; a CUDA libtorch is installed with LIBTORCH=..., see the README)`,
    );
  const idx = Number(m[1] ?? 0);
  if (idx >= n) throw new InputError(`${what} ${device}: only ${n} CUDA device(s) are visible (${available()})`);
  return `cuda:${idx}`;
}

// Graceful interruption. The first Ctrl-C (SIGINT) or SIGTERM asks long loops to stop at the next safe point
// (after a checkpoint); a second one ends the process at once. Loops run synchronously, so Node's signal events
// would only be delivered after they finish: the signals are counted by the addon's handler instead, and loops poll
// `stopRequested()`.
let interruptHandlerInstalled = false;

export function installInterruptHandler(): void {
  if (interruptHandlerInstalled) return;
  interruptHandlerInstalled = true;
  native.watchSignals();
}

export const stopRequested = (): boolean => interruptHandlerInstalled && native.signalsReceived() > 0;

/** Throws Interrupted when a stop was requested; call it at safe points. */
export function checkInterrupt(what?: string): void {
  if (stopRequested()) throw new Interrupted(what);
}
