// `npm run bench -- checkpoint [--gb 1] [--repeats 3] [--keep]`: loading a ~1 GB DiT-like checkpoint into
// model-shaped tensors, side by side with PyTorch (torch.load of the same weights as .pt + load_state_dict).
// Each load runs in a fresh child process so its peak RSS (VmHWM) belongs to that load alone. The file lives in /tmp.
// Targets: our peak RSS under 1.3x the file size, our time within 1.5x of PyTorch's.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { loadInto } from "../src/io/checkpoint.js";
import { saveSafetensors } from "../src/io/safetensors.js";
import { Generator, getNumThreads, randn, type Tensor, zeros } from "../src/torch/index.js";
import { makeCase, median, report, runPython } from "./common.js";

const DIR = "/tmp/cao2-bench-checkpoint";

/** The official DiT state-dict layout for a depth and hidden size (patch 2, 4 latent channels, 1000 classes, 32x32). */
function ditShapes(depth: number, hidden: number): Map<string, number[]> {
  const s = new Map<string, number[]>([
    ["pos_embed", [1, 256, hidden]],
    ["x_embedder.proj.weight", [hidden, 4, 2, 2]],
    ["x_embedder.proj.bias", [hidden]],
    ["t_embedder.mlp.0.weight", [hidden, 256]],
    ["t_embedder.mlp.0.bias", [hidden]],
    ["t_embedder.mlp.2.weight", [hidden, hidden]],
    ["t_embedder.mlp.2.bias", [hidden]],
    ["y_embedder.embedding_table.weight", [1001, hidden]],
  ]);
  for (let i = 0; i < depth; i++) {
    const b = `blocks.${i}.`;
    for (const [k, shape] of [
      ["attn.qkv.weight", [3 * hidden, hidden]],
      ["attn.qkv.bias", [3 * hidden]],
      ["attn.proj.weight", [hidden, hidden]],
      ["attn.proj.bias", [hidden]],
      ["mlp.fc1.weight", [4 * hidden, hidden]],
      ["mlp.fc1.bias", [4 * hidden]],
      ["mlp.fc2.weight", [hidden, 4 * hidden]],
      ["mlp.fc2.bias", [hidden]],
      ["adaLN_modulation.1.weight", [6 * hidden, hidden]],
      ["adaLN_modulation.1.bias", [6 * hidden]],
    ] as const) {
      s.set(b + k, [...shape]);
    }
  }
  s.set("final_layer.linear.weight", [32, hidden]);
  s.set("final_layer.linear.bias", [32]);
  s.set("final_layer.adaLN_modulation.1.weight", [2 * hidden, hidden]);
  s.set("final_layer.adaLN_modulation.1.bias", [2 * hidden]);
  return s;
}

/** Blocks of hidden size 1024 (75 MB each) to reach about `gb` GB. */
const shapesFor = (gb: number) => ditShapes(Math.max(1, Math.round((gb * 1e9) / (18 * 1024 * 1024 * 4))), 1024);

interface ChildResult {
  seconds: number;
  peak_rss_bytes: number;
  rss_before_bytes: number;
}

const statusBytes = (field: string) =>
  Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync("/proc/self/status", "utf8"))![1]) * 1024;

/** Child process: preallocate model-shaped tensors, then time loading the file into them. */
function child(file: string, gb: number): void {
  const target = new Map<string, Tensor>([...shapesFor(gb)].map(([k, s]) => [k, zeros(s)]));
  const rssBefore = statusBytes("VmRSS");
  const t0 = process.hrtime.bigint();
  loadInto(target, file);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const out: ChildResult = { seconds, peak_rss_bytes: statusBytes("VmHWM"), rss_before_bytes: rssBefore };
  console.log(JSON.stringify(out));
}

