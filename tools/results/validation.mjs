#!/usr/bin/env node
// The validation sweep of the Fashion-MNIST default (docs/results/validation.md): distillation settings are chosen by
// the accuracy of students trained on the distilled set and tested on the validation split `fashion-mnist-val` (the
// 200 training images per class that no shipped model saw; src/io/datasets/spec.ts). The test split is not read.
// The baseline is random real images drawn from the rest of the training split (`fashion-mnist-fit`).
//
//   node tools/results/validation.mjs --ipc 10 --cfg 1.0,1.5,2.0,2.7,4.0 --pool 1          # a grid of settings
//   node tools/results/validation.mjs --ipc 10 --cfg 2.7 --pool 5 --select representative,confident --refine 100
//   node tools/results/validation.mjs --ipc 10 --backbone minimax --cfg 2.0 --pool 1 --protocols hard,plain
//   node tools/results/validation.mjs --ipc 10 --cfg 4.0 --interval all,0-600 --guide 3,all   # guidance interval, channels
//   node tools/results/validation.mjs --ipc 10 --backbone minimax --pool 10 --select mmd --seeds 0,1 --repeats 3
//   node tools/results/validation.mjs --render                                             # only rewrite the page
//
// Every point of the grid (backbone x cfg x pool x select x refine x interval x guide x seeds) is a setting; each is
// distilled with its seed (default 0; other seeds are named -s<seed>) into .runs/val/<name> and evaluated with hard-label ConvNet-3 (`hard`: the protocol's
// augmentation and CutMix) and/or a plain trainer (`plain`: crop and flip only, no CutMix), --repeats students each (seed 0). Records go to
// docs/results/validation/<name>.<protocol>-r<repeats>.json. Resumable: finished records are skipped, distillations
// resume.
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { readJson, ROOT, runCao2 } from "./common.mjs";

process.chdir(ROOT);
const RECORDS = "docs/results/validation";
const BACKBONES = {
  base: "assets/fashion-mnist/dit.safetensors",
  minimax: "assets/fashion-mnist/dit-minimax.safetensors",
};
const PROTOCOLS = {
  hard: ["--protocol", "hard", "--arch", "convnet3"],
  plain: ["--protocol", "hard", "--arch", "convnet3", "--augment", "crop-flip", "--no-cutmix"],
};
const ABBR = {
  confident: "conf",
  "least-confident": "lc",
  correct: "corr",
  random: "rand",
  el2n: "el2n",
  representative: "rep",
  mmd: "mmd",
  auto: "auto",
};
/** The real images the mmd strategy matches: the training split less the validation split. */
const REFERENCE = "fashion-mnist-fit";

/** The folder name of a setting; pool 1 without refinement is "plain samples" (no selection happens). */
function settingName(s) {
  const bb = s.backbone === "base" ? "" : `${s.backbone}-`;
  const core = s.pool === 1 ? `dit${s.ipc}-cfg${s.cfg}` : `${ABBR[s.select]}${s.ipc}-p${s.pool}-cfg${s.cfg}`;
  const gi = s.interval === "all" ? "" : `-gi${s.interval}`;
  const gc = s.guide === "3" ? "" : `-g${s.guide}`;
  return `${bb}${core}${gi}${gc}${s.refine > 0 ? `-ref${s.refine}` : ""}${seedSuffix(s.seed)}`;
}

/** Sets drawn with another seed than 0 are named with -s<seed>. */
const seedSuffix = (seed) => (seed === 0 ? "" : `-s${seed}`);

function distillArgs(s, out) {
  // --defaults paper: every setting not in the name is the paper's, not the validated default's.
  const argv = [
    "distill",
    "--defaults",
    "paper",
    "--ipc",
    `${s.ipc}`,
    "--pool-factor",
    `${s.pool}`,
    "--refine-iters",
    `${s.refine}`,
    "--cfg",
    `${s.cfg}`,
    "--seed",
    `${s.seed}`,
    "--out",
    out,
  ];
  if (s.pool > 1) argv.push("--select", s.select);
  if (s.pool > 1 && s.select === "mmd") argv.push("--reference", REFERENCE);
  if (s.backbone !== "base") argv.push("--dit", BACKBONES[s.backbone] ?? s.backbone);
  if (s.interval !== "all") argv.push("--cfg-interval", s.interval.replace("-", ","));
  if (s.guide !== "3") argv.push("--guide-channels", s.guide);
  return argv;
}

const run = (argv) => runCao2(argv, "validation");

function ensureSet(name, makeArgs) {
  const dir = `.runs/val/${name}`;
  if (!existsSync(join(dir, "manifest.json"))) {
    mkdirSync(".runs/val", { recursive: true });
    run([...makeArgs(dir), ...(existsSync(dir) && makeArgs(dir)[0] === "distill" ? ["--resume"] : [])]);
  }
  return dir;
}

