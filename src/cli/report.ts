// `cao2 report`: one HTML report of a distillation run (images, selector confidence, refinement, settings, time per
// stage) and of its evaluation records (accuracy curves, accuracy vs IPC), viewable offline.
import { resolve } from "node:path";
import { IMAGE_MODES, type ImageMode } from "../report/images.js";
import { type FlagSpecs, parseCommand, UsageError } from "./args.js";
import { checkOutputFile } from "./outputs.js";
import { SUMMARIES } from "./commands.js";

const FLAGS = {
  eval: { type: "list", help: "Evaluation record(s) from cao2 evaluate --json; repeat the flag or separate by commas" },
  state: {
    type: "string",
    help: "The run's state folder, if cao2 distill was given --state (finished runs name it in their manifest)",
    defaultText: "<run folder>.cao2, or <run folder>/.cao2 of older runs",
  },
  out: { type: "string", help: "HTML file to write", defaultText: "<run folder>-report.html beside the run" },
  images: {
    type: "string",
    choices: IMAGE_MODES,
    help: "Images inlined into the HTML, or in a folder <out>_files/ beside it (auto: inline up to 8 MB)",
    default: "auto",
  },
  amplify: {
    type: "number",
    help: "Factor on |after - before| in the pre-refinement view",
    default: 10,
    min: 0,
    exclusiveMin: true,
  },
  title: { type: "string", help: "Page title", defaultText: "the run folder" },
} satisfies FlagSpecs;

const USAGE =
  "cao2 report <run folder> [--eval record.json ...] [--out report.html]   |   cao2 report --eval a.json --eval b.json --out report.html";

/** --eval may be given several times; the shared parser keeps only a flag's last value, so they are taken out first. */
function takeEvals(argv: readonly string[]): { rest: string[]; evals: string[] } {
  const rest: string[] = [];
  const evals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--") {
      rest.push(...argv.slice(i));
      break;
    }
    if (a.startsWith("--eval=")) evals.push(a.slice("--eval=".length));
    else if (a === "--eval") {
      const v = argv[i + 1];
      if (v === undefined || v.startsWith("--")) throw new UsageError(`--eval needs a value (${FLAGS.eval.help})`);
      evals.push(v);
      i++;
    } else rest.push(a);
  }
  return {
    rest,
    evals: evals
      .flatMap((v) => v.split(","))
      .map((v) => v.trim())
      .filter((v) => v.length > 0),
  };
}

export async function run(argv: string[]): Promise<number> {
  const { rest, evals } = takeEvals(argv);
  const a = parseCommand(rest, USAGE, SUMMARIES.report, FLAGS, 1);
  if (!a) return 0;
  const folder = a._[0];
  if (folder === undefined && evals.length === 0)
    throw new UsageError("give a run folder (the --out of cao2 distill), evaluation records (--eval), or both");
  if (folder === undefined && a.out === undefined)
    throw new UsageError("--out is required when there is no run folder");
  const out = a.out ?? `${resolve(folder!)}-report.html`;
  if (!/\.html?$/i.test(out)) throw new UsageError(`--out ${out}: expected a .html file`);
  checkOutputFile("--out", out);
  if (folder !== undefined && resolve(out, "..") === resolve(folder))
    throw new UsageError(
      `--out ${out}: inside the run folder, the report (and its image folder) would become part of the ImageFolder; write it beside the run`,
    );
  // Loaded only now: reading records and hashing the run's images bring in libtorch, which usage errors do not need.
  const { writeReport } = await import("../report/report.js");
  const r = writeReport({
    run: folder,
    state: a.state,
    evals: evals.map((path) => ({ path })),
    out,
    images: a.images as ImageMode,
    amplify: a.amplify,
    title: a.title,
  });
  const missing = r.missingClasses.length
    ? `; ${r.missingClasses.length} class(es) not finished yet, marked as missing`
    : "";
  process.stdout.write(
    `wrote ${r.out} (${(r.htmlBytes / 2 ** 20).toFixed(2)} MB, ${r.images} images ${r.imagesMode === "inline" ? "inlined" : `in ${r.out.replace(/\.html?$/i, "")}_files/`}${missing})\n`,
  );
  return 0;
}
