// `npm run bench -- report`: the report of a 1,000-class run (a made-up manifest with placeholder images, IPC 10,
// pre-refinement images kept) in Debian's headless Chromium. The bars: the page opens in under 5 s and its
// HTML stays under 50 MB with the images beside it. Measured: building the report, the HTML and image-folder sizes,
// and, over fresh pages, the time from navigation to the load event plus two animation frames (the first screen
// painted with its charts); then one full pass that loads every image and draws every chart, checking nothing failed.
//   npm run bench -- report [--classes 1000] [--ipc 10] [--size 32] [--images beside|inline] [--opens 3]
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { writeReport } from "../src/report/report.js";
import { writeJsonAtomic } from "../src/util/atomic.js";
import { browserMissing, launchChromium, openReport } from "../test/helpers/browser.js";
import { makeFakeRun } from "../test/helpers/fake-run.js";
import { median } from "./common.js";

const BARS = { open_s: 5, html_bytes: 50 * 2 ** 20 };

function folderBytes(dir: string): { files: number; bytes: number } {
  let files = 0;
  let bytes = 0;
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!e.isFile()) continue;
    files++;
    bytes += statSync(join(e.parentPath, e.name)).size;
  }
  return { files, bytes };
}

export async function run(args: string[]): Promise<void> {
  const opt = { classes: 1000, ipc: 10, size: 32, images: "beside", opens: 3 };
  for (let i = 0; i < args.length; i += 2) {
    const k = args[i].replace(/^--/, "") as keyof typeof opt;
    if (!(k in opt) || args[i + 1] === undefined)
      throw new Error(`bench report: unknown or valueless argument ${args[i]}`);
    (opt as Record<string, string | number>)[k] = k === "images" ? args[i + 1] : Number(args[i + 1]);
  }
  const missing = browserMissing();
  if (missing) throw new Error(`bench report needs Chromium: ${missing}`);
  const dir = mkdtempSync(join(tmpdir(), "cao2-bench-report-"));
  try {
    const runDir = join(dir, "run");
    let t0 = performance.now();
    const m = makeFakeRun(runDir, {
      classes: opt.classes,
      ipc: opt.ipc,
      size: opt.size,
      preRefine: true,
      layout: "sibling",
    });
    const generate_s = (performance.now() - t0) / 1000;
    const html = join(dir, "report.html");
    t0 = performance.now();
    const r = writeReport({ run: runDir, out: html, images: opt.images as "beside" | "inline" });
    const build_s = (performance.now() - t0) / 1000;
    const beside = r.imagesMode === "beside" ? folderBytes(join(dir, "report_files")) : { files: 0, bytes: 0 };
    console.log(
      `${opt.classes} classes x ${opt.ipc}: ${m.images} images; report built in ${build_s.toFixed(1)} s: HTML ${(r.htmlBytes / 2 ** 20).toFixed(1)} MB, ${beside.files} image files beside it (${(beside.bytes / 2 ** 20).toFixed(1)} MB)`,
    );

    const browser = await launchChromium();
    try {
      // Wall time, and the renderer's CPU time (Chrome's ProcessTime metric), which a loaded machine inflates less.
      const opens: number[] = [];
      const cpu: number[] = [];
      for (let k = 0; k < opt.opens; k++) {
        const page = await browser.context.newPage();
        const cdp = await browser.context.newCDPSession(page);
        await cdp.send("Performance.enable");
        const processTime = async () =>
          (await cdp.send("Performance.getMetrics")).metrics.find((x) => x.name === "ProcessTime")?.value ?? NaN;
        const c0 = await processTime();
        const s = performance.now();
        await page.goto(`file://${html}`, { waitUntil: "load", timeout: 120_000 });
        await page.evaluate(() => new Promise((res) => requestAnimationFrame(() => requestAnimationFrame(res))));
        opens.push((performance.now() - s) / 1000);
        cpu.push((await processTime()) - c0);
        await page.close();
        console.log(`open ${k + 1}: ${opens[k].toFixed(2)} s (renderer CPU ${cpu[k].toFixed(2)} s)`);
      }
      t0 = performance.now();
      const full = await openReport(browser, html);
      const full_s = (performance.now() - t0) / 1000;
      const ok =
        full.consoleErrors.length === 0 &&
        full.failedRequests.length === 0 &&
        full.decoded === full.images &&
        full.distilled === m.images &&
        full.drawnCharts === full.charts;
      console.log(
        `full pass (${full_s.toFixed(1)} s): ${full.decoded}/${full.images} images decoded, ${full.distilled} distilled, ${full.drawnCharts}/${full.charts} charts drawn, ` +
          `${full.consoleErrors.length} console errors, ${full.failedRequests.length} failed requests`,
      );
      const open_s = median(opens);
      const result = {
        settings: opt,
        images: m.images,
        generate_s,
        build_s,
        images_mode: r.imagesMode,
        html_bytes: r.htmlBytes,
        beside_files: beside.files,
        beside_bytes: beside.bytes,
        open_s: opens,
        open_median_s: open_s,
        open_renderer_cpu_s: cpu,
        full_pass: {
          seconds: full_s,
          ...full,
          consoleErrors: full.consoleErrors.slice(0, 5),
          failedRequests: full.failedRequests.slice(0, 5),
        },
        bars: BARS,
        meets: { open: open_s < BARS.open_s, html: r.htmlBytes < BARS.html_bytes, clean: ok },
        chromium: browser.context.browser()?.version() ?? "unknown",
        date: new Date().toISOString(),
        cpus: cpus().length,
        loadavg: loadavg(),
      };
      console.log(
        `median open ${open_s.toFixed(2)} s (bar < ${BARS.open_s} s), HTML ${(r.htmlBytes / 2 ** 20).toFixed(1)} MB (bar < 50 MB), page clean: ${ok}`,
      );
      mkdirSync(join("bench", "results"), { recursive: true });
      const name = opt.classes === 1000 && opt.images === "beside" ? "report" : `report-${opt.classes}-${opt.images}`;
      writeJsonAtomic(join("bench", "results", `${name}.json`), result);
      console.log(`wrote bench/results/${name}.json`);
    } finally {
      await browser.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true }); // the run's state folder lies beside the run, inside dir
  }
}
