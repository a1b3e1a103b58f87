// `cao2 baseline` and `cao2 evaluate` end to end in child processes: a random-real set evaluated with the soft protocol
// and a tiny random teacher (a complete JSON record), and bad input as one-line errors with exit code 2.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import jpeg from "jpeg-js";
import { buildClassifier, type ClassifierSpec } from "../../src/models/classifiers.js";
import { FASHION_MNIST_DIR } from "../../src/io/datasets/index.js";
import { saveSafetensors } from "../../src/io/safetensors.js";
import * as torch from "../../src/torch/index.js";
import { ROOT } from "../helpers/fixtures.js";

const MAIN = join(ROOT, "dist", "src", "cli", "main.js");
const missing = !existsSync(FASHION_MNIST_DIR) && `Fashion-MNIST not installed (${FASHION_MNIST_DIR})`;
const dir = mkdtempSync(join(tmpdir(), "cao2-cli-eval-"));
after(() => rmSync(dir, { recursive: true, force: true }));

function cao2(...args: string[]) {
  const r = spawnSync(process.execPath, [MAIN, ...args], { encoding: "utf8" });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Exit code 2 and exactly one line on stderr, matching `pattern`. */
function assertInputError(r: ReturnType<typeof cao2>, pattern: RegExp): void {
  assert.equal(r.status, 2, `exit code (stderr: ${r.stderr})`);
  const lines = r.stderr.trimEnd().split("\n");
  assert.equal(lines.length, 1, `one line expected, got:\n${r.stderr}`);
  assert.match(lines[0], /^cao2 (evaluate|baseline): error: /);
  assert.match(lines[0], pattern);
}

const tinyTeacher = (numClasses: number): ClassifierSpec => ({
  kind: "convnet",
  depth: 1,
  width: 8,
  norm: "batch",
  numClasses,
  inChannels: 1,
  imageSize: 32,
});
const rr = join(dir, "rr");

before(() => {
  if (missing) return;
  const r = cao2("baseline", "random-real", "--data", "fashion-mnist", "--ipc", "2", "--seed", "3", "--out", rr);
  assert.equal(r.status, 0, r.stderr);
  saveSafetensors(
    join(dir, "teacher.safetensors"),
    buildClassifier(tinyTeacher(10), { generator: new torch.Generator(1) }).stateDict(),
  );
  saveSafetensors(
    join(dir, "teacher5.safetensors"),
    buildClassifier(tinyTeacher(5), { generator: new torch.Generator(1) }).stateDict(),
  );
});

test(
  "baseline random-real writes an ImageFolder with classes.txt and a manifest; refuses a non-empty --out",
  { skip: missing },
  () => {
    assert.equal(readFileSync(join(rr, "classes.txt"), "utf8").split("\n")[0], "0_T-shirt-top");
    const m = JSON.parse(readFileSync(join(rr, "manifest.json"), "utf8"));
    assert.equal(m.ipc, 2);
    assert.equal(m.seed, 3);
    assert.equal(m.indices.length, 20);
    assertInputError(cao2("baseline", "random-real", "--ipc", "2", "--out", rr), /not empty/);
    assertInputError(cao2("baseline", "random-real", "--out", join(dir, "n")), /--ipc is required/);
  },
);

test(
  "baseline selected-real: the selector's most confident IPC of a random pool per class, with the pools and scores in the manifest",
  { skip: missing },
  () => {
    const out = join(dir, "sel");
    const r = cao2(
      "baseline",
      "selected-real",
      "--ipc",
      "2",
      "--pool-factor",
      "5",
      "--select",
      "confident",
      "--seed",
      "3",
      "--out",
      out,
    );
    assert.equal(r.status, 0, r.stderr);
    assert.match(
      r.stdout,
      /wrote 20 images \(2 per class chosen by confident from 10, \d+ filled in, 10 classes, seed 3\)/,
    );
    const m = JSON.parse(readFileSync(join(out, "manifest.json"), "utf8"));
    assert.equal(m.format, "cao2-selected-real/1");
    assert.equal(m.details.strategy, "confident");
    assert.match(m.details.selector.sha256, /^[0-9a-f]{64}$/);
    const randomReal = JSON.parse(readFileSync(join(rr, "manifest.json"), "utf8"));
    for (const c of m.details.perClass) {
      assert.equal(c.pool.length, 10);
      assert.equal(c.selected.length, 2);
      // the pools are random-real's draw at pool-factor x IPC: the same seed's first IPC are in them
      // (random-real at IPC 2 and seed 3 drew its images from the same per-class permutation)
      const fromRandomReal = randomReal.indices.filter(
        (i: number) =>
          randomReal.images.find((im: { sourceIndex: number; label: number }) => im.sourceIndex === i).label ===
          c.label,
      );
      for (const i of fromRandomReal) assert.ok(c.pool.includes(i), `class ${c.label}: ${i} in the pool`);
      // confident: the two highest confidences of the pool (when the selector gets them right, as it does here)
      const ranked = c.pool
        .map((i: number, k: number) => [i, c.confidence[k]])
        .sort((x: number[], y: number[]) => y[1] - x[1]);
      if (c.filled === 0)
        assert.deepEqual(
          c.selected,
          ranked.slice(0, 2).map((x: number[]) => x[0]),
          `class ${c.label}`,
        );
    }
    assert.deepEqual(
      m.indices,
      m.details.perClass.flatMap((c: { selected: number[] }) => c.selected),
    );
    assertInputError(
      cao2("baseline", "random-real", "--ipc", "2", "--select", "confident", "--out", join(dir, "x")),
      /--select is for selected-real/,
    );
    assertInputError(
      cao2("baseline", "selected-real", "--ipc", "2", "--select", "mmd", "--out", join(dir, "x")),
      /--select mmd is for distill/,
    );
    // a state dict is read as an ImageNet-preprocessed selector (224 px): a 5-class ConvNet-1 for that size
    const five = join(dir, "selector5.safetensors");
    saveSafetensors(
      five,
      buildClassifier({
        kind: "convnet",
        depth: 1,
        width: 8,
        norm: "batch",
        numClasses: 5,
        inChannels: 1,
        imageSize: 224,
      }).stateDict(),
    );
    assertInputError(
      cao2("baseline", "selected-real", "--ipc", "2", "--selector", five, "--out", join(dir, "x")),
      /selector5\.safetensors has 5 classes but fashion-mnist has 10/,
    );
  },
);

test("evaluate --protocol soft end to end: progress, mean ± std, a complete JSON record", { skip: missing }, () => {
  const json = join(dir, "soft.json");
  const teacher = join(dir, "teacher.safetensors");
  const r = cao2(
    "evaluate",
    "--data",
    rr,
    "--protocol",
    "soft",
    "--teacher",
    teacher,
    "--teacher-arch",
    "convnet1",
    "--epochs",
    "2",
    "--test-every",
    "1",
    "--repeats",
    "2",
    "--test-per-class",
    "10",
    "--seed",
    "5",
    "--wd",
    "0.02",
    "--json",
    json,
  );
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /soft-label convnet3, 2 repeat\(s\): best top-1 \d+\.\d\d ± \d+\.\d\d%/);
  assert.match(r.stderr, /repeat 2\/2 epoch 2\/2: train loss [\d.]+, test top-1/);
  const rec = JSON.parse(readFileSync(json, "utf8"));
  const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8"));
  assert.equal(rec.versions.cao2, pkg.version);
  assert.match(rec.versions.libtorch, /^\d+\.\d+/);
  assert.equal(rec.config.protocol, "soft");
  assert.equal(rec.config.temperature, 20);
  assert.equal(rec.config.optimizer.name, "adamw");
  assert.equal(rec.config.optimizer.weightDecay, 0.02);
  assert.deepEqual(rec.config.overrides, { epochs: 2, weightDecay: 0.02 });
  assert.equal(rec.config.branch, null);
  assert.equal(rec.config.batchSize, 20); // IPC 2 -> RDED's IPC-10 size 50, capped at the 20 images
  assert.equal(rec.config.student.norm, "batch");
  assert.equal(rec.config.seed, 5);
  assert.equal(rec.config.testPerClass, 10);
  assert.equal(rec.data.images, 20);
  assert.match(rec.data.source.sha256, /^[0-9a-f]{64}$/);
  assert.match(rec.test.source.sha256, /^[0-9a-f]{64}$/);
  assert.equal(rec.test.images, 100);
  assert.equal(rec.classMapping.length, 10);
  assert.deepEqual(rec.classMapping[9], { label: 9, data: "9_Ankle-boot", test: "Ankle boot" });
  assert.equal(rec.teacher.sha256, createHash("sha256").update(readFileSync(teacher)).digest("hex"));
  assert.equal(rec.teacher.spec.kind, "convnet");
  assert.equal(rec.repeats.length, 2);
  for (const rep of rec.repeats) {
    assert.deepEqual(
      rep.curve.map((p: { epoch: number }) => p.epoch),
      [2],
    );
    assert.equal(rep.final, rep.curve[0].top1);
    assert.ok(rep.wallSeconds > 0);
  }
  assert.notEqual(rec.repeats[0].seed, rec.repeats[1].seed);
  const best = rec.repeats.map((p: { best: number }) => p.best);
  assert.deepEqual(rec.summary.best.values, best);
  assert.ok(Math.abs(rec.summary.best.mean - (best[0] + best[1]) / 2) < 1e-9);
});

