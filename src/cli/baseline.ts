// `cao2 baseline random-real`: IPC random real training images per class as an ImageFolder of PNGs, the reference
// point every distilled set is compared with. `cao2 baseline selected-real`: the same, but IPC of a random pool of
// pool-factor x IPC real images per class chosen by the selector with the distillation's selection rule (the paper's
// appendix Table 12: selection without the diffusion model).
import { type FlagSpecs, parseCommand, UsageError } from "./args.js";
import { checkOutputFolder } from "./outputs.js";
import { deviceFlag, MAX_PER_CLASS, seedFlag } from "./shared-flags.js";
import { SELECTED_REAL_FORMAT, writeRandomReal, writeRealImages } from "../evaluate/random-real.js";
import { loadSelector } from "../distill/models.js";
import { recipeDefaults } from "../distill/presets.js";
import { selectRealImages } from "../distill/select-real.js";
import { STRATEGIES, type Strategy } from "../distill/select.js";
import { sha256File } from "../io/files.js";
import { loadDataSpec } from "../io/datasets/index.js";
import { assetPath } from "../util/assets.js";
import { applyReadLimits, READ_LIMIT_FLAGS } from "./limits.js";
import { SUMMARIES } from "./commands.js";

const FLAGS = {
  data: {
    type: "string",
    help: "Source: fashion-mnist (its 60k training images), fashion-mnist-fit (minus the validation split) or an ImageFolder",
    default: "fashion-mnist",
  },
  ipc: { type: "int", help: "Images per class", min: 1, max: MAX_PER_CLASS },
  seed: seedFlag("Selection seed"),
  out: { type: "string", help: "Output folder (must not exist or be empty; written atomically)" },
  selector: {
    type: "string",
    help: "selected-real: the selector (a cao2 classifier file or a state dict, as distill --selector)",
    defaultText: "the shipped Fashion-MNIST selector",
  },
  select: {
    type: "string",
    choices: STRATEGIES,
    help: "selected-real: selection strategy",
    defaultText: "the fashion-mnist recipe's",
  },
  "pool-factor": {
    type: "int",
    help: "selected-real: pool of m x IPC random real images per class",
    defaultText: "the fashion-mnist recipe's",
    min: 1,
    max: 100,
  },
  device: deviceFlag,
  ...READ_LIMIT_FLAGS,
} satisfies FlagSpecs;

const KINDS = ["random-real", "selected-real"];

export async function run(argv: string[]): Promise<number> {
  const a = parseCommand(
    argv,
    "cao2 baseline random-real|selected-real --ipc N --out <folder> [--data fashion-mnist|<folder>] [--seed S] [--selector <file>]",
    SUMMARIES.baseline,
    FLAGS,
    1,
  );
  if (!a) return 0;
  applyReadLimits(a);
  const [kind] = a._;
  if (!kind) throw new UsageError(`name the baseline: ${KINDS.join(", ")} (see --help)`);
  if (!KINDS.includes(kind)) throw new UsageError(`unknown baseline '${kind}' (known: ${KINDS.join(", ")})`);
  if (a.ipc === undefined) throw new UsageError("--ipc is required (images per class)");
  if (!a.out) throw new UsageError("--out is required (the folder to write)");
  checkOutputFolder("--out", a.out);
  const selectorFlags = (["selector", "select", "pool-factor"] as const).filter((f) => a.given.has(f));
  if (kind === "random-real" && selectorFlags.length)
    throw new UsageError(`--${selectorFlags[0]} is for selected-real; random-real draws at random`);
  // mmd matches a pool to other real images of the class: on a pool of real images it would be herding, not this
  // baseline (the paper's selection rules without the diffusion model).
  if (a.select === "mmd")
    throw new UsageError(
      "selected-real applies the paper's selection rules to real images; --select mmd is for distill (it needs a --reference)",
    );
  const source = loadDataSpec(a.data!, "train");
  if (kind === "random-real") {
    const m = writeRandomReal({ source, sourceName: a.data!, ipc: a.ipc, seed: a.seed!, out: a.out });
    process.stdout.write(
      `wrote ${m.images.length} images (${a.ipc} per class, ${m.classes.length} classes, seed ${a.seed}) to ${a.out}\n`,
    );
    return 0;
  }
  const recipe = recipeDefaults("fashion-mnist", "paper");
  const selectorPath = a.selector ?? assetPath("fashion-mnist/selector.safetensors");
  const { selector, preprocess } = loadSelector(selectorPath, { device: a.device });
  selector.eval();
  const numClasses = selector.config.numClasses;
  if (numClasses !== source.classes.length)
    throw new UsageError(
      `${selectorPath} has ${numClasses} classes but ${a.data} has ${source.classes.length}; the selector must know the data set's classes, label by label`,
    );
  const strategy = (a.select ?? recipe.select) as Strategy;
  const poolFactor = a.poolFactor ?? recipe.poolFactor;
  const picks = selectRealImages(
    source,
    { selector, selectorPreprocess: preprocess },
    {
      ipc: a.ipc,
      poolFactor,
      strategy,
      fill: recipe.fill,
      seed: a.seed!,
      targets: source.classes.map((_, label) => label),
      batchSize: 64,
    },
  );
  const m = writeRealImages({
    source,
    sourceName: a.data!,
    ipc: a.ipc,
    seed: a.seed!,
    out: a.out,
    indices: picks.flatMap((p) => p.selected),
    format: SELECTED_REAL_FORMAT,
    selection: `per class: a pool of ${poolFactor} x IPC drawn as random-real draws (seed), scored by the selector, IPC chosen by ${strategy} (fill ${recipe.fill}); images in selection order`,
    details: {
      selector: { path: selectorPath, sha256: sha256File(selectorPath), preprocess },
      strategy,
      poolFactor,
      fill: recipe.fill,
      perClass: picks,
    },
  });
  const filled = picks.reduce((n, p) => n + p.filled, 0);
  process.stdout.write(
    `wrote ${m.images.length} images (${a.ipc} per class chosen by ${strategy} from ${poolFactor * a.ipc}, ${filled} filled in, ${m.classes.length} classes, seed ${a.seed}) to ${a.out}\n`,
  );
  return 0;
}
