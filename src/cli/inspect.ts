// `cao2 inspect <checkpoint>`: keys, shapes, dtypes and value counts of a checkpoint.
import { formatHelp, parseArgs, UsageError } from "./args.js";
import { SafetensorsFile } from "../io/safetensors.js";

export const summary = "List a checkpoint's tensors (keys, shapes, dtypes, total values)";

const FLAGS = {
  json: { type: "boolean", help: "Print JSON instead of a table", default: false },
} as const;

export async function run(argv: string[]): Promise<number> {
  if (argv.includes("--help")) {
    process.stdout.write(formatHelp("cao2 inspect <checkpoint> [--json]", summary, FLAGS));
    return 0;
  }
  const args = parseArgs(argv, FLAGS);
  if (args._.length !== 1) throw new UsageError("expected exactly one checkpoint path");
  const f = SafetensorsFile.open(args._[0]);
  try {
    const rows = [...f.tensors.values()].map((t) => ({ key: t.name, dtype: t.dtype, shape: t.shape, numel: t.shape.reduce((a, b) => a * b, 1) }));
    const total = rows.reduce((a, r) => a + r.numel, 0);
    if (args.json) process.stdout.write(JSON.stringify({ file: args._[0], tensors: rows, totalValues: total }, null, 2) + "\n");
    else {
      for (const r of rows) process.stdout.write(`${r.key}\t${r.dtype}\t[${r.shape.join(", ")}]\t${r.numel}\n`);
      process.stdout.write(`${rows.length} tensors, ${total.toLocaleString("en-US")} values\n`);
    }
  } finally {
    f.close();
  }
  return 0;
}
