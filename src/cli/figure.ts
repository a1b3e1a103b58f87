// `cao2 figure`: the paper's Figure 4 for a distilled set, from a `cao2 distill --save-pre-refine` run: per class, the
// selected images before refinement, after it, and their absolute difference amplified (refinement moves images by
// little, so the difference is invisible at scale 1).
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { InputError } from "../errors.js";
import { decodeImage, imageToTensor, tensorToPng } from "../io/image.js";
import { cat, type Tensor, tidy } from "../torch/index.js";
import { writeFileAtomic } from "../util/atomic.js";
import { readRun } from "../report/read-run.js";
import { type FlagSpecs, parseCommand, UsageError } from "./args.js";
import { checkOutputFile } from "./outputs.js";
import { pickClasses } from "./distill.js";
import { grid } from "./sample.js";
import { applyReadLimits, READ_LIMIT_FLAGS } from "./limits.js";
import { SUMMARIES } from "./commands.js";

const FLAGS = {
  run: {
    type: "string",
    help: "A distilled set written with --save-pre-refine (its folder; the images before refinement are read from the run's state folder, which its manifest names)",
  },
  classes: { type: "list", help: "Classes to show: labels, ranges (0-3), ids or names", defaultText: "the first 4" },
  "per-class": { type: "int", help: "Images per class", default: 2, min: 1, max: 100 },
  amplify: { type: "number", help: "Factor on the absolute difference", default: 10, min: 0, exclusiveMin: true },
  scale: { type: "int", help: "Nearest-neighbour enlargement of every image", default: 3, min: 1, max: 64 },
  out: { type: "string", help: "PNG to write" },
  ...READ_LIMIT_FLAGS,
} satisfies FlagSpecs;

function readPng(path: string, what: string): Tensor {
  if (!existsSync(path)) throw new InputError(`${path}: missing (${what})`);
  return imageToTensor(decodeImage(readFileSync(path), path));
}

export async function run(argv: string[]): Promise<number> {
  const a = parseCommand(
    argv,
    "cao2 figure --run <distilled folder> --out <png> [--classes 0-3] [--per-class 2] [--amplify 10]",
    SUMMARIES.figure,
    FLAGS,
  );
  if (!a) return 0;
  applyReadLimits(a);
  if (!a.run) throw new UsageError("--run is required: a folder written by cao2 distill --save-pre-refine");
  if (!a.out) throw new UsageError("--out is required: the PNG to write");
  checkOutputFile("--out", a.out);
  // The report's reader checks the manifest (a corrupt or foreign one is one line naming it) and finds the state folder.
  const runData = readRun(a.run);
  if (!runData.complete) throw new InputError(`${a.run}: no manifest.json (not a finished cao2 distill output)`);
  if (!runData.config.savePreRefine)
    throw new InputError(
      `${a.run}: distilled without --save-pre-refine, so the images before refinement were not kept`,
    );
  if (!runData.stateDir)
    throw new InputError(`${a.run}: its state folder is missing, so the images before refinement cannot be read`);
  const preRefine = join(runData.stateDir, "pre-refine");
  const classes = pickClasses(runData.classes, a.classes ?? runData.classes.slice(0, 4).map((c) => `${c.label}`));
  const k = a.perClass!;
  const triplets: Tensor[] = [];
  for (const c of classes) {
    const dir = join(a.run, c.folder);
    const files = readdirSync(dir)
      .filter((f) => f.endsWith(".png"))
      .sort()
      .slice(0, k);
    if (files.length < k) throw new InputError(`${dir}: has ${files.length} images, fewer than --per-class ${k}`);
    for (const f of files) {
      const after = readPng(join(dir, f), `class ${c.label} after refinement`);
      const before = readPng(join(preRefine, c.folder, f), `class ${c.label} before refinement`);
      triplets.push(
        tidy(() =>
          cat([before, after, after.sub(before).abs().mul(a.amplify!).clamp(0, 1)].map((t) => t.unsqueeze(0))),
        ),
      );
    }
  }
  const s = a.scale!;
  const image = tidy(() => {
    const all = cat(triplets); // [3 * images, C, H, W]: before, after, difference of each image in turn
    const [n, ch, h, w] = all.shape;
    const big = all
      .view(n, ch, h, 1, w, 1)
      .expand(n, ch, h, s, w, s)
      .reshape(n, ch, h * s, w * s);
    return grid(big, 3 * k); // one row per class
  });
  writeFileAtomic(a.out, tensorToPng(image));
  process.stdout.write(
    `wrote ${a.out}: ${classes.length} classes x ${k} images, each as before | after | |after - before| x ${a.amplify}\n`,
  );
  return 0;
}
