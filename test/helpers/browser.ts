// Headless Chromium for the report's tests and benchmark: Debian's `chromium` driven by playwright-core (no browser
// download). The flags keep Chromium off the network it would otherwise reach for (component updates, sync, field
// trials), which a closed machine refuses and which would show up as failed requests.
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { BrowserContext } from "playwright-core";

export const CHROMIUM = process.env.CAO2_CHROMIUM ?? "/usr/bin/chromium";

/** Why the browser tests cannot run here, or undefined when they can. */
export function browserMissing(): string | undefined {
  return existsSync(CHROMIUM)
    ? undefined
    : `${CHROMIUM} not found: install Debian's chromium (apt-get install chromium; .ci/run does) or set CAO2_CHROMIUM`;
}

export interface Chromium {
  context: BrowserContext;
  close(): Promise<void>;
}

/** A fresh Chromium with its own (new, empty) profile folder, removed on close; offline, as a report must open. */
export async function launchChromium(viewport = { width: 1366, height: 900 }): Promise<Chromium> {
  const { chromium } = await import("playwright-core");
  const profile = mkdtempSync(join(tmpdir(), "cao2-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport,
    offline: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  return {
    context,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

export interface OpenedReport {
  /** From navigation to the load event (lazy images below the fold are not waited for). */
  loadMs: number;
  consoleErrors: string[];
  failedRequests: string[];
  /** Every <img> of the page, those that decoded (naturalWidth > 0), and the distilled images among them. */
  images: number;
  decoded: number;
  distilled: number;
  /** Chart canvases, and those with pixels drawn after scrolling each into view. */
  charts: number;
  drawnCharts: number;
  /** Sections of classes marked missing. */
  missingClasses: number;
}

/** Opens a report file, loads every image and chart, and says what failed. */
export async function openReport(c: Chromium, file: string, o: { screenshot?: string } = {}): Promise<OpenedReport> {
  const page = await c.context.newPage();
  const consoleErrors: string[] = [];
  const failedRequests: string[] = [];
  page.on("console", (m) => m.type() === "error" && consoleErrors.push(m.text()));
  page.on("pageerror", (e) => consoleErrors.push(String(e)));
  page.on("requestfailed", (r) => failedRequests.push(`${r.url().slice(0, 120)}: ${r.failure()?.errorText}`));
  page.on("response", (r) => r.status() >= 400 && failedRequests.push(`${r.url().slice(0, 120)}: HTTP ${r.status()}`));
  const t0 = performance.now();
  await page.goto(`file://${file}`, { waitUntil: "load" });
  const loadMs = performance.now() - t0;
  const counts = await page.evaluate(async () => {
    // Grids and charts are made as they come near the screen: bring each there, as a reader scrolling would.
    const frame = () => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
    for (const el of document.querySelectorAll("canvas, .grid[data-class]")) {
      el.scrollIntoView();
      await frame();
    }
    const imgs = [...document.querySelectorAll("img")];
    await Promise.all(imgs.map((img) => img.decode().catch(() => undefined)));
    const canvases = [...document.querySelectorAll("canvas")];
    const drawn = (cv: HTMLCanvasElement) => {
      const ctx = cv.getContext("2d");
      if (!ctx || cv.width === 0 || cv.height === 0) return false;
      const px = ctx.getImageData(0, 0, cv.width, cv.height).data;
      for (let i = 3; i < px.length; i += 4) if (px[i] !== 0) return true;
      return false;
    };
    window.scrollTo(0, 0);
    return {
      images: imgs.length,
      decoded: imgs.filter((i) => i.complete && i.naturalWidth > 0).length,
      distilled: document.querySelectorAll("img.distilled").length,
      charts: canvases.length,
      drawnCharts: canvases.filter(drawn).length,
      missingClasses: document.querySelectorAll("section.class.missing").length,
    };
  });
  if (o.screenshot) await page.screenshot({ path: o.screenshot, fullPage: true });
  await page.close();
  return { loadMs, consoleErrors, failedRequests, ...counts };
}
