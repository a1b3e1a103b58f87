// `cao2 baseline random-real`: IPC random real training images per class as an ImageFolder of PNGs, the reference
// point every distilled set is compared with.
import { type FlagSpecs, parseCommand, UsageError } from "./args.js";
import { checkOutputFolder } from "./outputs.js";
import { MAX_PER_CLASS, seedFlag } from "./shared-flags.js";
import { writeRandomReal } from "../evaluate/random-real.js";
import { loadDataSpec } from "../io/datasets/index.js";
import { applyReadLimits, READ_LIMIT_FLAGS } from "./limits.js";
import { SUMMARIES } from "./commands.js";

const FLAGS = {
  data: { type: "string", help: "Source: fashion-mnist (its 60k training images), fashion-mnist-fit (minus the validation split) or an ImageFolder", default: "fashion-mnist" },
  ipc: { type: "int", help: "Images per class", min: 1, max: MAX_PER_CLASS },
  seed: seedFlag("Selection seed"),
  out: { type: "string", help: "Output folder (must not exist or be empty; written atomically)" },
  ...READ_LIMIT_FLAGS,
} satisfies FlagSpecs;

const KINDS = ["random-real"];

export async function run(argv: string[]): Promise<number> {
  const a = parseCommand(argv, "cao2 baseline random-real --ipc N --out <folder> [--data fashion-mnist|<folder>] [--seed S]", SUMMARIES.baseline, FLAGS, 1);
  if (!a) return 0;
  applyReadLimits(a);
  const [kind] = a._;
  if (!kind) throw new UsageError(`name the baseline: ${KINDS.join(", ")} (see --help)`);
  if (!KINDS.includes(kind)) throw new UsageError(`unknown baseline '${kind}' (known: ${KINDS.join(", ")})`);
  if (a.ipc === undefined) throw new UsageError("--ipc is required (images per class)");
  if (!a.out) throw new UsageError("--out is required (the folder to write)");
  checkOutputFolder("--out", a.out);
  const source = loadDataSpec(a.data!, "train");
  const m = writeRandomReal({ source, sourceName: a.data!, ipc: a.ipc, seed: a.seed!, out: a.out });
  process.stdout.write(`wrote ${m.images.length} images (${a.ipc} per class, ${m.classes.length} classes, seed ${a.seed}) to ${a.out}\n`);
  return 0;
}
