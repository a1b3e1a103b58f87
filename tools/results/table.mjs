#!/usr/bin/env node
// The Fashion-MNIST results table of docs/results.md: for IPC 10, 1 and 50, eight training sets (random real images and
// seven distillations: DiT samples, selection only, refinement only, CaO2, Minimax samples, Minimax + CaO2, and the
// validated default) evaluated with three protocols (hard-label ConvNet-3, soft-label ResNet-18 with the shipped
// selector as teacher, hard-label ResNet-18), 3 repeats each.
//
//   node tools/results/table.mjs                     # run what is missing, then rewrite the table
//   node tools/results/table.mjs --render            # only rewrite the table from the records
//   node tools/results/table.mjs --report            # docs/results/report.html from the records (cao2 report:
//       # every row, column and IPC; accuracy vs IPC per training set, accuracy curves per repeat); runs nothing
//   node tools/results/table.mjs --dry-run           # list the commands still to run
//   node tools/results/table.mjs --ipc 10 --cols hard-convnet3   # a part of it
//   node tools/results/table.mjs --ipc 1 --rows dit,select --cols soft-resnet18 --seeds 1,2,3,4
//       # the same cells for training sets made with other seeds (docs/results/seeds/, .runs/seeds/); prints each
//       # seed's cell and the spread across seeds (seed 0 is the table's own set) instead of rewriting the table
//
// Resumable at every level: a cell whose record exists is skipped, a distillation continues with --resume, an
// evaluation keeps its finished repeats (--resume). Cells run cheapest protocol first. Training sets go to .runs/
// (ignored; distillation is deterministic, so they can be made again), records to docs/results/ (committed).
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { readJson, ROOT, runCao2, show } from "./common.mjs";

process.chdir(ROOT);
const TEACHER = "assets/fashion-mnist/selector.safetensors";

export const IPCS = [10, 1, 50];
// The paper's settings rows pin `--defaults paper`: `cao2 distill` with no flags takes the validated Fashion-MNIST
// settings (src/distill/presets.ts, docs/results/validation.md), which are the last row.
const PAPER = ["--defaults", "paper"];
const MINIMAX = ["--dit", "assets/fashion-mnist/dit-minimax.safetensors"];
export const ROWS = [
  {
    id: "random-real",
    name: "Random real images",
    set: (ipc, seed, out) => [
      "baseline",
      "random-real",
      "--data",
      "fashion-mnist",
      "--ipc",
      `${ipc}`,
      "--seed",
      `${seed}`,
      "--out",
      out,
    ],
  },
  {
    id: "dit",
    name: "DiT samples (pool 1x, no selection, no refinement)",
    distill: [...PAPER, "--pool-factor", "1", "--refine-iters", "0"],
  },
  { id: "select", name: "Selection only (pool 2x, no refinement)", distill: [...PAPER, "--refine-iters", "0"] },
  { id: "refine", name: "Refinement only (pool 1x)", distill: [...PAPER, "--pool-factor", "1"] },
  // --save-pre-refine also keeps the images before refinement, for the Figure 4 of docs/ (cao2 figure)
  { id: "cao2", name: "CaO2 (selection + refinement)", distill: [...PAPER, "--save-pre-refine"] },
  {
    id: "minimax",
    name: "Minimax samples (Minimax-fine-tuned DiT, pool 1x, no selection, no refinement)",
    distill: [...PAPER, ...MINIMAX, "--pool-factor", "1", "--refine-iters", "0"],
  },
  { id: "minimax-cao2", name: "Minimax + CaO2 (paper settings)", distill: [...PAPER, ...MINIMAX] },
  { id: "default", name: "cao2 default (validated settings)", distill: [] },
];
export const COLS = [
  { id: "hard-convnet3", name: "hard-label ConvNet-3", args: ["--protocol", "hard", "--arch", "convnet3"] },
  {
    id: "soft-resnet18",
    name: "soft-label ResNet-18",
    args: ["--protocol", "soft", "--arch", "resnet18", "--teacher", TEACHER],
  },
  { id: "hard-resnet18", name: "hard-label ResNet-18", args: ["--protocol", "hard", "--arch", "resnet18"] },
];
// Literature anchors for Fashion-MNIST with ConvNet-3 (IPC 1/10/50), as docs/results.md quotes them.
const ANCHORS = {
  1: "DC 70.5, DSA 70.6, KIP 73.8; random real about 51",
  10: "DC 82.3, DSA 84.6, KIP 86.8; random real about 74",
  50: "DC 83.6, DSA 88.7, KIP 87.8; random real about 83",
};

