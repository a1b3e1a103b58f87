// `cao2 report` as a library call: a run folder and/or evaluation records in, one HTML file out (images inlined or in
// a folder beside it). The page is rendered here; its charts are drawn in the browser by Chart.js from numbers the
// page carries (see page.ts).
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { InputError } from "../errors.js";
import { imageFolderDigest } from "../io/datasets/imagefolder.js";
import { writeFileAtomic } from "../util/atomic.js";
import { packageVersion } from "../util/version.js";
import { amplifiedDifference, type ImageMode, ImageSet } from "./images.js";
import { renderPage } from "./page.js";
import { checkSameTrainingSet, type EvalEntry, readEvalRecord } from "./read-evals.js";
import { preRefinePath, readRun, type RunData } from "./read-run.js";

export interface ReportOptions {
  /** A cao2 distill output folder; optional when evaluation records are given. */
  run?: string;
  /** The run's state folder, when cao2 distill was given --state and the run has no manifest yet. */
  state?: string;
  evals?: { path: string; label?: string }[];
  out: string;
  images?: ImageMode;
  /** Factor on |after - before| in the pre-refinement view. */
  amplify?: number;
  title?: string;
}

/** Images of one distilled image in the page (names in the ImageSet). */
export interface ItemImages {
  image: string;
  before?: string;
  difference?: string;
}

export interface ReportInput {
  title: string;
  generated: string;
  version: string;
  run?: RunData;
  /** Per class label, per item: the image names. */
  images: Map<number, ItemImages[]>;
  evals: EvalEntry[];
  amplify: number;
}

export interface ReportResult {
  out: string;
  imagesMode: "inline" | "beside";
  images: number;
  htmlBytes: number;
  missingClasses: number[];
}

function readImage(path: string, what: string): Uint8Array {
  try {
    return readFileSync(path);
  } catch (e) {
    throw new InputError(`${path}: cannot read ${what} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
}

/** Gathers a run's images: each distilled PNG and, where the run kept them, the one before refinement and the difference. */
function collectImages(run: RunData, set: ImageSet, amplify: number): Map<number, ItemImages[]> {
  const out = new Map<number, ItemImages[]>();
  for (const c of run.classes) {
    if (!c.record) continue;
    out.set(
      c.label,
      c.record.items.map((it) => {
        const after = readImage(join(run.folder, it.file), `an image the manifest lists (class ${c.label})`);
        const images: ItemImages = { image: set.add(`after/${it.file}`, after) };
        const prePath = preRefinePath(run, it.file);
        if (prePath) {
          const before = readImage(prePath, `the image before refinement (class ${c.label})`);
          images.before = set.add(`before/${it.file}`, before);
          images.difference = set.add(`difference/${it.file}`, amplifiedDifference(before, after, amplify, prePath));
        }
        return images;
      }),
    );
  }
  return out;
}

/** Reads everything first (so bad input fails before anything is written), then writes the images and the page. */
export function writeReport(options: ReportOptions): ReportResult {
  const amplify = options.amplify ?? 10;
  if (!(amplify > 0)) throw new InputError(`the difference's amplification must be positive, got ${amplify}`);
  if (!options.run && !options.evals?.length)
    throw new InputError("nothing to report: give a run folder, evaluation records, or both");
  const run = options.run === undefined ? undefined : readRun(options.run, options.state);
  const evals = (options.evals ?? []).map((e) => readEvalRecord(e.path, e.label));
  if (run && evals.length) {
    const digest = imageFolderDigest(run.folder);
    for (const e of evals) checkSameTrainingSet(e, run.folder, digest);
  }
  const set = new ImageSet();
  const images = run ? collectImages(run, set, amplify) : new Map<number, ItemImages[]>();
  const mode = set.resolveMode(options.images ?? "auto");
  const html = renderPage(
    {
      title:
        options.title ??
        (run ? `cao2 report: ${resolve(run.folder)}` : `cao2 report: ${evals.length} evaluation records`),
      generated: new Date().toISOString(),
      version: packageVersion(),
      run,
      images,
      evals,
      amplify,
    },
    (name) => set.src(name, mode, options.out),
  );
  set.write(mode, options.out);
  writeFileAtomic(options.out, html);
  return {
    out: options.out,
    imagesMode: mode,
    images: set.count,
    htmlBytes: Buffer.byteLength(html),
    missingClasses: run ? run.classes.filter((c) => !c.record).map((c) => c.label) : [],
  };
}