test(
  "evaluate --precision bf16: students and teacher under autocast, recorded (fp32 by default); fp16 on CPU refused",
  { skip: missing },
  () => {
    const json = join(dir, "bf16.json");
    const teacher = join(dir, "teacher.safetensors");
    const common = ["evaluate", "--data", rr, "--protocol", "soft", "--teacher", teacher, "--epochs", "2"];
    const more = ["--test-every", "1", "--repeats", "2", "--test-per-class", "10", "--json", json];
    const r = cao2(...common, ...more, "--precision", "bf16");
    assert.equal(r.status, 0, r.stderr);
    const rec = JSON.parse(readFileSync(json, "utf8"));
    assert.equal(rec.config.precision, "bf16");
    for (const rep of rec.repeats) assert.ok(rep.best >= 0 && rep.best <= 100);
    const fp32 = cao2(...common, ...more.slice(0, 6), "--json", join(dir, "fp32.json"));
    assert.equal(fp32.status, 0, fp32.stderr);
    assert.equal(JSON.parse(readFileSync(join(dir, "fp32.json"), "utf8")).config.precision, "fp32");
    assertInputError(cao2(...common, "--precision", "fp16"), /fp16 needs a CUDA device/);
  },
);

test(
  "evaluate --resume keeps the repeats an interrupted run saved and computes only the rest",
  { skip: missing },
  async () => {
    const teacher = join(dir, "teacher.safetensors");
    const args = (json: string) => [
      MAIN,
      "evaluate",
      "--data",
      rr,
      "--protocol",
      "soft",
      "--teacher",
      teacher,
      "--epochs",
      "2",
      "--test-every",
      "1",
      "--repeats",
      "3",
      "--test-per-class",
      "10",
      "--seed",
      "5",
      "--threads",
      "1",
      "--json",
      json,
    ];
    const reference = join(dir, "whole.json");
    assert.equal(spawnSync(process.execPath, args(reference), { encoding: "utf8" }).status, 0);
    const json = join(dir, "resumed.json");
    const partial = `${json}.partial.json`;
    const child = spawn(process.execPath, args(json), { stdio: "ignore" });
    await new Promise<void>((resolve, reject) => {
      const iv = setInterval(() => {
        if (existsSync(partial)) {
          child.kill("SIGKILL");
          clearInterval(iv);
          resolve();
        } else if (child.exitCode !== null) {
          clearInterval(iv);
          reject(new Error("the run ended before it saved a repeat"));
        }
      }, 5);
    });
    await new Promise((r) => child.on("exit", r));
    assert.ok(!existsSync(json), "no record from the killed run");
    const saved = JSON.parse(readFileSync(partial, "utf8")).repeats.length;
    assert.ok(saved >= 1 && saved < 3, `saved ${saved}`);
    const r = spawnSync(process.execPath, [...args(json), "--resume"], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, new RegExp(`resumed: ${saved} of 3 repeats already done`));
    assert.ok(!existsSync(partial), "progress file removed once the record is written");
    const got = JSON.parse(readFileSync(json, "utf8"));
    const want = JSON.parse(readFileSync(reference, "utf8"));
    assert.equal(got.resumedRepeats, saved);
    const numbers = (rec: { repeats: { seed: number; curve: unknown; best: number; final: number }[] }) =>
      rec.repeats.map(({ seed, curve, best, final }) => ({ seed, curve, best, final }));
    assert.deepEqual(numbers(got), numbers(want));
    // a progress file from other settings is refused (not reused, not dropped), and so is one that is not JSON
    writeFileSync(partial, JSON.stringify({ identity: "other", repeats: want.repeats.slice(0, 2) }));
    const other = spawnSync(process.execPath, [...args(json), "--resume"], { encoding: "utf8" });
    assertInputError(
      other,
      new RegExp(
        `^cao2 evaluate: error: ${partial}: saved by an evaluation with other settings or data; resume with the same flags and data, or delete it to start afresh$`,
      ),
    );
    writeFileSync(partial, '{"identity": "x", "repe');
    const corrupt = spawnSync(process.execPath, [...args(json), "--resume"], { encoding: "utf8" });
    assertInputError(
      corrupt,
      new RegExp(
        `^cao2 evaluate: error: ${partial}: corrupt progress file of an interrupted evaluation \\(not JSON: .*\\); delete it to start the evaluation afresh$`,
      ),
    );
    writeFileSync(partial, "[1, 2]");
    assertInputError(
      spawnSync(process.execPath, [...args(json), "--resume"], { encoding: "utf8" }),
      /corrupt progress file of an interrupted evaluation \(not the content cao2 writes there\)/,
    );
    // without a progress file, --resume starts the evaluation (a scheduler's retry uses one command line) and says so
    rmSync(partial);
    rmSync(json);
    const fresh = spawnSync(process.execPath, [...args(json), "--resume"], { encoding: "utf8" });
    assert.equal(fresh.status, 0, fresh.stderr);
    assert.match(fresh.stderr, new RegExp(`nothing to resume \\(no ${partial}\\): starting the evaluation`));
    assert.equal(JSON.parse(readFileSync(json, "utf8")).resumedRepeats, 0);
  },
);