// The training set's seed: 0 for the table; others only vary the set (the students' seeds stay those of --seed 0).
const bySeed = (seed) => (seed === 0 ? "" : `seeds/seed${seed}/`);
const setDir = (row, ipc, seed = 0) => `.runs/${bySeed(seed)}${row.id}/ipc${ipc}`;
const recordPath = (row, col, ipc, seed = 0) => `docs/results/${bySeed(seed)}${row.id}/${col.id}-ipc${ipc}.json`;
const distillRecord = (row, ipc, seed = 0) => `docs/results/${bySeed(seed)}${row.id}/distill-ipc${ipc}.json`;
const setCommand = (row, ipc, seed = 0) =>
  row.set
    ? row.set(ipc, seed, setDir(row, ipc, seed))
    : ["distill", "--ipc", `${ipc}`, ...row.distill, "--seed", `${seed}`, "--out", setDir(row, ipc, seed)];
const evalCommand = (row, col, ipc, seed = 0) => [
  "evaluate",
  "--data",
  setDir(row, ipc, seed),
  "--test",
  "fashion-mnist",
  ...col.args,
  "--repeats",
  "3",
  "--seed",
  "0",
  "--json",
  recordPath(row, col, ipc, seed),
];
const run = (argv) => runCao2(argv, "table");

/** Makes a row's training set for an IPC (a distillation resumes; its manifest is kept beside the records). */
function ensureSet(row, ipc, seed, dry) {
  const dir = setDir(row, ipc, seed);
  if (!existsSync(join(dir, "manifest.json"))) {
    const argv = setCommand(row, ipc, seed);
    if (row.distill && existsSync(dir)) argv.push("--resume");
    if (dry) return void console.log(show(argv));
    mkdirSync(dirname(dir), { recursive: true });
    run(argv);
  }
  // Also for a set made by hand with the same command (e.g. for the figure of docs/models.md).
  const record = distillRecord(row, ipc, seed);
  if (row.distill && !dry && !existsSync(record)) {
    mkdirSync(dirname(record), { recursive: true });
    copyFileSync(join(dir, "manifest.json"), record);
  }
}

/** Runs a missing cell; true when it ran (so the table is worth rewriting). */
function ensureCell(row, col, ipc, seed, dry) {
  const json = recordPath(row, col, ipc, seed);
  if (existsSync(json)) return false;
  if (col.args.includes(TEACHER) && !existsSync(TEACHER)) {
    process.stderr.write(`skip ${json}: ${TEACHER} is missing\n`);
    return false;
  }
  ensureSet(row, ipc, seed, dry);
  const argv = [...evalCommand(row, col, ipc, seed), "--resume"];
  if (dry) {
    console.log(show(argv));
    return false;
  }
  mkdirSync(dirname(json), { recursive: true });
  run(argv);
  return true;
}

const fmt = (s) => `${s.mean.toFixed(2)} ± ${s.std.toFixed(2)}`;
const duration = (s) =>
  s >= 3600 ? `${(s / 3600).toFixed(1)} h` : s >= 60 ? `${(s / 60).toFixed(1)} min` : `${s.toFixed(0)} s`;

/** The markdown of the table, one block per IPC, from the records on disk. */
export function renderTable() {
  const out = [];
  for (const ipc of [1, 10, 50]) {
    out.push(`### IPC ${ipc}`, "", `Literature anchors (ConvNet-3): ${ANCHORS[ipc]}.`, "");
    out.push(
      `| training set | distillation wall time | ${COLS.map((c) => c.name).join(" | ")} |`,
      `|---|---|${COLS.map(() => "---|").join("")}`,
    );
    for (const row of ROWS) {
      const d = readJson(distillRecord(row, ipc));
      const wall = row.set ? "n/a (no distillation)" : d ? duration(d.distillSeconds) : "pending";
      const cells = COLS.map((col) => {
        const p = recordPath(row, col, ipc);
        const rec = readJson(p);
        // An interrupted or running evaluation keeps its finished repeats beside the record.
        if (!rec)
          return existsSync(`${p}.partial.json`)
            ? `pending (${readJson(`${p}.partial.json`).repeats.length}/3 repeats saved)`
            : "pending";
        return `[${fmt(rec.summary.best)}](${p.replace(/^docs\//, "")})`;
      });
      out.push(`| ${row.name} | ${wall} | ${cells.join(" | ")} |`);
    }
    out.push("");
  }
  out.push("<details><summary>The command of every cell</summary>", "", "```");
  for (const ipc of [1, 10, 50])
    for (const row of ROWS) {
      out.push(show(setCommand(row, ipc)));
      for (const col of COLS) out.push(show(evalCommand(row, col, ipc)));
    }
  out.push("```", "", "</details>");
  return out.join("\n");
}

