// Threads, devices and build information.
import { native } from "./native.js";

/** Sets libtorch's intra-op thread count (default: every core, or CAO2_THREADS). Returns the count in force. */
export function setNumThreads(n: number): number {
  return native.numThreads(n);
}
export const getNumThreads = (): number => native.numThreads();
export const cudaDeviceCount = (): number => native.cudaDeviceCount();
export const torchVersion = (): string => native.version();
export const parallelInfo = (): string => native.parallelInfo();

/** Checks a device string ("cpu", "cuda", "cuda:N") against what this libtorch offers; returns it normalised. */
export function checkDevice(device: string): string {
  if (device === "cpu") return device;
  const m = /^cuda(?::(\d+))?$/.exec(device);
  if (!m) throw new Error(`unknown device '${device}': expected cpu or cuda:N`);
  const n = cudaDeviceCount();
  if (n === 0) throw new Error(`device '${device}' requested but this libtorch has no CUDA support or sees no GPU (build against a CUDA libtorch with LIBTORCH=...)`);
  const idx = Number(m[1] ?? 0);
  if (idx >= n) throw new Error(`device '${device}' requested but only ${n} CUDA device(s) are visible`);
  return `cuda:${idx}`;
}
