// Evaluation data: class matching between training and test sets, resizing to the preset, the random-real
// baseline folder, and mean ± std.
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, test } from "node:test";
import { fitToPreset, loadEvalSet, matchClasses } from "../../src/io/datasets/sets.js";
import { PRESETS } from "../../src/evaluate/presets.js";
import { writeRandomReal } from "../../src/evaluate/random-real.js";
import { meanStd } from "../../src/evaluate/record.js";
import { InputError } from "../../src/errors.js";
import { type Dataset, FASHION_MNIST_CLASSES, loadImageFolder } from "../../src/io/datasets/index.js";
import { encodePng } from "../../src/io/png.js";
import { ROOT } from "../helpers/fixtures.js";
import * as torch from "../../src/torch/index.js";

const dir = mkdtempSync(join(tmpdir(), "cao2-evaldata-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const where = { data: "train", test: "test" };

test("classes match by name or by cao2's folder name, label by label", () => {
  const folders = [
    "0_T-shirt-top",
    "1_Trouser",
    "2_Pullover",
    "3_Dress",
    "4_Coat",
    "5_Sandal",
    "6_Shirt",
    "7_Sneaker",
    "8_Bag",
    "9_Ankle-boot",
  ];
  const pairs = matchClasses(folders, FASHION_MNIST_CLASSES, where);
  assert.deepEqual(pairs[0], { label: 0, data: "0_T-shirt-top", test: "T-shirt/top" });
  assert.equal(matchClasses(FASHION_MNIST_CLASSES, FASHION_MNIST_CLASSES, where).length, 10);
  // 11 classes: the label width is 2
  const eleven = Array.from({ length: 11 }, (_, i) => `c${i}`);
  assert.equal(
    matchClasses(
      eleven.map((c, i) => `${String(i).padStart(2, "0")}_${c}`),
      eleven,
      where,
    ).length,
    11,
  );
});

test("different class counts or names (or order) are input errors", () => {
  assert.throws(
    () => matchClasses(["a", "b"], ["a", "b", "c"], where),
    (e: Error) => e instanceof InputError && /train has 2 classes but test has 3/.test(e.message),
  );
  assert.throws(() => matchClasses(["a", "x"], ["a", "b"], where), /class 1 is 'x' in train but 'b' in test/);
  assert.throws(() => matchClasses(["1_b", "0_a"], ["a", "b"], where), /class 0 is '1_b'/);
});

function greySet(n: number, size: number): Dataset {
  return {
    images: torch.randint(0, 256, [n, 1, size, size], { generator: new torch.Generator(1) }).to("uint8"),
    labels: Int32Array.from({ length: n }, (_, i) => i % 2),
    classes: ["a/b", "c d"],
    source: { format: "image-folder", path: "memory", fileCount: n, sha256: "" },
  };
}

test("sets are resized to the preset's size; a channel mismatch is an input error", () => {
  const fm = PRESETS["fashion-mnist"];
  const ds = fitToPreset(greySet(3, 28), fm);
  assert.deepEqual(ds.images.shape, [3, 1, 32, 32]);
  assert.equal(ds.images.dtype, "uint8");
  assert.throws(
    () => fitToPreset(greySet(3, 28), PRESETS.imagenet),
    /1-channel images, but the imagenet preset takes 3/,
  );
});

test("random-real: an ImageFolder that reads back with the same labels and pixels, classes.txt, manifest", () => {
  const src = greySet(12, 5);
  const out = join(dir, "rr");
  const m = writeRandomReal({ source: src, sourceName: "memory", ipc: 3, seed: 7, out });
  assert.deepEqual(readdirSync(out).sort(), ["0_a-b", "1_c-d", "classes.txt", "manifest.json"]);
  assert.equal(readFileSync(join(out, "classes.txt"), "utf8"), "0_a-b\n1_c-d\n");
  assert.equal(m.indices.length, 6);
  assert.ok(m.indices.every((i, k) => src.labels[i] === (k < 3 ? 0 : 1)));
  const back = loadImageFolder(out);
  assert.deepEqual(back.classes, ["0_a-b", "1_c-d"]);
  assert.deepEqual([...back.labels], [0, 0, 0, 1, 1, 1]);
  const expected = torch.indexSelect(src.images, 0, torch.tensor(m.indices, { dtype: "int64" }));
  assert.ok(torch.equal(back.images, expected), "pixels survive the PNG round trip");
  const manifest = JSON.parse(readFileSync(join(out, "manifest.json"), "utf8"));
  assert.equal(manifest.seed, 7);
  assert.deepEqual(manifest.indices, m.indices);
  // the same seed picks the same images; no temporary folder is left behind
  const again = writeRandomReal({ source: src, sourceName: "memory", ipc: 3, seed: 7, out: join(dir, "rr2") });
  assert.deepEqual(again.indices, m.indices);
  assert.ok(readdirSync(dir).every((f) => !f.endsWith(".tmp")));
});

test("random-real refuses a non-empty output folder and leaves it untouched; an empty one is fine", () => {
  const out = join(dir, "busy");
  mkdirSync(out);
  writeFileSync(join(out, "keep.txt"), "x");
  assert.throws(() => writeRandomReal({ source: greySet(4, 5), sourceName: "m", ipc: 1, seed: 0, out }), /not empty/);
  assert.deepEqual(readdirSync(out), ["keep.txt"]);
  const empty = join(dir, "empty");
  mkdirSync(empty);
  writeRandomReal({ source: greySet(4, 5), sourceName: "m", ipc: 1, seed: 0, out: empty });
  assert.ok(existsSync(join(empty, "manifest.json")));
  assert.throws(
    () => writeRandomReal({ source: greySet(4, 5), sourceName: "m", ipc: 3, seed: 0, out: join(dir, "x") }),
    /fewer than the 3 per class/,
  );
});

test("mean ± sample standard deviation", () => {
  const s = meanStd([70, 72, 77]);
  assert.equal(s.mean, 73);
  assert.ok(Math.abs(s.std - Math.sqrt((9 + 1 + 16) / 2)) < 1e-12);
  assert.equal(meanStd([5]).std, 0);
});

test("a distilled set written before the state moved out (.cao2/ inside, with images) reads as its class folders only", async () => {
  const root = join(dir, "old-distill");
  const png = encodePng({ width: 4, height: 4, channels: 1, data: new Uint8Array(16).fill(9) });
  for (const f of [
    "0_T-shirt-top/0.png",
    "0_T-shirt-top/1.png",
    "1_Trouser/0.png",
    ".cao2/pre-refine/0_T-shirt-top/0.png",
    ".cao2/pre-refine/1_Trouser/0.png",
  ]) {
    mkdirSync(join(root, dirname(f)), { recursive: true });
    writeFileSync(join(root, f), png);
  }
  writeFileSync(join(root, ".cao2", "run.json"), "{}");
  for (const classList of [false, true]) {
    if (classList) writeFileSync(join(root, "classes.txt"), "0_T-shirt-top\n1_Trouser\n");
    const ds = await loadEvalSet(root, "train", PRESETS["fashion-mnist"]);
    assert.deepEqual(ds.classes, ["0_T-shirt-top", "1_Trouser"], classList ? "from classes.txt" : "from the folders");
    assert.deepEqual([...ds.labels], [0, 0, 1]);
  }
});

test("--subset: wnid folders (the authors' layout) and cao2's <label>_<wnid> folders take the subset's label order; a wrong mapping is an error", async () => {
  const wnids = readFileSync(join(ROOT, "assets", "imagenet", "class_woof.txt"), "utf8")
    .trim()
    .split("\n");
  assert.notDeepEqual([...wnids].sort(), wnids, "the subset's order is not the sorted order");
  const png = (v: number) => encodePng({ width: 6, height: 5, channels: 3, data: new Uint8Array(90).fill(v) });
  const write = (root: string, names: string[]) =>
    names.forEach((n, i) => {
      mkdirSync(join(root, n), { recursive: true });
      writeFileSync(join(root, n, "x.png"), png(i * 20));
    });
  const authors = join(dir, "woof-authors");
  const ours = join(dir, "woof-cao2");
  write(authors, [...wnids].sort());
  write(
    ours,
    wnids.map((w, i) => `${i}_${w}`),
  );
  const imagenet = PRESETS.imagenet;
  // without the class list, sorted wnids do not line up with cao2's label order: refused
  const plainA = await loadEvalSet(authors, "test", imagenet);
  const plainO = await loadEvalSet(ours, "train", imagenet);
  assert.throws(
    () => matchClasses(plainO.classes, plainA.classes, where),
    /class 0 is '0_n02096294' in train but 'n02086240' in test/,
  );
  const a = await loadEvalSet(authors, "test", imagenet, { classList: "imagewoof" });
  const o = await loadEvalSet(ours, "train", imagenet, { classList: "imagewoof" });
  assert.deepEqual(a.classes, wnids);
  assert.equal(matchClasses(o.classes, a.classes, where).length, 10);
  assert.match(a.source.classOrder!, /^imagewoof/);
  // the image of wnids[0] is the one in that wnid's folder, whatever the folder order on disk
  const first = await a.images([0]);
  assert.equal(first.toBytes()[0], [...wnids].sort().indexOf(wnids[0]) * 20);
  first.dispose();
  await Promise.all([plainA, plainO, a, o].map((s) => s.close()));
  // a missing class, an extra folder, a class under both names
  const bad = join(dir, "woof-bad");
  write(bad, [...wnids.slice(1), "n99999999"]);
  await assert.rejects(
    loadEvalSet(bad, "test", imagenet, { classList: "imagewoof" }),
    (e: Error) =>
      e instanceof InputError && /no folder for class 0 of imagewoof \(n02096294 or 0_n02096294\)/.test(e.message),
  );
  write(bad, [wnids[0]]);
  await assert.rejects(
    loadEvalSet(bad, "test", imagenet, { classList: "imagewoof" }),
    /1 folder\(s\) are no class of imagewoof: n99999999/,
  );
  rmSync(join(bad, "n99999999"), { recursive: true });
  write(bad, ["0_n02096294"]);
  await assert.rejects(
    loadEvalSet(bad, "test", imagenet, { classList: "imagewoof" }),
    /class 0 of imagewoof has two folders, n02096294 and 0_n02096294/,
  );
  await assert.rejects(
    loadEvalSet("fashion-mnist", "test", PRESETS["fashion-mnist"], { classList: "imagewoof" }),
    /applies to ImageFolders/,
  );
});
