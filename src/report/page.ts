// The report's HTML: text and tables rendered here; image grids and charts drawn in the browser from a JSON block,
// the charts by Chart.js (inlined from node_modules, so no network is needed). The page's own script and style are
// assets/report/report.js and report.css.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import type { ClassRecord } from "../distill/write.js";
import { formatMeanStd as meanStd } from "../evaluate/record.js";
import { assetPath } from "../util/assets.js";
import type { EvalEntry } from "./read-evals.js";
import type { RunClass, RunData } from "./read-run.js";
import type { ItemImages, ReportInput } from "./report.js";

const esc = (v: unknown) => String(v).replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
/** A script's text, safe inside <script>: no "</script" or "<!--" can end it early. */
const scriptText = (s: string) => s.replace(/<(\/script|!--)/gi, "\\x3C$1");

let chartJs: string | undefined;
/** Chart.js's UMD bundle (it begins with its licence banner); its source-map comment is dropped (nothing to fetch). */
function chartJsSource(): string {
  if (chartJs === undefined) {
    // The package exports no path to its UMD bundle; it lies beside the CommonJS entry point.
    const distDir = dirname(createRequire(import.meta.url).resolve("chart.js"));
    chartJs = readFileSync(join(distDir, "chart.umd.min.js"), "utf8").replace(/\n\/\/# sourceMappingURL=.*\s*$/, "\n");
  }
  return chartJs;
}

const num = (v: number | null | undefined, digits: number) =>
  typeof v === "number" && Number.isFinite(v) ? v.toFixed(digits) : "n/a";
const pct = (v: number) => `${(100 * v).toFixed(1)}%`;
/** Stage times are often under a second, which util/progress's formatDuration rounds away. */
const seconds = (s: number) =>
  s >= 3600 ? `${(s / 3600).toFixed(2)} h` : s >= 60 ? `${(s / 60).toFixed(1)} min` : `${s.toFixed(1)} s`;

export const HIST_BINS = 20;
/** Counts of values in [0, 1] over HIST_BINS equal bins (1 falls in the last). */
export function histogram(values: readonly number[]): number[] {
  const h = new Array<number>(HIST_BINS).fill(0);
  for (const v of values) h[Math.min(HIST_BINS - 1, Math.max(0, Math.floor(v * HIST_BINS)))]++;
  return h;
}

const stageTotal = (t: ClassRecord["timings"]) => t.pool_s + t.select_s + t.refine_s + t.write_s;

function table(rows: [string, string][]): string {
  return `<table class="kv"><tbody>${rows.map(([k, v]) => `<tr><th>${esc(k)}</th><td>${v}</td></tr>`).join("")}</tbody></table>`;
}

function configValue(v: unknown): string {
  if (Array.isArray(v) && v.length > 8)
    return esc(
      `${v.length} entries: ${v
        .slice(0, 3)
        .map((x) => (typeof x === "object" ? JSON.stringify(x) : String(x)))
        .join(", ")}, ...`,
    );
  return `<code>${esc(typeof v === "object" && v !== null ? JSON.stringify(v) : String(v))}</code>`;
}

/** Name of a selector class index: the run's class with that model index, else the index. */
function namer(run: RunData): (modelIndex: number) => string {
  const names = new Map(run.classes.map((c) => [c.modelIndex, c.name]));
  return (i) => names.get(i) ?? `#${i}`;
}

function summarySection(run: RunData): string {
  const done = run.classes.filter((c) => c.record);
  const items = done.flatMap((c) => c.record!.items);
  const filled = done.reduce((n, c) => n + c.record!.filled, 0);
  const refined = items.filter((it) => typeof it.lossBefore === "number" && typeof it.lossAfter === "number");
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const cards: [string, string][] = [
    ["classes", `${done.length} of ${run.classes.length}`],
    ["images", String(items.length)],
    ["images per class", esc(run.config.ipc)],
    ["filled in", `${filled}`],
    ["distillation time", seconds(done.reduce((s, c) => s + stageTotal(c.record!.timings), 0))],
    [
      "refinement loss, mean",
      refined.length
        ? `${num(mean(refined.map((it) => it.lossBefore)), 3)} → ${num(mean(refined.map((it) => it.lossAfter)), 3)}`
        : "no refinement",
    ],
  ];
  const missing = run.classes.filter((c) => !c.record);
  const status = run.complete
    ? `<p class="status ok">Finished run: every class is done (manifest.json).</p>`
    : `<p class="status warn">Run in progress or stopped: no manifest yet; ${missing.length} of ${run.classes.length} classes missing ` +
      `(${missing
        .slice(0, 20)
        .map((c) => esc(`${c.label} ${c.name}`))
        .join(", ")}${missing.length > 20 ? ", ..." : ""}). Model hashes are written with the manifest.</p>`;
  return `<section id="summary"><h2>Summary</h2>${status}<div class="cards">${cards.map(([k, v]) => `<div class="card"><div class="v">${v}</div><div class="k">${esc(k)}</div></div>`).join("")}</div></section>`;
}

function settingsSection(run: RunData): string {
  const m = run.manifest;
  const rows: [string, string][] = [["run folder", `<code>${esc(run.folder)}</code>`]];
  if (m) {
    rows.push(
      ["cao2", esc(m.tool.version)],
      ["libtorch", esc(m.tool.libtorch)],
      ["created", esc(m.created)],
      ["seed", esc(m.seeds.seed)],
      ["seed derivation", esc(m.seeds.derivation)],
    );
  }
  if (run.stateDir) rows.push(["run state", `<code>${esc(run.stateDir)}</code>`]);
  const config = Object.entries(run.config).map(([k, v]) => [k, configValue(v)] as [string, string]);
  let models = "";
  if (m) {
    const roles = (["dit", "vae", "selector"] as const).filter((r) => m.models[r]);
    models =
      `<h3>Models</h3><table class="grid-table"><thead><tr><th>role</th><th>file</th><th>sha256</th><th>bytes</th></tr></thead><tbody>` +
      roles
        .map(
          (r) =>
            `<tr><td>${r}</td><td><code>${esc(m.models[r].path)}</code></td><td><code class="hash">${esc(m.models[r].sha256)}</code></td><td>${esc(m.models[r].bytes)}</td></tr>`,
        )
        .join("") +
      `</tbody></table>` +
      table([
        ["selector preprocessing", configValue(m.models.selectorPreprocess)],
        ["latent scaling factor", esc(m.models.scalingFactor)],
        [
          "selector validation accuracy",
          m.models.selectorAccuracy === undefined ? "not recorded" : pct(m.models.selectorAccuracy),
        ],
      ]);
  }
  return `<section id="settings"><h2>Settings, models and versions</h2><div class="two">${table(rows)}${table(config)}</div>${models}</section>`;
}

function chartBox(kind: string, attrs: Record<string, string | number>, cls = "chart", label = ""): string {
  const a = Object.entries(attrs)
    .map(([k, v]) => ` data-${k}="${esc(v)}"`)
    .join("");
  return `<div class="${cls}"><canvas data-chart="${kind}"${a} role="img" aria-label="${esc(label)}"></canvas></div>`;
}

/**
 * One distilled image as the page script draws it (assets/report/report.js, `figure`): the grids are built in the
 * browser when their class scrolls near, because 30,000 image elements parsed up front make a 1,000-class report
 * open in tens of seconds.
 */
export interface GridItem {
  src: string;
  before?: string;
  diff?: string;
  alt: string;
  pool: number;
  /** The selector's prediction (a class name) and its confidence in the class, formatted. */
  pred: string;
  conf: string;
  loss: string;
  filled: boolean;
  wrong: boolean;
}

function gridItems(
  c: RunClass,
  images: ItemImages[],
  src: (name: string) => string,
  name: (i: number) => string,
): GridItem[] {
  const r = c.record!;
  return r.items.map((it, i) => ({
    src: src(images[i].image),
    ...(images[i].before ? { before: src(images[i].before!), diff: src(images[i].difference!) } : {}),
    alt: `${c.name}, image ${i}`,
    pool: it.poolIndex,
    pred: name(it.prediction),
    conf: pct(it.confidence),
    // Without refinement the losses are NaN, which JSON writes as null.
    loss:
      typeof it.lossBefore === "number" && typeof it.lossAfter === "number"
        ? `${num(it.lossBefore, 3)} → ${num(it.lossAfter, 3)}`
        : "not refined",
    // Selection keeps the recognised candidates first and fills the rest from the others.
    filled: i >= r.items.length - r.filled,
    wrong: it.prediction !== c.modelIndex,
  }));
}

function classSection(c: RunClass): string {
  const head = `<h3>${esc(c.label)} · ${esc(c.name)} <small>${esc(c.folder)}</small></h3>`;
  if (!c.record)
    return `<section class="class missing" id="class-${c.label}">${head}<p class="status warn">Missing: this class is not finished.</p></section>`;
  const r = c.record;
  const t = r.timings;
  const meta =
    `strategy ${esc(r.strategy)} · ${r.filled} filled in · refined with the ${esc(r.condition.kind)} label (${esc(r.condition.label)}) · ` +
    `pool ${r.pool.length}, ${r.pool.filter((p) => p.prediction === c.modelIndex).length} recognised · time ${seconds(stageTotal(t))} ` +
    `(pool ${seconds(t.pool_s)}, select ${seconds(t.select_s)}, refine ${seconds(t.refine_s)}, write ${seconds(t.write_s)})`;
  return (
    `<section class="class" id="class-${c.label}">${head}<p class="meta">${meta}</p><div class="class-body">` +
    `<div class="grid" data-class="${c.label}"></div>` +
    `${chartBox("hist", { class: c.label }, "chart small", `selector confidence, class ${c.label}`)}</div></section>`
  );
}

const columnOf = (e: EvalEntry) => `${e.record.config.protocol}-label ${e.record.config.arch}`;

function evalSection(evals: EvalEntry[]): string {
  const rows = evals.map((e, i) => {
    const c = e.record.config;
    return (
      `<tr><td>${esc(e.label)}</td><td>${esc(c.protocol)}</td><td>${esc(c.arch)} (${esc(c.norm)})</td><td>${c.ipc}</td><td>${c.epochs}</td>` +
      `<td>${e.record.repeats.length}</td><td class="n"><b>${meanStd(e.record.summary.best)}</b></td><td class="n">${meanStd(e.record.summary.final)}</td>` +
      `<td>${esc(e.record.test.name)}</td><td><a href="#curve-${i}">curves</a> · <code>${esc(e.path)}</code></td></tr>`
    );
  });
  const columns = [...new Set(evals.map(columnOf))];
  const ipcCharts = columns
    .filter((col) => new Set(evals.filter((e) => columnOf(e) === col).map((e) => e.record.config.ipc)).size > 1)
    .map(
      (col) =>
        `<div class="ipc-chart"><h4>${esc(col)}: best test top-1 vs images per class</h4>${chartBox("ipc", { column: col }, "chart", `accuracy vs IPC, ${col}`)}</div>`,
    );
  const curves = evals.map(
    (e, i) =>
      `<div class="curve" id="curve-${i}"><h4>${esc(e.label)} · ${esc(columnOf(e))} · IPC ${e.record.config.ipc}: ${meanStd(e.record.summary.best)}</h4>` +
      chartBox("curve", { eval: i }, "chart small", `test accuracy per repeat, ${e.label}`) +
      `</div>`,
  );
  return (
    `<section id="evaluation"><h2>Evaluation</h2><p>Best test top-1 (%) over each repeat's test epochs, mean ± sample std over repeats; final = at the last epoch.</p>` +
    `<table class="grid-table"><thead><tr><th>training set</th><th>protocol</th><th>student</th><th>IPC</th><th>epochs</th><th>repeats</th><th>best</th><th>final</th><th>test set</th><th>record</th></tr></thead><tbody>${rows.join("")}</tbody></table>` +
    (ipcCharts.length
      ? `<h3>Accuracy vs images per class</h3><div class="ipc-charts">${ipcCharts.join("")}</div>`
      : "") +
    `<h3>Test accuracy per repeat</h3><div class="curves">${curves.join("")}</div></section>`
  );
}

/** What the page script draws (charts and image grids), embedded in the page as JSON. */
function pageData(input: ReportInput, src: (name: string) => string) {
  const run = input.run;
  const done = run?.classes.filter((c) => c.record) ?? [];
  const name = run ? namer(run) : String;
  return {
    bins: HIST_BINS,
    amplify: input.amplify,
    grids: Object.fromEntries(done.map((c) => [c.label, gridItems(c, input.images.get(c.label)!, src, name)])),
    classes: Object.fromEntries(
      done.map((c) => [
        c.label,
        {
          name: c.name,
          pool: histogram(c.record!.pool.map((p) => p.confidence)),
          selected: histogram(c.record!.items.map((it) => it.confidence)),
        },
      ]),
    ),
    overall: {
      pool: histogram(done.flatMap((c) => c.record!.pool.map((p) => p.confidence))),
      selected: histogram(done.flatMap((c) => c.record!.items.map((it) => it.confidence))),
    },
    timing: {
      labels: done.map((c) => `${c.label} ${c.name}`),
      stages: (["pool_s", "select_s", "refine_s", "write_s"] as const).map((k) => ({
        stage: k.replace("_s", ""),
        seconds: done.map((c) => c.record!.timings[k]),
      })),
    },
    evals: input.evals.map((e) => ({
      label: e.label,
      column: columnOf(e),
      ipc: e.record.config.ipc,
      best: { mean: e.record.summary.best.mean, std: e.record.summary.best.std },
      repeats: e.record.repeats.map((r) => ({ repeat: r.repeat, curve: r.curve.map((p) => [p.epoch, p.top1]) })),
    })),
  };
}

export function renderPage(input: ReportInput, src: (name: string) => string): string {
  const run = input.run;
  const css = readFileSync(assetPath("report/report.css"), "utf8");
  const js = readFileSync(assetPath("report/report.js"), "utf8");
  const nav: [string, string][] = [];
  const body: string[] = [];
  if (run) {
    nav.push(["summary", "Summary"], ["settings", "Settings"], ["timing", "Time"], ["confidence", "Confidence"]);
    body.push(
      summarySection(run),
      settingsSection(run),
      `<section id="timing"><h2>Time per stage per class</h2>${chartBox("timing", {}, "chart wide", "seconds per stage per class")}</section>`,
      `<section id="confidence"><h2>Selector confidence, pool vs selected (all classes)</h2><p>The selector's probability of the class for every candidate of the pool, and for the candidates kept. Each class's own histogram is beside its images.</p>${chartBox("hist", { class: "all" }, "chart", "selector confidence, all classes")}</section>`,
    );
    if (input.evals.length) {
      nav.push(["evaluation", "Evaluation"]);
      body.push(evalSection(input.evals));
    }
    nav.push(["classes", "Classes"]);
    const hasBefore = [...input.images.values()].some((list) => list.some((i) => i.before));
    body.push(
      `<section id="classes"><h2>Distilled images per class</h2><p>Each image with its pool index, the selector's prediction and confidence before refinement, and the refinement loss before → after. ` +
        (hasBefore
          ? `Hover over or tap an image to see it before and after refinement and the difference amplified ×${input.amplify} (the paper's Figure 4).`
          : `The run did not keep the images before refinement (cao2 distill --save-pre-refine).`) +
        `</p>${run.classes.map(classSection).join("")}</section>`,
    );
  } else {
    nav.push(["evaluation", "Evaluation"]);
    body.push(evalSection(input.evals));
  }
  const data = JSON.stringify(pageData(input, src)).replace(/</g, "\\u003c");
  return (
    `<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">` +
    `<meta name="generator" content="cao2 ${esc(input.version)}"><title>${esc(input.title)}</title><style>${css}</style></head><body>` +
    `<header><h1>${esc(input.title)}</h1><p class="sub">cao2 ${esc(input.version)} · generated ${esc(input.generated)}</p>` +
    `<nav>${nav.map(([id, t]) => `<a href="#${id}">${t}</a>`).join("")}</nav></header><main>${body.join("")}</main>` +
    `<script>${scriptText(chartJsSource())}</script><script type="application/json" id="report-data">${data}</script><script>${scriptText(js)}</script></body></html>\n`
  );
}