test(
  "evaluate: a truncated JPEG among 10,000 images stops the run before training, naming it; --skip-corrupt leaves it out and records it",
  { skip: missing },
  () => {
    const broken = join(dir, "truncated");
    cpSync(rr, broken, { recursive: true });
    const jpg = readFileSync(join(ROOT, "test", "fixtures", "data", "jpeg", "gray.jpg"));
    writeFileSync(join(broken, "2_Pullover", "cut.jpg"), jpg.subarray(0, jpg.length >> 1));
    // Filled up to 10,000 images (the issue's scale) with one valid 28x28 grey JPEG, 998 copies per class.
    const rgba = new Uint8Array(28 * 28 * 4).map((_, i) => (i % 4 === 3 ? 255 : (i * 7) & 255));
    const valid = jpeg.encode({ data: rgba, width: 28, height: 28 }, 90).data;
    for (const cls of readdirSync(broken).filter((f) => statSync(join(broken, f)).isDirectory()))
      for (let i = 0; i < 998; i++) writeFileSync(join(broken, cls, `fill${i}.jpg`), valid);
    const args = [
      "evaluate",
      "--data",
      broken,
      "--test",
      rr,
      "--preset",
      "fashion-mnist",
      "--epochs",
      "1",
      "--repeats",
      "1",
    ];
    const stopped = cao2(...args);
    assertInputError(stopped, /2_Pullover\/cut\.jpg: .*--skip-corrupt leaves such images out/);
    assert.doesNotMatch(stopped.stderr + stopped.stdout, /epoch/, "nothing was trained");
    const json = join(dir, "skipped.json");
    const r = cao2(...args, "--skip-corrupt", "--json", json);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /1 unreadable image\(s\) left out \(--skip-corrupt\)/);
    const rec = JSON.parse(readFileSync(json, "utf8"));
    assert.equal(rec.data.images, 10_000);
    assert.equal(rec.data.source.skipped.count, 1);
    assert.equal(rec.data.source.skipped.files[0].file, join("2_Pullover", "cut.jpg"));
  },
);

