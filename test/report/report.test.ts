// `cao2 report` without a browser: what the page holds for made-up runs in both run-state layouts, finished or not;
// images inlined or beside the page; evaluation records checked against the run's images; bad input refused on one
// line with exit code 2. The page as a browser shows it is tested in browser.test.ts.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { InputError } from "../../src/errors.js";
import { imageFolderDigest, loadImageFolder } from "../../src/io/datasets/imagefolder.js";
import { decodePng, encodePng } from "../../src/io/png.js";
import { amplifiedDifference } from "../../src/report/images.js";
import { type GridItem, histogram } from "../../src/report/page.js";
import { writeReport } from "../../src/report/report.js";
import { makeFakeRun } from "../helpers/fake-run.js";
import { ROOT } from "../helpers/fixtures.js";

const CLI = join(ROOT, "dist", "src", "cli", "main.js");
const dir = mkdtempSync(join(tmpdir(), "cao2-report-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const count = (html: string, re: RegExp) => (html.match(re) ?? []).length;
/** The JSON the page script draws from. */
const pageData = (html: string) =>
  JSON.parse(/<script type="application\/json" id="report-data">(.*?)<\/script>/s.exec(html)![1]);
/** Every image the page's grids show, class by class. */
const gridItems = (html: string): GridItem[] =>
  Object.values(pageData(html).grids as Record<string, GridItem[]>).flat();
const cao2 = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8", cwd: dir });

/** An evaluation record with the fields the report reads, for a training set of the given digest. */
function record(path: string, o: { name: string; sha256: string; ipc: number; arch?: string; best?: number }): string {
  const best = o.best ?? 50;
  const repeats = [0, 1].map((repeat) => ({
    repeat,
    curve: [1, 2, 3].map((epoch) => ({ epoch, top1: best - 3 + epoch + repeat })),
  }));
  const r = {
    format: "cao2-evaluation-record/1",
    config: { protocol: "hard", arch: o.arch ?? "convnet3", norm: "instance", ipc: o.ipc, epochs: 3 },
    data: { name: o.name, source: { format: "image-folder", path: o.name, fileCount: 6, sha256: o.sha256 } },
    test: { name: "fashion-mnist" },
    repeats,
    summary: {
      best: { mean: best + 0.5, std: 0.7, values: [best, best + 1] },
      final: { mean: best + 0.5, std: 0.7, values: [best, best + 1] },
    },
  };
  writeFileSync(path, JSON.stringify(r));
  return path;
}

describe("cao2 report", () => {
  test("a finished run (state inside, older layout): every image, the pre-refinement view, markers and settings", () => {
    const run = join(dir, "inside");
    const m = makeFakeRun(run, { classes: 3, ipc: 2, preRefine: true, layout: "inside" });
    const out = join(dir, "inside.html");
    const r = writeReport({ run, out });
    assert.equal(r.imagesMode, "inline");
    assert.deepEqual(r.missingClasses, []);
    const html = readFileSync(out, "utf8");
    const items = gridItems(html);
    assert.equal(items.length, m.images);
    assert.equal(
      items.filter((it) => it.before && it.diff).length,
      m.images,
      "each image before refinement and the amplified difference",
    );
    assert.deepEqual(
      items.map((it) => it.filled),
      [false, false, false, false, false, true],
      "class 2 has one filled-in image",
    );
    assert.ok(
      items.every((it) => [it.src, it.before, it.diff].every((u) => u!.startsWith("data:image/png;base64,"))),
      "inlined",
    );
    assert.doesNotMatch(html, /(src|href)="(https?:)?\/\//, "nothing to fetch from a network");
    assert.match(html, /window\.Chart=/, "Chart.js is inlined");
    assert.deepEqual(
      { ...items[1], src: "", before: "", diff: "" },
      {
        src: "",
        before: "",
        diff: "",
        alt: "class 0, image 1",
        pool: 2,
        pred: "class 0",
        conf: "94.0%",
        loss: "2.100 → 1.600",
        filled: false,
        wrong: false,
      },
    );
    assert.equal(items[5].pred, "class 0", "the filled-in image of class 2 was taken for class 0");
    assert.equal(count(html, /class="grid" data-class=/g), 3);
    for (const k of ["0".repeat(64), "poolFactor", "made up"]) assert.ok(html.includes(k), k);
    assert.equal(count(html, /data-chart="hist"/g), 1 + 3, "overall and one per class");
    assert.equal(count(html, /data-chart="timing"/g), 1);
    assert.equal(readdirSync(dir).filter((f) => f.startsWith("inside.html.")).length, 0, "no temporary files left");
  });

  test("the state beside the output (newer layout), finished and in progress; missing classes are marked", () => {
    const done = join(dir, "sibling");
    makeFakeRun(done, { classes: 2, ipc: 2, preRefine: true, layout: "sibling" });
    let html =
      (writeReport({ run: done, out: join(dir, "sibling.html") }), readFileSync(join(dir, "sibling.html"), "utf8"));
    assert.equal(
      gridItems(html).filter((it) => it.before).length,
      4,
      "pre-refinement images found through the manifest",
    );

    const running = join(dir, "running");
    makeFakeRun(running, { classes: 4, ipc: 2, preRefine: true, layout: "sibling", unfinished: [1, 3] });
    assert.ok(!existsSync(join(running, "manifest.json")));
    const r = writeReport({ run: running, out: join(dir, "running.html") });
    assert.deepEqual(r.missingClasses, [1, 3]);
    html = readFileSync(join(dir, "running.html"), "utf8");
    assert.equal(count(html, /<section class="class missing"/g), 2);
    assert.equal(gridItems(html).length, 4);
    assert.equal(
      gridItems(html).filter((it) => it.before).length,
      4,
      "the sibling state folder is found without a manifest",
    );
    assert.match(html, /2 of 4 classes missing \(1 class 1, 3 class 3\)/);

    // A state folder of cao2 distill --state, elsewhere: given to the report while the run has no manifest.
    const elsewhere = join(dir, "state-elsewhere");
    renameSync(`${running}.cao2`, elsewhere);
    assert.throws(() => writeReport({ run: running, out: join(dir, "lost.html") }), /not a cao2 run/);
    assert.deepEqual(
      writeReport({ run: running, state: elsewhere, out: join(dir, "running.html") }).missingClasses,
      [1, 3],
    );
  });

  test("images beside the page: a folder <name>_files/ with every image, referenced by relative paths", () => {
    const run = join(dir, "inside");
    const out = join(dir, "beside.html");
    const r = writeReport({ run, out, images: "beside" });
    assert.equal(r.imagesMode, "beside");
    const html = readFileSync(out, "utf8");
    assert.equal(count(html, /data:image/g), 0);
    const srcs = gridItems(html).flatMap((it) => [it.src, it.before!, it.diff!]);
    assert.equal(srcs.length, 18);
    for (const s of srcs) assert.ok(existsSync(join(dir, decodeURIComponent(s))), s);
    assert.ok(srcs.every((s) => s.startsWith("beside_files/")));
    // Inline again: the folder of the earlier report goes.
    writeReport({ run, out, images: "inline" });
    assert.ok(!existsSync(join(dir, "beside_files")));
  });

  test("the amplified difference is |after - before| x factor, clamped; histograms bin [0, 1] in twentieths", () => {
    const png = (v: number[]) => encodePng({ width: 2, height: 2, channels: 1, data: Uint8Array.from(v) });
    const d = decodePng(amplifiedDifference(png([10, 20, 30, 0]), png([12, 10, 30, 200]), 10, "x"));
    assert.deepEqual([...d.data], [20, 100, 0, 255]);
    assert.throws(
      () =>
        amplifiedDifference(
          png([1, 2, 3, 4]),
          encodePng({ width: 1, height: 1, channels: 1, data: Uint8Array.of(1) }),
          10,
          "img",
        ),
      InputError,
    );
    const h = histogram([0, 0.049, 0.05, 0.5, 0.999, 1]);
    assert.equal(h.length, 20);
    assert.deepEqual([h[0], h[1], h[10], h[19]], [2, 1, 1, 2]);
  });

  test("the run folder's digest is the one cao2 evaluate records for it", () => {
    const run = join(dir, "inside");
    assert.equal(imageFolderDigest(run), loadImageFolder(run).source.sha256);
  });

  test("evaluation records: this run's are drawn, another training set's is refused by name", () => {
    const run = join(dir, "inside");
    const digest = imageFolderDigest(run);
    const own = record(join(dir, "own.json"), { name: run, sha256: digest, ipc: 2 });
    const r = writeReport({ run, evals: [{ path: own }], out: join(dir, "with-eval.html") });
    const html = readFileSync(r.out, "utf8");
    assert.equal(count(html, /data-chart="curve"/g), 1);
    assert.match(html, /50\.50 ± 0\.70/);

    const other = record(join(dir, "other.json"), { name: ".runs/cao2/ipc50", sha256: "f".repeat(64), ipc: 50 });
    assert.throws(
      () => writeReport({ run, evals: [{ path: other }], out: join(dir, "refused.html") }),
      (e: Error) => {
        assert.ok(e instanceof InputError);
        assert.match(e.message, /other\.json: evaluates the training set '\.runs\/cao2\/ipc50'.*not the images of/);
        return true;
      },
    );
    assert.ok(!existsSync(join(dir, "refused.html")), "nothing written");
  });

  test("records without a run: the accuracy-vs-IPC chart per protocol and student, one line per training set", () => {
    const evals = [1, 10, 50].flatMap((ipc) =>
      ["dit", "cao2"].map((set) => ({
        path: record(join(dir, `${set}-${ipc}.json`), {
          name: `.runs/${set}/ipc${ipc}`,
          sha256: "0",
          ipc,
          best: 40 + ipc / 2,
        }),
        label: set,
      })),
    );
    evals.push({
      path: record(join(dir, "r18.json"), { name: "x", sha256: "0", ipc: 10, arch: "resnet18" }),
      label: "dit",
    });
    const r = writeReport({ evals, out: join(dir, "table.html") });
    const html = readFileSync(r.out, "utf8");
    assert.equal(count(html, /data-chart="ipc"/g), 1, "only the column with several IPCs");
    assert.equal(count(html, /data-chart="curve"/g), 7);
    const data = pageData(html);
    assert.deepEqual(data.grids, {});
    assert.deepEqual(
      data.evals
        .filter((e: { column: string }) => e.column === "hard-label convnet3")
        .map((e: { label: string; ipc: number }) => `${e.label}@${e.ipc}`),
      ["dit@1", "cao2@1", "dit@10", "cao2@10", "dit@50", "cao2@50"],
    );
  });

  test("a folder that is not a cao2 run is refused by name: empty, missing, a baseline's manifest", () => {
    mkdirSync(join(dir, "empty"));
    cpSync(join(dir, "inside"), join(dir, "baseline"), { recursive: true });
    writeFileSync(join(dir, "baseline", "manifest.json"), JSON.stringify({ format: "cao2-random-real/1", images: [] }));
    const cases: [string, RegExp][] = [
      ["empty", /^empty: not a cao2 run \(no manifest.json, and no run state in .*\)$/],
      ["nope", /^nope: no such folder \(expected the --out folder of cao2 distill\)$/],
      ["baseline", /^baseline\/manifest\.json: not a cao2 distill manifest/],
    ];
    const cwd = process.cwd();
    process.chdir(dir);
    try {
      for (const [run, re] of cases)
        assert.throws(
          () => writeReport({ run, out: join(dir, `${run}.html`) }),
          (e: Error) => e instanceof InputError && re.test(e.message),
          run,
        );
      assert.throws(
        () => writeReport({ run: "inside", evals: [{ path: "inside/classes.txt" }], out: "x.html" }),
        /inside\/classes\.txt: not readable as JSON/,
      );
    } finally {
      process.chdir(cwd);
    }
    assert.ok(
      !existsSync(join(dir, "x.html")) &&
        !existsSync(join(dir, "empty.html")) &&
        !existsSync(join(dir, "baseline.html")),
    );
  });

  test("through the CLI: bad input is one line with exit code 2, a good report says what it wrote", () => {
    const cases: [string[], RegExp][] = [
      [["empty"], /^cao2 report: error: empty: not a cao2 run /],
      [
        ["inside", "--eval", "other.json", "--out", "x.html"],
        /^cao2 report: error: other\.json: evaluates the training set '\.runs\/cao2\/ipc50' /,
      ],
      [["inside", "--out", "inside/r.html"], /^cao2 report: error: --out inside\/r\.html: inside the run folder/],
      [["--eval", "own.json"], /^cao2 report: error: --out is required when there is no run folder\n$/],
      [[], /^cao2 report: error: give a run folder/],
    ];
    for (const [args, re] of cases) {
      const r = cao2("report", ...args);
      assert.equal(r.status, 2, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, re, args.join(" "));
      assert.equal(r.stderr.split("\n").length, 2, "one line");
    }
    assert.ok(!existsSync(join(dir, "x.html")) && !existsSync(join(dir, "empty-report.html")));
    const ok = cao2("report", "inside", "--eval", "own.json");
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stdout, /^wrote .*inside-report\.html \(0\.\d\d MB, 18 images inlined\)\n$/);
  });
});
