// End-to-end checks of `cao2 distill` on tiny random models (slow: each run spawns the CLI). They cover the
// ImageFolder layout (read by torchvision's ImageFolder too) with the run state beside it, outputs written before the
// state moved, determinism, resumption after SIGINT and SIGKILL (in both stage orders), the default T^, condition
// "auto", and refusals of bad input.
import assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import { decodePng, encodePng } from "../../src/io/png.js";
import { createEfficientNetB0 } from "../../src/models/efficientnet.js";
import { createMobileNetV2 } from "../../src/models/mobilenet.js";
import { createResNetAP } from "../../src/models/resnet-ap.js";
import { saveSafetensors } from "../../src/io/safetensors.js";
import { saveModel } from "../../src/models/saved.js";
import { Generator } from "../../src/torch/index.js";
import { ROOT } from "../helpers/fixtures.js";
import { makeTinyModels, snapshot, TINY, tinyDistillArgs } from "../helpers/tiny-distill.js";
import { waitFor } from "../helpers/wait.js";

const CLI = join(ROOT, "dist", "src", "cli", "main.js");
let dir: string;
let models: string[];

const args = (out: string, extra: string[] = []) => tinyDistillArgs(models, out, extra);
const runCli = (argv: string[]) =>
  spawnSync(process.execPath, [CLI, ...argv], { encoding: "utf8", env: { ...process.env, CI: "true" } });

/** What torchvision's ImageFolder (Debian's python3-torchvision) makes of a folder: classes and images per class. */
function torchvisionView(root: string): { classes: string[]; counts: number[] } {
  const script = [
    "import collections, json, sys",
    "from torchvision.datasets import ImageFolder",
    "d = ImageFolder(sys.argv[1])",
    "n = collections.Counter(t for _, t in d.samples)",
    "print(json.dumps({'classes': d.classes, 'counts': [n[i] for i in range(len(d.classes))]}))",
  ].join("\n");
  const r = spawnSync("/usr/bin/python3", ["-c", script, root], { encoding: "utf8" });
  assert.equal(r.status, 0, `torchvision's ImageFolder refused ${root}:\n${r.stderr}`);
  return JSON.parse(r.stdout);
}

const exited = (child: ChildProcess) =>
  new Promise<number | null>((r) => child.on("exit", (code, sig) => r(code ?? (sig ? -1 : null))));