test(
  "evaluate --repeat K runs one repeat; --merge combines the repeats into the record of one run of them all",
  { skip: missing },
  () => {
    const teacher = join(dir, "teacher.safetensors");
    const args = (json: string, extra: string[] = []) => [
      "evaluate",
      "--data",
      rr,
      "--protocol",
      "soft",
      "--teacher",
      teacher,
      "--epochs",
      "2",
      "--test-every",
      "1",
      "--repeats",
      "2",
      "--test-per-class",
      "10",
      "--seed",
      "7",
      "--threads",
      "1",
      "--json",
      json,
      ...extra,
    ];
    const whole = join(dir, "two.json");
    assert.equal(cao2(...args(whole)).status, 0);
    const parts = [0, 1].map((k) => join(dir, `r${k}.json`));
    for (const [k, part] of parts.entries()) {
      const r = cao2(...args(part, ["--repeat", String(k)]));
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`^soft-label convnet3, repeat ${k} of 2: best top-1 `));
      const rec = JSON.parse(readFileSync(part, "utf8"));
      assert.deepEqual(
        [rec.part, rec.repeats.length, rec.repeats[0].repeat, rec.config.repeats],
        [{ repeat: k }, 1, k, 2],
      );
      assert.ok(!existsSync(`${part}.partial.json`));
    }
    const merged = join(dir, "merged.json");
    // given in any order
    const m = cao2("evaluate", "--merge", "--json", merged, parts[1], parts[0]);
    assert.equal(m.status, 0, m.stderr);
    assert.match(
      m.stdout,
      /^soft-label convnet3, 2 repeat\(s\): best top-1 \d+\.\d\d ± \d+\.\d\d%.*; record: .*merged\.json\nreport: /,
    );
    const got = JSON.parse(readFileSync(merged, "utf8"));
    const want = JSON.parse(readFileSync(whole, "utf8"));
    // Everything but the times and the record of the parts is the whole run's.
    const result = (rec: Record<string, unknown>) =>
      JSON.parse(
        JSON.stringify(rec, (k, v) => (["createdAt", "wallSeconds", "mergedFrom"].includes(k) ? undefined : v)),
      );
    assert.deepEqual(result(got), result(want));
    assert.deepEqual(
      got.mergedFrom.map((p: { path: string; repeat: number }) => [p.path, p.repeat]),
      [
        [parts[0], 0],
        [parts[1], 1],
      ],
    );
    assert.equal(got.part, undefined);
    // Bad merges: one line each, nothing written.
    const bad = (files: string[], pattern: RegExp, flags: string[] = []) => {
      const out = join(dir, `bad-merge-${Math.random().toString(36).slice(2)}.json`);
      assertInputError(cao2("evaluate", "--merge", "--json", out, ...flags, ...files), pattern);
      assert.ok(!existsSync(out));
    };
    bad(
      [parts[0]],
      /the evaluation has 2 repeats \(0\.\.1\) and repeat 1 is missing; run cao2 evaluate --repeat K for it/,
    );
    bad([parts[0], parts[0]], /repeat 0 is in both .*r0\.json and .*r0\.json; give each repeat once/);
    bad([parts[0], whole], /two\.json: not the record of a single repeat \(written without --repeat K\)/);
    const otherSeed = join(dir, "r1-seed8.json");
    assert.equal(cao2(...args(otherSeed, ["--repeat", "1", "--seed", "8"])).status, 0);
    bad(
      [parts[0], otherSeed],
      /r1-seed8\.json is of another evaluation than .*r0\.json: config\.seed differs; merge only the repeats of one evaluation/,
    );
    const corrupt = join(dir, "r-corrupt.json");
    writeFileSync(corrupt, '{"format": "cao2-eval');
    bad([parts[0], corrupt], /r-corrupt\.json: corrupt evaluation record \(not JSON: /);
    bad(parts, /--merge combines saved repeat records, which hold their settings; it takes no --seed/, ["--seed", "3"]);
    bad([], /--merge needs the records to combine/);
    assertInputError(cao2("evaluate", "--merge", parts[0], parts[1]), /--merge needs --json/);
    assertInputError(
      cao2(...args(join(dir, "r9.json"), ["--repeat", "2"])),
      /--repeat 2 is not one of the 2 repeats \(0\.\.1\); give the whole evaluation's --repeats/,
    );
    assertInputError(
      cao2(...args(join(dir, "r9.json"), ["--repeat", "0", "--resume"])),
      /a single --repeat is run again as it is/,
    );
    assertInputError(cao2("evaluate", "--data", rr, "--repeat", "0"), /--repeat needs --json/);
    assertInputError(cao2("evaluate", "--data", rr, "stray"), /unexpected argument 'stray'/);
  },
);

