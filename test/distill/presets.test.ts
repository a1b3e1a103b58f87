import assert from "node:assert/strict";
import { test } from "node:test";
import { defaultTMax, PRESETS, presetClasses, recipeDefaults, VALIDATED } from "../../src/distill/presets.js";
import { classFolder } from "../../src/io/datasets/imagefolder.js";

test("subset labels follow the subset file's line order; model indices are ImageNet-1k positions", () => {
  const woof = presetClasses("imagewoof");
  assert.equal(woof.length, 10);
  assert.deepEqual(
    woof.map((c) => c.label),
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
  );
  // n02096294 (Australian terrier) is the first ImageWoof class and class 193 of ImageNet-1k.
  assert.equal(woof[0].id, "n02096294");
  assert.equal(woof[0].modelIndex, 193);
  const nette = presetClasses("imagenette");
  assert.equal(nette[0].id, "n01440764");
  assert.equal(nette[0].modelIndex, 0);
  assert.equal(nette[0].name, "tench");
  assert.equal(presetClasses("imagenet-100").length, 100);
  const in1k = presetClasses("imagenet-1k");
  assert.equal(in1k.length, 1000);
  assert.ok(in1k.every((c, i) => c.modelIndex === i));
});

test("class folders sort in label order", () => {
  const cls = presetClasses("imagenet-100");
  const folders = cls.map((c) => classFolder(c, cls.length));
  assert.deepEqual([...folders].sort(), folders);
  assert.equal(classFolder(presetClasses("fashion-mnist")[0], 10), "0_T-shirt-top");
});

test("--compat authors switches to the released code's per-subset settings", () => {
  assert.equal(recipeDefaults("imagenette", "paper").refineIters, 100);
  assert.equal(recipeDefaults("imagenette", "authors").refineIters, 0);
  const in100 = recipeDefaults("imagenet-100", "authors");
  assert.equal(in100.select, "least-confident");
  assert.equal(defaultTMax(50, in100.tMaxDivisor), 5, "the ImageNet-100 script: range(1, S // 8)");
  assert.equal(in100.timestepMode, "index");
  assert.equal(in100.refineTrainMode, true);
  // The released ImageNet-100 script's active main() refines under the null label (the true label is in main_var()).
  assert.equal(in100.condition, "null");
  assert.equal(recipeDefaults("imagenet-100", "paper").condition, "true");
  assert.equal(recipeDefaults("imagewoof", "paper").condition, "null");
  assert.equal(recipeDefaults("imagewoof", "paper").fill, "random");
  assert.equal(recipeDefaults("imagewoof", "authors").fill, "ordered");
});

test("T^ follows the schedule length as the released code's range(1, S // 4): 1..floor(S/4) - 1, at least 1", () => {
  for (const p of PRESETS) assert.equal(defaultTMax(50, recipeDefaults(p, "paper").tMaxDivisor), 11, p);
  const divisor = recipeDefaults("fashion-mnist", "paper").tMaxDivisor;
  assert.deepEqual(
    [2, 5, 8, 9, 12, 100, 250].map((s) => defaultTMax(s, divisor)),
    [1, 1, 1, 1, 2, 24, 61],
  );
  for (let s = 2; s <= 300; s++) {
    const t = defaultTMax(s, divisor);
    assert.ok(t >= 1 && t < s, `S = ${s}: T^ = ${t} must be a step of the schedule other than 0`);
  }
  assert.equal(defaultTMax(5, recipeDefaults("imagenet-100", "authors").tMaxDivisor), 1);
});

test("--defaults: Fashion-MNIST takes its validated settings per IPC band; paper and authors modes do not", () => {
  const bands = VALIDATED["fashion-mnist"]!;
  assert.ok(bands.length > 0, "the Fashion-MNIST preset has validated settings");
  assert.ok(
    bands.every((b, i) => i === 0 || b.maxIpc > bands[i - 1].maxIpc),
    "bands in increasing IPC order",
  );
  assert.equal(bands.at(-1)!.maxIpc, Infinity, "every IPC falls in a band");
  const paper = recipeDefaults("fashion-mnist", "paper", { defaults: "paper" });
  assert.equal(paper.cfg, 2.7);
  assert.equal(paper.shippedDiT, "dit.safetensors");
  for (const ipc of [1, 10, 50, 1000]) {
    const band = bands.find((b) => ipc <= b.maxIpc)!;
    const d = recipeDefaults("fashion-mnist", "paper", { ipc });
    for (const [k, v] of Object.entries(band.settings)) assert.deepEqual(d[k as keyof typeof d], v, `IPC ${ipc}: ${k}`);
    assert.deepEqual(recipeDefaults("fashion-mnist", "paper", { ipc, defaults: "paper" }), paper);
    assert.equal(recipeDefaults("fashion-mnist", "authors", { ipc }).shippedDiT, "dit.safetensors");
  }
  // Presets without validated settings have the paper's either way.
  assert.deepEqual(
    recipeDefaults("imagewoof", "paper", { ipc: 10 }),
    recipeDefaults("imagewoof", "paper", { defaults: "paper" }),
  );
});
