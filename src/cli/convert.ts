// `cao2 convert <in> <out>`: any checkpoint cao2 reads (safetensors, or a torch.save archive through the safe reader)
// to safetensors, optionally storing floating-point tensors in another dtype (float16 halves a shipped model's size;
// cao2 converts back to the model's dtype when loading). Metadata, including a cao2 model description, is kept.
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { loadStateDict, openCheckpoint } from "../io/checkpoint.js";
import { saveSafetensors } from "../io/safetensors.js";
import type { DType } from "../torch/index.js";
import { type FlagSpecs, parseCommand, UsageError } from "./args.js";
import { checkOutputFile } from "./outputs.js";
import { applyReadLimits, READ_LIMIT_FLAGS } from "./limits.js";
import { SUMMARIES } from "./commands.js";

const DTYPES = ["keep", "float32", "float16", "bfloat16"] as const;

const FLAGS = {
  dtype: {
    type: "string",
    help: "Dtype of the floating-point tensors (integer buffers keep theirs)",
    choices: DTYPES,
    default: "keep",
  },
  unwrap: {
    type: "string",
    help: "Where the state dict is in a torch.save archive: auto (the top level, else 'ema', else the one wrapper entry), none, or an entry name",
    default: "auto",
  },
  force: { type: "boolean", help: "Overwrite <out> if it exists", default: false },
  ...READ_LIMIT_FLAGS,
} satisfies FlagSpecs;

export async function run(argv: string[]): Promise<number> {
  const a = parseCommand(
    argv,
    "cao2 convert <checkpoint> <out.safetensors> [--dtype float16]",
    SUMMARIES.convert,
    FLAGS,
    2,
  );
  if (!a) return 0;
  applyReadLimits(a);
  if (a._.length !== 2)
    throw new UsageError("expected two paths: the checkpoint to read and the safetensors file to write");
  const [input, output] = a._;
  if (resolve(input) === resolve(output))
    throw new UsageError("<out> must differ from the input (the file is written next to it, then renamed)");
  checkOutputFile("<out>", output);
  if (existsSync(output) && !a.force) throw new UsageError(`${output} already exists (pass --force to overwrite it)`);
  const ck = openCheckpoint(input, { unwrap: a.unwrap });
  const metadata = ck.metadata;
  ck.close();
  const dtype = a.dtype === "keep" ? undefined : (a.dtype as DType);
  const sd = loadStateDict(input, { unwrap: a.unwrap, dtype });
  try {
    saveSafetensors(output, sd, metadata);
  } finally {
    for (const t of sd.values()) t.dispose();
  }
  process.stdout.write(`wrote ${output}: ${sd.size} tensors${dtype ? ` (floating point as ${dtype})` : ""}\n`);
  return 0;
}