test("evaluate: bad input is one line on stderr and exit code 2", { skip: missing }, () => {
  assertInputError(cao2("evaluate", "--epochs", "1"), /--data is required/);
  assertInputError(cao2("evaluate", "--data", rr, "--epoch", "1"), /unknown flag '--epoch'.*did you mean --epochs/);
  // an empty class folder
  const empty = join(dir, "empty-class");
  cpSync(rr, empty, { recursive: true });
  rmSync(join(empty, "3_Dress"), { recursive: true });
  mkdirSync(join(empty, "3_Dress"));
  assertInputError(cao2("evaluate", "--data", empty), /3_Dress: class folder has no images/);
  // an unreadable image
  const broken = join(dir, "broken");
  cpSync(rr, broken, { recursive: true });
  writeFileSync(join(broken, "4_Coat", "0.png"), "not an image");
  assertInputError(cao2("evaluate", "--data", broken), /4_Coat\/0\.png: not a PNG or JPEG/);
  // 9 classes against Fashion-MNIST's 10
  const nine = join(dir, "nine");
  cpSync(rr, nine, { recursive: true });
  rmSync(join(nine, "9_Ankle-boot"), { recursive: true });
  writeFileSync(
    join(nine, "classes.txt"),
    readFileSync(join(rr, "classes.txt"), "utf8").split("\n").slice(0, 9).join("\n"),
  );
  assertInputError(
    cao2("evaluate", "--data", nine, "--test", rr, "--preset", "fashion-mnist"),
    /has 9 classes but .*rr has 10/,
  );
  // a teacher with 5 outputs for 10 classes
  assertInputError(
    cao2(
      "evaluate",
      "--data",
      rr,
      "--test",
      rr,
      "--preset",
      "fashion-mnist",
      "--protocol",
      "soft",
      "--teacher",
      join(dir, "teacher5.safetensors"),
    ),
    /teacher has 5 outputs but the data set has 10 classes/,
  );
  assertInputError(
    cao2("evaluate", "--data", rr, "--test", rr, "--preset", "fashion-mnist", "--test-per-class", "7"),
    /has 2 images, fewer than the 7 per class/,
  );
  assertInputError(cao2("evaluate", "--data", rr, "--protocol", "soft"), /needs --teacher/);
  assertInputError(
    cao2("evaluate", "--data", rr, "--json", join(dir, "no", "such", "r.json")),
    /folder .* does not exist/,
  );
});