/** Each seed's cell (mean over its repeats) and, over the seeds present, the mean ± sample std of those means. */
function seedSummary(rows, cols, ipcs, seeds) {
  const out = [
    `| IPC | column | training set | ${seeds.map((s) => `seed ${s}`).join(" | ")} | over seeds |`,
    `|---|---|---|${seeds.map(() => "---|").join("")}---|`,
  ];
  for (const ipc of ipcs)
    for (const col of cols)
      for (const row of rows) {
        const means = seeds.map((seed) => readJson(recordPath(row, col, ipc, seed))?.summary.best.mean);
        const got = means.filter((m) => m !== undefined);
        const mean = got.reduce((a, b) => a + b, 0) / got.length;
        const std = Math.sqrt(got.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(1, got.length - 1));
        const across = got.length > 1 ? `${fmt({ mean, std })} (${got.length} sets)` : "n/a";
        out.push(
          `| ${ipc} | ${col.id} | ${row.id} | ${means.map((m) => (m === undefined ? "pending" : m.toFixed(2))).join(" | ")} | ${across} |`,
        );
      }
  return out.join("\n");
}

const BEGIN = "<!-- results-table:begin (tools/results/table.mjs rewrites this part) -->";
const END = "<!-- results-table:end -->";

function writeTable() {
  const path = "docs/results.md";
  const doc = readFileSync(path, "utf8");
  const i = doc.indexOf(BEGIN);
  const j = doc.indexOf(END);
  if (i < 0 || j < i) throw new Error(`${path}: the markers ${BEGIN} ... ${END} are missing`);
  const next = `${doc.slice(0, i + BEGIN.length)}\n${renderTable()}\n${doc.slice(j)}`;
  writeFileSync(`${path}.tmp`, next);
  renameSync(`${path}.tmp`, path);
}

/** The results table as a cao2 report (needs a build: npm run build). */
async function writeResultsReport(out = "docs/results/report.html") {
  const { writeReport } = await import("../../dist/src/report/report.js");
  const evals = [];
  for (const col of COLS)
    for (const row of ROWS)
      for (const ipc of [1, 10, 50])
        if (existsSync(recordPath(row, col, ipc))) evals.push({ path: recordPath(row, col, ipc), label: row.name });
  const r = writeReport({
    evals,
    out,
    title: "cao2 results: Fashion-MNIST, five training sets, three protocols, IPC 1/10/50",
  });
  console.log(
    `wrote ${r.out} (${(r.htmlBytes / 2 ** 20).toFixed(2)} MB) from ${evals.length} of ${ROWS.length * COLS.length * 3} records`,
  );
}

async function main(argv) {
  const opt = {
    render: false,
    report: false,
    dry: false,
    ipcs: IPCS,
    cols: COLS.map((c) => c.id),
    rows: ROWS.map((r) => r.id),
    seeds: [0],
  };
  for (let k = 0; k < argv.length; k++) {
    const a = argv[k];
    const list = () => (argv[++k] ?? "").split(",").filter(Boolean);
    if (a === "--render") opt.render = true;
    else if (a === "--report") opt.report = true;
    else if (a === "--dry-run") opt.dry = true;
    else if (a === "--ipc") opt.ipcs = list().map(Number);
    else if (a === "--cols") opt.cols = list();
    else if (a === "--rows") opt.rows = list();
    else if (a === "--seeds") opt.seeds = list().map(Number);
    else {
      process.stderr.write(`table: unknown argument '${a}' (see the comment at the top of tools/results/table.mjs)\n`);
      process.exit(2);
    }
  }
  for (const [what, given, known] of [
    ["--ipc", opt.ipcs, IPCS],
    ["--cols", opt.cols, COLS.map((c) => c.id)],
    ["--rows", opt.rows, ROWS.map((r) => r.id)],
  ]) {
    const bad = given.find((g) => !known.includes(g));
    if (bad !== undefined) {
      process.stderr.write(`table: ${what} ${bad} is not one of ${known.join(", ")}\n`);
      process.exit(2);
    }
  }
  if (opt.seeds.length === 0 || opt.seeds.some((s) => !Number.isSafeInteger(s) || s < 0)) {
    process.stderr.write("table: --seeds takes non-negative integers, e.g. 1,2,3,4\n");
    process.exit(2);
  }
  if (opt.report) return writeResultsReport();
  const [rows, cols] = [ROWS.filter((r) => opt.rows.includes(r.id)), COLS.filter((c) => opt.cols.includes(c.id))];
  const table = opt.seeds.length === 1 && opt.seeds[0] === 0;
  if (!opt.render) {
    for (const seed of opt.seeds)
      for (const col of cols)
        for (const ipc of opt.ipcs)
          for (const row of rows) if (ensureCell(row, col, ipc, seed, opt.dry) && table) writeTable();
  }
  if (opt.dry) return;
  if (table) writeTable();
  else console.log(seedSummary(rows, cols, opt.ipcs, [...new Set([0, ...opt.seeds])]));
}

await main(process.argv.slice(2));