function ensureRecord(name, dir, protocol, repeats) {
  const json = `${RECORDS}/${name}.${protocol}-r${repeats}.json`;
  if (existsSync(json)) return;
  mkdirSync(RECORDS, { recursive: true });
  run([
    "evaluate",
    "--data",
    dir,
    "--test",
    "fashion-mnist-val",
    ...PROTOCOLS[protocol],
    "--repeats",
    `${repeats}`,
    "--seed",
    "0",
    "--json",
    json,
    "--resume",
  ]);
  if (existsSync(join(dir, "manifest.json")) && !existsSync(`${RECORDS}/${name}.distill.json`)) {
    const m = readJson(join(dir, "manifest.json"));
    if (m.format !== "cao2-random-real/1") copyFileSync(join(dir, "manifest.json"), `${RECORDS}/${name}.distill.json`);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// rendering: one table per IPC, settings by name, every protocol's records (mean ± std over repeats, repeat count)
// ---------------------------------------------------------------------------------------------------------------

const BEGIN = "<!-- validation-table:begin (tools/results/validation.mjs rewrites this part) -->";
const END = "<!-- validation-table:end -->";

function render() {
  const files = existsSync(RECORDS) ? readdirSync(RECORDS).filter((f) => /\.(hard|plain)-r\d+\.json$/.test(f)) : [];
  const cells = new Map();
  for (const f of files) {
    const [, name, protocol, reps] = /^(.*)\.(hard|plain)-r(\d+)\.json$/.exec(f);
    const rec = readJson(join(RECORDS, f));
    const row = cells.get(name) ?? {
      name,
      ipc: Number(/(\d+)(?:-|$)/.exec(name.replace(/^minimax-/, "").replace(/^[a-z]+/, ""))?.[1]),
    };
    const b = rec.summary.best;
    // One repeat has no spread to show.
    row[protocol] = `[${b.mean.toFixed(2)}${reps === "1" ? "" : ` ± ${b.std.toFixed(2)}`}](validation/${f}) (${reps})`;
    cells.set(name, row);
  }
  const out = [];
  for (const ipc of [1, 10, 50]) {
    const rows = [...cells.values()].filter((r) => r.ipc === ipc).sort((a, b) => a.name.localeCompare(b.name));
    if (!rows.length) continue;
    out.push(
      `### IPC ${ipc}`,
      "",
      "| setting | hard-label ConvNet-3 (repeats) | plain crop-flip ConvNet-3 (repeats) |",
      "|---|---|---|",
    );
    for (const r of rows) out.push(`| ${r.name} | ${r.hard ?? "—"} | ${r.plain ?? "—"} |`);
    out.push("");
  }
  const path = "docs/results/validation.md";
  const doc = readFileSync(path, "utf8");
  const i = doc.indexOf(BEGIN);
  const j = doc.indexOf(END);
  if (i < 0 || j < i) throw new Error(`${path}: the markers are missing`);
  writeFileSync(`${path}.tmp`, `${doc.slice(0, i + BEGIN.length)}\n${out.join("\n")}\n${doc.slice(j)}`);
  renameSync(`${path}.tmp`, path);
}

function main(argv) {
  const o = {
    ipc: [10],
    cfg: ["2.7"],
    pool: [1],
    select: ["confident"],
    refine: [0],
    backbone: ["base"],
    interval: ["all"],
    guide: ["3"],
    seeds: [0],
    protocols: ["hard"],
    repeats: 1,
    render: false,
    baseline: true,
  };
  for (let k = 0; k < argv.length; k++) {
    const a = argv[k];
    const list = () => (argv[++k] ?? "").split(",").filter(Boolean);
    if (a === "--render") o.render = true;
    else if (a === "--no-baseline") o.baseline = false;
    else if (a === "--repeats") o.repeats = Number(argv[++k]);
    else if (["--ipc", "--pool", "--refine", "--seeds"].includes(a)) o[a.slice(2)] = list().map(Number);
    else if (["--cfg", "--select", "--backbone", "--protocols", "--interval", "--guide"].includes(a))
      o[a.slice(2)] = list();
    else {
      process.stderr.write(
        `validation: unknown argument '${a}' (see the comment at the top of tools/results/validation.mjs)\n`,
      );
      process.exit(2);
    }
  }
  const bad = o.protocols.find((p) => !PROTOCOLS[p]) ?? o.select.find((s) => !ABBR[s]);
  if (bad || !(o.repeats >= 1)) {
    process.stderr.write(
      `validation: '${bad ?? o.repeats}' is not a protocol (hard, plain), strategy or repeat count\n`,
    );
    process.exit(2);
  }
  if (!o.render) {
    for (const ipc of o.ipc) {
      for (const seed of o.baseline ? o.seeds : []) {
        const name = `rr${ipc}${seedSuffix(seed)}`;
        const dir = ensureSet(name, (d) => [
          "baseline",
          "random-real",
          "--data",
          "fashion-mnist-fit",
          "--ipc",
          `${ipc}`,
          "--seed",
          `${seed}`,
          "--out",
          d,
        ]);
        for (const p of o.protocols) ensureRecord(name, dir, p, o.repeats);
      }
      for (const backbone of o.backbone)
        for (const cfg of o.cfg)
          for (const pool of o.pool)
            for (const select of pool === 1 ? ["-"] : o.select)
              for (const refine of o.refine)
                for (const interval of o.interval)
                  for (const guide of o.guide)
                    for (const seed of o.seeds) {
                      const s = { ipc, backbone, cfg, pool, select, refine, interval, guide, seed };
                      const name = settingName(s);
                      const dir = ensureSet(name, (d) => distillArgs(s, d));
                      for (const p of o.protocols) ensureRecord(name, dir, p, o.repeats);
                      render();
                    }
    }
  }
  render();
}

main(process.argv.slice(2));
