// --max-tensor-bytes and --max-image-pixels: the readers' stated limits (src/io/limits.ts), taken by every command
// that reads checkpoints, images or data sets. The defaults and what they bound are in docs/security.md.
import { DEFAULT_READ_LIMITS, setReadLimits } from "../io/limits.js";
import type { FlagSpecs } from "./args.js";

export const READ_LIMIT_FLAGS = {
  "max-tensor-bytes": {
    type: "int",
    help: "Largest tensor read from a file into memory, in bytes (one checkpoint tensor, or a data set's images)",
    default: DEFAULT_READ_LIMITS.maxTensorBytes,
    min: 1,
  },
  "max-image-pixels": {
    type: "int",
    help: "Largest PNG or JPEG decoded, in pixels (width x height)",
    default: DEFAULT_READ_LIMITS.maxImagePixels,
    min: 1,
  },
} satisfies FlagSpecs;

/** Puts the flags' limits in force for this command (the parser has checked that they are positive). */
export function applyReadLimits(a: { maxTensorBytes: number; maxImagePixels: number }): void {
  setReadLimits({ maxTensorBytes: a.maxTensorBytes, maxImagePixels: a.maxImagePixels });
}
