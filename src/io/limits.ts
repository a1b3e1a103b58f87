// The stated limits of the readers: what a checkpoint, image or data-set file may make cao2 allocate beyond its own
// size. Every reader checks its input against its own size first (counts vs bytes present, inflated sizes vs the
// header's), then against these limits, before allocating. They are process-wide defaults that the CLI sets from
// --max-tensor-bytes and --max-image-pixels; a library caller can pass its own per call where a reader takes options.
// The threat model and the reasoning behind the defaults are in docs/security.md.
import { InputError } from "../errors.js";

export interface ReadLimits {
  /**
   * Largest materialised tensor in bytes: one checkpoint tensor as loaded (a broadcast view counts in full), and a
   * data set's images tensor (idx or ImageFolder). Default 1 GiB, far above any tensor of the models cao2 runs.
   */
  maxTensorBytes: number;
  /** Largest image, in pixels (width x height), decoded from PNG or JPEG. Default 89,478,485, PIL's MAX_IMAGE_PIXELS. */
  maxImagePixels: number;
}

export const DEFAULT_READ_LIMITS: Readonly<ReadLimits> = Object.freeze({
  maxTensorBytes: 2 ** 30,
  maxImagePixels: 89_478_485,
});

let current: ReadLimits = { ...DEFAULT_READ_LIMITS };

/** The limits in force (the defaults unless setReadLimits changed them). */
export function readLimits(): Readonly<ReadLimits> {
  return current;
}

/** Changes the process-wide limits (the CLI's --max-tensor-bytes / --max-image-pixels); returns the previous ones. */
export function setReadLimits(layout: Partial<ReadLimits>): ReadLimits {
  for (const [k, v] of Object.entries(layout)) {
    if (v !== undefined && !(Number.isSafeInteger(v) && v > 0))
      throw new InputError(`read limit ${k} must be a positive integer, got ${v}`);
  }
  const prev = current;
  current = { ...current, ...Object.fromEntries(Object.entries(layout).filter(([, v]) => v !== undefined)) };
  return prev;
}

/** Bytes as a short human-readable size ("1 GiB", "3.2 MiB", "512 bytes"). */
export function formatBytes(n: number | bigint): string {
  const v = Number(n);
  const units = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
  let i = 0;
  let x = v;
  while (x >= 1024 && i < units.length - 1) {
    x /= 1024;
    i++;
  }
  if (i === units.length - 1 && x >= 1024) return `${v.toExponential(2)} bytes`;
  return i === 0 ? `${v} bytes` : `${Number.isInteger(x) ? x : x.toPrecision(3)} ${units[i]}`;
}

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/**
 * The element count of a shape, computed exactly (BigInt), or a message when a dimension is not a non-negative safe
 * integer or the count itself is beyond 2^53 - 1 (no real tensor comes near; libtorch would overflow or refuse).
 */
export function checkedNumel(shape: readonly unknown[]): { numel: number } | { problem: string } {
  let n = 1n;
  for (const d of shape) {
    if (typeof d !== "number" || !Number.isSafeInteger(d) || d < 0)
      return { problem: `dimension ${String(d)} is not a non-negative integer below 2^53` };
    n *= BigInt(d);
  }
  if (n > MAX_SAFE) return { problem: `its element count ${n} exceeds 2^53 - 1` };
  return { numel: Number(n) };
}

/** The message for a tensor or image over the limit (names the flag that raises it). */
export function overLimit(what: string, bytes: number | bigint, limit: number): string {
  return `${what} would take ${formatBytes(bytes)} in memory, over the ${formatBytes(limit)} limit (--max-tensor-bytes)`;
}
