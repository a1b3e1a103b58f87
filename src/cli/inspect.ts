// `cao2 inspect <checkpoint>`: keys, shapes, dtypes and value counts of a checkpoint (safetensors or torch.save
// archive, told apart by content), the entries that are not tensors, and a guess of the architecture. Only metadata
// is read: no tensor data, whatever the file size.
import { parseCommand, UsageError } from "./args.js";
import { guessArchitecture } from "../io/architecture.js";
import { openCheckpoint } from "../io/checkpoint.js";
import { ITEM_SIZE } from "../torch/index.js";
import { SUMMARIES } from "./commands.js";

const FLAGS = {
  json: { type: "boolean", help: "Print JSON instead of a table", default: false },
  unwrap: {
    type: "string",
    help: "Where the state dict is: auto (a top-level state dict, else an 'ema' entry, else the one entry such as 'model' that holds one), none, or an entry name",
    default: "auto",
  },
} as const;

export async function run(argv: string[]): Promise<number> {
  const args = parseCommand(argv, "cao2 inspect <checkpoint> [--json] [--unwrap KEY]", SUMMARIES.inspect, FLAGS, 1);
  if (!args) return 0;
  if (args._.length !== 1) throw new UsageError("expected exactly one checkpoint path");
  const file = args._[0];
  // Only metadata is read, so tensors over the memory limit are listed too (their element counts are still bounded).
  const ck = openCheckpoint(file, { unwrap: args.unwrap, maxTensorBytes: Infinity });
  try {
    const rows = [...ck.tensors.values()].map((t) => ({
      key: t.key,
      dtype: t.dtype,
      shape: [...t.shape],
      numel: t.numel,
    }));
    // Sums in BigInt: each count is below 2^53, their sum need not be.
    const totalValues = Number(rows.reduce((a, r) => a + BigInt(r.numel), 0n));
    const bytes = Number(
      [...ck.tensors.values()].reduce((a, t) => a + BigInt(t.numel) * BigInt(ITEM_SIZE[t.dtype]), 0n),
    );
    const architecture = guessArchitecture(new Map(rows.map((r) => [r.key, r.shape])));
    if (args.json) {
      const out = {
        file,
        format: ck.format,
        unwrapped: ck.unwrapped,
        strippedPrefix: ck.strippedPrefix,
        tensors: rows,
        totalValues,
        bytes,
        skipped: ck.skipped,
        metadata: ck.metadata,
        architecture,
      };
      process.stdout.write(JSON.stringify(out, null, 2) + "\n");
      return 0;
    }
    const how = [ck.format === "torch" ? "torch.save archive" : "safetensors"];
    if (ck.unwrapped) how.push(`state dict from entry '${ck.unwrapped}'`);
    if (ck.strippedPrefix) how.push(`prefix '${ck.strippedPrefix}' removed`);
    const lines = [`${file}: ${how.join(", ")}`];
    const w = rows.reduce((m, r) => Math.max(m, r.key.length), 3);
    for (const r of rows) lines.push(`${r.key.padEnd(w)}  ${r.dtype.padEnd(8)}  [${r.shape.join(", ")}]  ${r.numel}`);
    lines.push(
      `${rows.length} tensors, ${totalValues.toLocaleString("en-US")} values, ${(bytes / 2 ** 20).toFixed(1)} MiB`,
    );
    for (const s of ck.skipped) lines.push(`not loaded: ${s.key} (${s.kind})`);
    for (const [k, v] of Object.entries(ck.metadata)) lines.push(`metadata: ${k} = ${v}`);
    if (architecture) {
      const cfg = Object.entries(architecture.config).map(
        ([k, v]) => `${k} ${Array.isArray(v) ? `[${v.join(", ")}]` : v === null ? "unknown" : String(v)}`,
      );
      lines.push(`architecture: ${architecture.name} (${architecture.naming} naming): ${cfg.join(", ")}`);
      if (architecture.problem) lines.push(`architecture problem: ${architecture.problem}`);
    } else lines.push("architecture: not recognised");
    process.stdout.write(lines.join("\n") + "\n");
  } finally {
    ck.close();
  }
  return 0;
}
