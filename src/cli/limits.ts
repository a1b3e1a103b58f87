// --max-tensor-bytes and --max-image-pixels: the readers' stated limits (src/io/limits.ts), taken by every command
// that reads checkpoints, images or data sets. The defaults and what they bound are in docs/security.md.
import { DEFAULT_READ_LIMITS, setReadLimits } from "../io/limits.js";
import { type FlagSpecs, UsageError } from "./args.js";

export const READ_LIMIT_FLAGS = {
  "max-tensor-bytes": {
    type: "int",
    help: "Largest tensor read from a file into memory, in bytes (one checkpoint tensor, or a data set's images)",
    default: DEFAULT_READ_LIMITS.maxTensorBytes,
  },
  "max-image-pixels": { type: "int", help: "Largest PNG or JPEG decoded, in pixels (width x height)", default: DEFAULT_READ_LIMITS.maxImagePixels },
} satisfies FlagSpecs;

/** Puts the flags' limits in force for this command (after checking that they are positive). */
export function applyReadLimits(a: { maxTensorBytes: number; maxImagePixels: number }): void {
  for (const [flag, v] of [["--max-tensor-bytes", a.maxTensorBytes], ["--max-image-pixels", a.maxImagePixels]] as const) {
    if (!(v >= 1)) throw new UsageError(`${flag} must be a positive integer, got ${v}`);
  }
  setReadLimits({ maxTensorBytes: a.maxTensorBytes, maxImagePixels: a.maxImagePixels });
}