function runChild(file: string, gb: number): ChildResult {
  const r = spawnSync(
    process.execPath,
    [join("dist", "bench", "main.js"), "checkpoint", "--child", file, "--gb", String(gb)],
    {
      encoding: "utf8",
      env: { ...process.env, CAO2_THREADS: String(getNumThreads()) },
    },
  );
  if (r.status !== 0) throw new Error(`benchmark child failed (exit ${r.status}):\n${r.stderr}`);
  const lines = r.stdout.trim().split("\n");
  return JSON.parse(lines[lines.length - 1]) as ChildResult;
}

const flag = (args: string[], name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
};

export async function run(args: string[]): Promise<void> {
  const gb = Number(flag(args, "gb", "1"));
  if (args.includes("--child")) return child(flag(args, "child", ""), gb);
  const repeats = Number(flag(args, "repeats", "3"));
  mkdirSync(DIR, { recursive: true });
  const st = join(DIR, `dit-${gb}gb.safetensors`);
  const pt = join(DIR, `dit-${gb}gb.pt`);
  if (!existsSync(st)) {
    console.log(`writing ${st} ...`);
    const g = new Generator(0);
    const tensors = new Map([...shapesFor(gb)].map(([k, s]) => [k, randn(s, { generator: g })]));
    saveSafetensors(st, tensors);
    for (const t of tensors.values()) t.dispose();
  }
  if (!existsSync(pt)) runPython("bench_checkpoint_load.py", ["convert", st, pt]);
  const size = statSync(st).size;
  console.log(
    `checkpoint: ${(size / 1e9).toFixed(3)} GB safetensors, ${(statSync(pt).size / 1e9).toFixed(3)} GB .pt; ${repeats} runs each, one process per run`,
  );

  const runs: Record<string, ChildResult[]> = { st: [], pt: [], torch: [] };
  for (let i = 0; i < repeats; i++) {
    runs.st.push(runChild(st, gb));
    runs.pt.push(runChild(pt, gb));
    runs.torch.push(runPython<ChildResult>("bench_checkpoint_load.py", ["load", pt, "--shapes-from", st]));
  }
  const time = (k: string) => median(runs[k].map((r) => r.seconds));
  const peak = (k: string) => Math.max(...runs[k].map((r) => r.peak_rss_bytes));
  const before = (k: string) => median(runs[k].map((r) => r.rss_before_bytes));
  const cases = [
    makeCase("safetensors -> model (ours) vs torch.load(.pt) + load_state_dict", time("st"), time("torch")),
    makeCase(".pt -> model (ours) vs torch.load(.pt) + load_state_dict", time("pt"), time("torch")),
  ];
  const mem = {
    file_bytes: size,
    ours_safetensors_peak_rss_bytes: peak("st"),
    ours_pt_peak_rss_bytes: peak("pt"),
    pytorch_peak_rss_bytes: peak("torch"),
    ours_safetensors_rss_before_load_bytes: before("st"),
    pytorch_rss_before_load_bytes: before("torch"),
    ours_safetensors_peak_over_file: peak("st") / size,
    ours_pt_peak_over_file: peak("pt") / size,
    pytorch_peak_over_file: peak("torch") / size,
  };
  report("checkpoint", cases, { ...mem, runs });
  const gbs = (b: number) => `${(b / 1e9).toFixed(2)} GB`;
  console.log(
    `peak RSS: ours ${gbs(peak("st"))} (${mem.ours_safetensors_peak_over_file.toFixed(2)}x file; .pt ${mem.ours_pt_peak_over_file.toFixed(2)}x), ` +
      `pytorch ${gbs(peak("torch"))} (${mem.pytorch_peak_over_file.toFixed(2)}x file); target ours < 1.3x`,
  );
  console.log(
    `time: pytorch/ours ${cases[0].ratio.toFixed(2)} (safetensors), ${cases[1].ratio.toFixed(2)} (.pt); target >= ${(1 / 1.5).toFixed(2)}`,
  );
  if (!args.includes("--keep")) rmSync(DIR, { recursive: true, force: true });
}