describe("cao2 distill end to end (slow)", () => {
  let reference: Map<string, string>;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), "cao2-e2e-"));
    models = makeTinyModels(dir);
  });

  test("writes an ImageFolder with the right counts, readable PNGs and a complete manifest", () => {
    const out = join(dir, "a");
    const r = runCli(args(out));
    assert.equal(r.status, 0, r.stderr);
    const folders = readFileSync(join(out, "classes.txt"), "utf8").trim().split("\n");
    assert.deepEqual(folders, ["0_T-shirt-top", "1_Trouser", "2_Pullover"]);
    for (const f of folders) {
      const pngs = readdirSync(join(out, f));
      assert.equal(pngs.length, 2, f);
      for (const p of pngs) {
        const img = decodePng(readFileSync(join(out, f, p)));
        assert.deepEqual([img.width, img.height, img.channels], [16, 16, 1]);
      }
    }
    const m = JSON.parse(readFileSync(join(out, "manifest.json"), "utf8"));
    assert.equal(m.images, 6);
    assert.equal(m.records.length, 3);
    for (const rec of m.records) {
      assert.equal(rec.items.length, 2);
      assert.equal(rec.pool.length, rec.items.length * m.config.poolFactor);
      for (const it of rec.items) {
        for (const k of ["poolIndex", "prediction", "confidence", "lossBefore", "lossAfter", "refinedPrediction"])
          assert.equal(typeof it[k], "number", k);
        assert.ok(existsSync(join(out, it.file)));
      }
    }
    for (const k of ["dit", "vae", "selector"]) assert.match(m.models[k].sha256, /^[0-9a-f]{64}$/);
    assert.equal(m.config.condition, "true", "the fashion-mnist preset refines with the true label");
    assert.deepEqual(m.condition, { requested: "true", chosen: "true" });
    assert.equal(m.config.order, "select-refine");
    // The root is an ImageFolder for any reader: the run's state is beside it, where the manifest says.
    assert.deepEqual(readdirSync(out).sort(), [...folders, "classes.txt", "manifest.json"]);
    assert.equal(m.config.state, `${out}.cao2`);
    assert.ok(existsSync(join(`${out}.cao2`, "run.json")));
    assert.deepEqual(readdirSync(join(`${out}.cao2`, "classes")).sort(), ["0.json", "1.json", "2.json"]);
    assert.deepEqual(torchvisionView(out), { classes: folders, counts: [2, 2, 2] });
    reference = snapshot(out);
  });

  test("the same command and seed gives byte-identical PNGs and manifest", () => {
    const out = join(dir, "b");
    assert.equal(runCli(args(out)).status, 0);
    assert.deepEqual(snapshot(out), reference);
  });

  test("a different seed gives different images", () => {
    const out = join(dir, "seed");
    assert.equal(runCli(args(out, ["--seed", "7"])).status, 0);
    assert.notDeepEqual(snapshot(out).get("0_T-shirt-top/0.png"), reference.get("0_T-shirt-top/0.png"));
  });

  test("--precision bf16: the DiT under autocast, recorded, the same bytes on a rerun, other images than fp32; --resume keeps the precision", () => {
    const [out, again] = [join(dir, "bf16"), join(dir, "bf16-again")];
    for (const o of [out, again]) assert.equal(runCli(args(o, ["--precision", "bf16"])).status, 0);
    const bf16 = snapshot(out);
    assert.deepEqual(snapshot(again), bf16);
    assert.notDeepEqual(bf16.get("0_T-shirt-top/0.png"), reference.get("0_T-shirt-top/0.png"));
    assert.equal(JSON.parse(readFileSync(join(out, "manifest.json"), "utf8")).config.precision, "bf16");
    assert.equal(JSON.parse(readFileSync(join(dir, "a", "manifest.json"), "utf8")).config.precision, "fp32");
    const mixed = runCli(args(out, ["--resume"]));
    assert.equal(mixed.status, 2);
    assert.match(mixed.stderr, /was started with other settings \(precision differ\)/);
    const fp16 = runCli(args(join(dir, "fp16"), ["--precision", "fp16"]));
    assert.equal(fp16.status, 2);
    assert.match(fp16.stderr, /fp16 needs a CUDA device/);
    assert.ok(!existsSync(join(dir, "fp16")));
  });

  let refineSelect: Map<string, string>;

  test("--order refine-select (Table 11's reverse order): recorded in the manifest and the class records", () => {
    const out = join(dir, "refine-select");
    const r = runCli(args(out, ["--order", "refine-select"]));
    assert.equal(r.status, 0, r.stderr);
    const m = JSON.parse(readFileSync(join(out, "manifest.json"), "utf8"));
    assert.equal(m.config.order, "refine-select");
    for (const rec of m.records) {
      assert.equal(rec.refinedPool.length, rec.pool.length, "the selector's view of every refined candidate");
      for (const it of rec.items) assert.equal(it.refinedConfidence, rec.refinedPool[it.poolIndex].confidence);
    }
    refineSelect = snapshot(out);
    const resumed = runCli(args(out, ["--resume"]));
    assert.equal(resumed.status, 2, "a finished refine-select run is not resumed as select-refine");
    assert.match(resumed.stderr, /other settings \(order differ\)/);
  });

  for (const [signal, order] of [
    ["SIGINT", "select-refine"],
    ["SIGKILL", "select-refine"],
    ["SIGKILL", "refine-select"],
  ] as const) {
    test(`a ${order} run killed with ${signal} and resumed gives the same bytes, without redoing finished classes`, async () => {
      const out = join(dir, `${signal}-${order}`);
      const flags = ["--order", order];
      const child = spawn(process.execPath, [CLI, ...args(out, flags)], {
        stdio: "ignore",
        env: { ...process.env, CI: "true" },
      });
      const first = join(`${out}.cao2`, "classes", "0.json");
      await waitFor(() => existsSync(first), child);
      child.kill(signal);
      const code = await exited(child);
      assert.notEqual(code, 0);
      assert.ok(!existsSync(join(out, "manifest.json")), "an interrupted run has no manifest");
      const before = statSync(first).mtimeMs;
      const r = runCli(args(out, [...flags, "--resume"]));
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stderr, /class 0 \(T-shirt\/top\) already done/);
      assert.equal(statSync(first).mtimeMs, before, "the finished class was not rewritten");
      assert.deepEqual(snapshot(out), order === "select-refine" ? reference : refineSelect);
    });
  }

  test("an output written before the state moved (.cao2/ inside it, no config.state) is resumed where its state is", () => {
    // Such an output, interrupted during its last class: the state inside, class 2's record and the manifest missing.
    const out = join(dir, "old");
    cpSync(join(dir, "a"), out, { recursive: true });
    cpSync(join(dir, "a.cao2"), join(out, ".cao2"), { recursive: true });
    rmSync(join(out, "manifest.json"));
    rmSync(join(out, ".cao2", "classes", "2.json"));
    const r = runCli(args(out, ["--resume"]));
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /class 1 \(Trouser\) already done/);
    assert.ok(!existsSync(`${out}.cao2`), "no second state folder beside it");
    assert.ok(existsSync(join(out, ".cao2", "classes", "2.json")));
    assert.equal(JSON.parse(readFileSync(join(out, "manifest.json"), "utf8")).config.state, join(out, ".cao2"));
    assert.deepEqual(snapshot(out, join(out, ".cao2")), reference);
  });

  test("T^ follows a short schedule by default (--steps 5: T^ = 1); condition auto measures the selector on held-out real images", () => {
    const out = join(dir, "auto");
    const noTMax = args(out, ["--condition", "auto"]).filter(
      (_, i, all) => all[i] !== "--t-max" && all[i - 1] !== "--t-max",
    );
    assert.ok(!noTMax.includes("--t-max") && noTMax.includes("--steps"));
    const r = runCli(noTMax);
    assert.equal(r.status, 0, r.stderr);
    const m = JSON.parse(readFileSync(join(out, "manifest.json"), "utf8"));
    assert.equal(m.config.steps, 5);
    assert.equal(m.config.tMax, 1, "floor(5/4) - 1 = 0, at least 1");
    // The random selector's file records 95%, but on Fashion-MNIST's 2,000 validation images it is near chance.
    assert.equal(m.models.selectorAccuracy, 0.95);
    const c = m.condition;
    assert.deepEqual([c.requested, c.source, c.images, c.threshold], ["auto", "fashion-mnist-val", 2000, 0.9]);
    assert.ok(c.accuracy >= 0 && c.accuracy < 0.5, `measured ${c.accuracy}`);
    assert.equal(c.chosen, "null");
    assert.equal(m.config.condition, "null");
    assert.ok(
      m.records.every(
        (rec: { condition: { kind: string; label: number } }) =>
          rec.condition.kind === "null" && rec.condition.label === 10,
      ),
    );
    assert.match(
      r.stderr,
      /condition auto: selector top-1 \d+\.\d\d% on fashion-mnist-val \(2000 held-out images\) < 0\.9: null label/,
    );
  });

  test("--compat authors: one random stream over the run, continued by --resume after a kill (same bytes)", async () => {
    const whole = join(dir, "authors");
    const flags = ["--compat", "authors"];
    const r0 = runCli(args(whole, flags));
    assert.equal(r0.status, 0, r0.stderr);
    const expected = snapshot(whole);
    assert.notDeepEqual(
      expected.get("0_T-shirt-top/0.png"),
      reference.get("0_T-shirt-top/0.png"),
      "authors mode draws otherwise",
    );
    // A class's draws continue the stream its predecessors left: class 1 alone starts where class 0 started.
    const alone = join(dir, "authors-1");
    assert.equal(runCli(args(alone, [...flags, "--classes", "1"])).status, 0);
    assert.notDeepEqual(snapshot(alone).get("1_Trouser/0.png"), expected.get("1_Trouser/0.png"));
    const out = join(dir, "authors-killed");
    const child = spawn(process.execPath, [CLI, ...args(out, flags)], {
      stdio: "ignore",
      env: { ...process.env, CI: "true" },
    });
    await waitFor(() => existsSync(join(`${out}.cao2`, "classes", "0.json")), child);
    child.kill("SIGKILL");
    assert.notEqual(await exited(child), 0);
    assert.ok(!existsSync(join(out, "manifest.json")), "an interrupted run has no manifest");
    const r = runCli(args(out, [...flags, "--resume"]));
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /class 0 \(T-shirt\/top\) already done/);
    assert.deepEqual(snapshot(out), expected);
    // Without the saved stream the run cannot continue as it would have: refused, nothing written.
    rmSync(join(out, "manifest.json"));
    rmSync(join(`${out}.cao2`, "classes", "2.json"));
    rmSync(join(`${out}.cao2`, "classes", "0.stream"));
    const lost = runCli(args(out, [...flags, "--resume"]));
    assert.equal(lost.status, 2, lost.stderr);
    assert.match(lost.stderr, /class 0 is finished but its random stream was not saved/);
    assert.ok(!existsSync(join(out, "manifest.json")));
    // A stream file that is not a generator's state: one line naming it (was a raw libtorch error).
    const stream = join(`${out}.cao2`, "classes", "0.stream");
    writeFileSync(stream, "not a generator state");
    const corrupt = runCli(args(out, [...flags, "--resume"]));
    assert.equal(corrupt.status, 2, corrupt.stderr);
    assert.match(
      corrupt.stderr,
      new RegExp(
        `\\ncao2 distill: error: ${stream}: corrupt random stream saved after class 0 \\([^\\n]+\\); --compat authors cannot resume this run: start it again in a new --out\\n$`,
      ),
    );
    assert.ok(!existsSync(join(out, "manifest.json")));
  });

  test("--resume starts a run where there is none and says so; continues one that is there; refuses a folder that holds no run", () => {
    const out = join(dir, "resume-fresh");
    const first = runCli(args(out, ["--resume"]));
    assert.equal(first.status, 0, first.stderr);
    assert.match(first.stderr, new RegExp(`nothing to resume in ${out}: starting a new run`));
    assert.deepEqual(snapshot(out), reference, "the same run as without --resume");
    const again = runCli(args(out, ["--resume"]));
    assert.equal(again.status, 0, again.stderr);
    assert.match(again.stderr, new RegExp(`resuming the run in ${out}`));
    assert.match(again.stderr, /class 2 \(Pullover\) already done/);
    const other = runCli(args(out, ["--resume", "--seed", "9"]));
    assert.equal(other.status, 2);
    assert.match(other.stderr, /was started with other settings \(seed differ\)/);
    const foreign = join(dir, "resume-foreign");
    mkdirSync(foreign);
    writeFileSync(join(foreign, "notes.txt"), "");
    const refused = runCli(args(foreign, ["--resume"]));
    assert.equal(refused.status, 2);
    assert.equal(
      refused.stderr,
      `cao2 distill: error: ${foreign} is not empty but holds no cao2 run to resume (no run state in ${foreign}.cao2); choose a new --out, or give the run's --state\n`,
    );
  });

  test("corrupt run state on --resume: one line naming the file and the way out, nothing rewritten", () => {
    const out = join(dir, "resume-corrupt");
    assert.equal(runCli(args(out)).status, 0);
    rmSync(join(out, "manifest.json"));
    const record = join(`${out}.cao2`, "classes", "1.json");
    writeFileSync(record, '{"label": 1, "items": [');
    let r = runCli(args(out, ["--resume"]));
    assert.equal(r.status, 2, r.stderr);
    assert.match(
      r.stderr,
      new RegExp(
        `\\ncao2 distill: error: ${record}: corrupt record of finished class 1 \\(not JSON: [^\\n]*\\); delete it to redo class 1 \\(the other finished classes are kept\\)\\n$`,
      ),
    );
    writeFileSync(record, JSON.stringify({ label: 2, items: [], pool: [] }));
    r = runCli(args(out, ["--resume"]));
    assert.match(
      r.stderr,
      new RegExp(`${record}: corrupt record of finished class 1 \\(not the content cao2 writes there\\)`),
    );
    const run = join(`${out}.cao2`, "run.json");
    writeFileSync(run, "\u0000\u0000");
    r = runCli(args(out, ["--resume"]));
    assert.equal(r.status, 2, r.stderr);
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    assert.match(
      r.stderr,
      new RegExp(
        `^cao2 distill: error: ${run}: corrupt run settings \\(not JSON: .*\\); the run cannot be checked or continued: start it again in a new --out \\(or delete ${out} and ${out}\\.cao2\\)\\n$`,
      ),
    );
    assert.ok(!existsSync(join(out, "manifest.json")), "nothing that looks complete");
  });

  test("cao2 figure: before | after | amplified difference per image, from a --save-pre-refine run", () => {
    const out = join(dir, "fig");
    assert.equal(runCli(args(out, ["--save-pre-refine"])).status, 0);
    assert.deepEqual(torchvisionView(out), {
      classes: ["0_T-shirt-top", "1_Trouser", "2_Pullover"],
      counts: [2, 2, 2],
    });
    assert.deepEqual(readdirSync(join(`${out}.cao2`, "pre-refine")).sort(), [
      "0_T-shirt-top",
      "1_Trouser",
      "2_Pullover",
    ]);
    // The tiny random models barely move an image in 3 steps; make one "before" image differ by a known amount.
    const pre = join(`${out}.cao2`, "pre-refine", "2_Pullover", "1.png");
    const orig = decodePng(readFileSync(pre));
    writeFileSync(pre, encodePng({ ...orig, data: orig.data.map((v, i) => (i % 3 === 0 ? Math.min(255, v + 7) : v)) }));
    const png = join(dir, "fig.png");
    const r = runCli([
      "figure",
      "--run",
      out,
      "--classes",
      "1-2",
      "--per-class",
      "2",
      "--amplify",
      "10",
      "--scale",
      "2",
      "--out",
      png,
    ]);
    assert.equal(r.status, 0, r.stderr);
    const img = decodePng(readFileSync(png));
    // 2 classes x (2 images x 3 panels) of 32x32 (16 px enlarged twice), each with a 1-pixel border
    assert.deepEqual([img.width, img.height, img.channels], [6 * 34, 2 * 34, 1]);
    const at = (im: { width: number; data: Uint8Array }, x: number, y: number) => im.data[y * im.width + x];
    const before = decodePng(readFileSync(pre));
    const after = decodePng(readFileSync(join(out, "2_Pullover", "1.png")));
    let changed = 0;
    for (let y = 0; y < 16; y++)
      for (let x = 0; x < 16; x++) {
        // class 2 is the second row; its second image's panels start at column 3 (before), 4 (after), 5 (difference)
        const px = (panel: number) => at(img, panel * 34 + 1 + 2 * x, 34 + 1 + 2 * y);
        assert.equal(px(3), at(before, x, y));
        assert.equal(px(4), at(after, x, y));
        const diff = Math.min(1, (Math.abs(at(after, x, y) - at(before, x, y)) / 255) * 10);
        assert.ok(Math.abs(px(5) - Math.floor(diff * 255 + 0.5)) <= 1, `difference pixel (${x}, ${y})`);
        if (at(after, x, y) !== at(before, x, y)) changed++;
      }
    assert.ok(changed > 50, `${changed} pixels differ`);
    // An output written before the state moved: the images before refinement inside it, no config.state.
    const old = join(dir, "fig-old");
    cpSync(out, old, { recursive: true });
    renameSync(`${out}.cao2`, join(old, ".cao2"));
    const manifest = JSON.parse(readFileSync(join(old, "manifest.json"), "utf8"));
    delete manifest.config.state;
    writeFileSync(join(old, "manifest.json"), JSON.stringify(manifest));
    const again = runCli([
      "figure",
      "--run",
      old,
      "--classes",
      "1-2",
      "--per-class",
      "2",
      "--amplify",
      "10",
      "--scale",
      "2",
      "--out",
      join(dir, "fig-old.png"),
    ]);
    assert.equal(again.status, 0, again.stderr);
    assert.deepEqual(readFileSync(join(dir, "fig-old.png")), readFileSync(png));
    const none = runCli(["figure", "--run", join(dir, "a"), "--out", join(dir, "none.png")]);
    assert.equal(none.status, 2);
    assert.match(none.stderr, /distilled without --save-pre-refine/);
  });

  test("--selector takes the other students: a torchvision MobileNetV2 state dict (read from its keys), cao2 EfficientNet-B0 and ResNet-AP-10 files", () => {
    const classes = Array.from({ length: 10 }, (_, i) => `c${i}`);
    const pre = { size: 32, channels: 1, mean: [0.5], std: [0.5] };
    const mobile = join(dir, "mobilenet_v2.safetensors");
    saveSafetensors(mobile, createMobileNetV2({ numClasses: 10 }, { generator: new Generator(4) }).stateDict());
    const effnet = join(dir, "efficientnet_b0.safetensors");
    saveModel(effnet, createEfficientNetB0({ numClasses: 10, inChannels: 1 }, { generator: new Generator(5) }), {
      kind: "efficientnet_b0",
      config: { numClasses: 10, inChannels: 1 },
      preprocess: pre,
      classes,
    });
    const ap = join(dir, "resnetap10.safetensors");
    const apConfig = { depth: 10 as const, numClasses: 10, inChannels: 1, stem: "small" as const };
    saveModel(ap, createResNetAP(apConfig, { generator: new Generator(6) }), {
      kind: "resnetap",
      config: apConfig,
      preprocess: pre,
      classes,
    });
    for (const [selector, strategy] of [
      [mobile, "confident"],
      [effnet, "representative"],
      [ap, "el2n"],
    ]) {
      const out = join(dir, `sel-${strategy}`);
      const r = runCli([
        "distill",
        "--dit",
        models[0],
        "--vae",
        models[1],
        "--selector",
        selector,
        ...TINY,
        "--classes",
        "0",
        "--select",
        strategy,
        "--out",
        out,
      ]);
      assert.equal(r.status, 0, r.stderr);
      const m = JSON.parse(readFileSync(join(out, "manifest.json"), "utf8"));
      assert.equal(m.images, 2, selector);
      assert.equal(m.models.selector.path, selector);
      // a state dict without a cao2 description is fed as the ImageNet classifiers are
      assert.equal(m.models.selectorPreprocess.size, selector === mobile ? 224 : 32);
    }
  });

  test("bad input: one-line errors, exit code 2, nothing that looks complete", () => {
    const bad = (extra: string[], pattern: RegExp, out = join(dir, `bad-${Math.random().toString(36).slice(2)}`)) => {
      const r = runCli([...args(out), ...extra]);
      assert.equal(r.status, 2, `${extra.join(" ")}: exit ${r.status}\n${r.stderr}`);
      assert.match(r.stderr, pattern);
      assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
      assert.ok(!existsSync(join(out, "manifest.json")));
    };
    bad(["--dit", join(dir, "missing.safetensors")], /DiT checkpoint not found: .*missing\.safetensors/);
    bad(["--dit", models[1]], /expected a DiT, but it holds a cao2 autoencoder model/);
    bad(["--classes", "12"], /--classes: no class '12'/);
    bad(["--ipc", "0"], /--ipc must be in 1\.\.10000, got 0/);
    bad(["--t-max", "5"], /--t-max must be an integer in 1\.\.4 \(an index of the 5-step schedule\), got 5/);
    bad(["--condition", "auto", "--auto-threshold", "1.5"], /--auto-threshold must be in 0\.\.1, got 1\.5/);
    bad(["--auto-threshold", "0.5"], /--auto-threshold applies to --condition auto only/);
    bad(["--order", "select"], /--order must be one of select-refine, refine-select; got 'select'/);
    const inside = join(dir, "inside");
    mkdirSync(inside);
    bad(["--state", join(inside, "state")], /--state .* lies inside --out/, inside);
    const used = join(dir, "used-state");
    mkdirSync(used, { recursive: true });
    writeFileSync(join(used, "run.json"), "{}");
    bad(["--state", used], /the state folder .*used-state already holds a run: pass --resume/);
    bad(["--bogus"], /unknown flag '--bogus'/);
    const file = join(dir, "a-file");
    writeFileSync(file, "x");
    bad([], new RegExp(`--out ${join(file, "out")}: ${file} is not a folder`), join(file, "out"));
    mkdirSync(join(dir, "taken"), { recursive: true });
    writeFileSync(join(dir, "taken", "x"), "");
    bad([], /already exists and is not empty: pass --resume/, join(dir, "taken"));
  });
});
