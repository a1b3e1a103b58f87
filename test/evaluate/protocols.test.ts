// Protocol settings and training steps: the learning rates the loop actually sets, AdamW's weight-decay groups, and
// each trainer's loss against the same pieces composed by hand (augmentation, CutMix, teacher on the mixed batch).
import assert from "node:assert/strict";
import { test } from "node:test";
import * as augmentModule from "../../src/evaluate/augment.js";
import { cutmix } from "../../src/evaluate/augment.js";
import { normalize } from "../../src/io/image.js";
import { cutmixCrossEntropy, softLabelKl } from "../../src/evaluate/losses.js";
import { PRESETS } from "../../src/evaluate/presets.js";
import {
  augmentBatch,
  forwardAt,
  hardTrainer,
  makeOptimizer,
  protocolSettings,
  softTrainer,
} from "../../src/evaluate/protocols.js";
import { hardLr, softLr } from "../../src/evaluate/schedule.js";
import { buildClassifier, type ClassifierSpec } from "../../src/models/classifiers.js";
import { trainStudent } from "../../src/evaluate/train-student.js";
import { type Dataset, memoryImageSet } from "../../src/io/datasets/index.js";
import * as torch from "../../src/torch/index.js";

const preset = PRESETS["fashion-mnist"];
const tiny = (norm: "batch" | "instance", numClasses = 4): ClassifierSpec => ({
  kind: "convnet",
  depth: 1,
  width: 4,
  norm,
  numClasses,
  inChannels: 1,
  imageSize: 8,
});

/** n random 8x8 grey uint8 images with labels 0..3 in turn. */
function tinySet(n: number, seed = 0): Dataset {
  const images = torch.randint(0, 256, [n, 1, 8, 8], { generator: new torch.Generator(seed) }).to("uint8");
  return {
    images,
    labels: Int32Array.from({ length: n }, (_, i) => i % 4),
    classes: ["a", "b", "c", "d"],
    source: { format: "image-folder", path: "memory", fileCount: n, sha256: "" },
  };
}

const settings = (protocol: "hard" | "soft", epochs: number) =>
  protocolSettings({ protocol, arch: "convnet3", preset, ipc: 2, numClasses: 4, setSize: 8, epochs });

test("protocol defaults: hard SGD 0.01/0.9/5e-4 batch 64 instance norm; soft AdamW 1e-3 batch by IPC, batch norm, T 20", () => {
  const h = protocolSettings({ protocol: "hard", arch: "convnet3", preset, ipc: 10, numClasses: 10, setSize: 100 });
  assert.deepEqual(h.optimizer, { name: "sgd", lr: 0.01, momentum: 0.9, weightDecay: 5e-4 });
  assert.equal(h.batchSize, 64);
  assert.equal(h.norm, "instance");
  assert.equal(h.protocolEpochs, 2000);
  assert.equal(h.epochs, Math.round(2000 * preset.hardEpochScale));
  assert.equal(h.testEpochs.length, preset.hardTestCount);
  assert.deepEqual(h.cutmix, { p: 1, beta: 1 });
  const s = protocolSettings({ protocol: "soft", arch: "resnet18", preset, ipc: 10, numClasses: 10, setSize: 100 });
  assert.equal(s.optimizer.name, "adamw");
  assert.equal(s.optimizer.lr, 1e-3);
  assert.equal(s.batchSize, 50);
  assert.equal(s.norm, "batch");
  assert.equal(s.temperature, 20);
  assert.equal(s.protocolEpochs, 300);
  // overrides
  const o = protocolSettings({
    protocol: "hard",
    arch: "convnet3",
    preset,
    ipc: 10,
    numClasses: 10,
    setSize: 100,
    epochs: 30,
    testEvery: 10,
    cutmix: false,
  });
  assert.deepEqual(o.testEpochs, [10, 20, 30]);
  const odd = protocolSettings({
    protocol: "hard",
    arch: "convnet3",
    preset,
    ipc: 10,
    numClasses: 10,
    setSize: 100,
    epochs: 25,
    testEvery: 10,
  });
  assert.deepEqual(odd.testEpochs, [10, 20, 25]);
  assert.equal(o.cutmix, null);
  assert.throws(
    () =>
      protocolSettings({
        protocol: "hard",
        arch: "convnet3",
        preset,
        ipc: 10,
        numClasses: 10,
        setSize: 100,
        epochs: 0,
      }),
    /positive integer/,
  );
});

test("ImageNet with 100+ classes: IDC's hard-label branch (lr 0.1, wd 1e-4, batch 128); flags override any protocol value and are recorded", () => {
  const imagenet = PRESETS.imagenet;
  const base = { protocol: "hard" as const, arch: "resnetap10" as const, preset: imagenet, ipc: 10, setSize: 10_000 };
  const k1 = protocolSettings({ ...base, numClasses: 1000 });
  assert.deepEqual(k1.optimizer, { name: "sgd", lr: 0.1, momentum: 0.9, weightDecay: 1e-4 });
  assert.equal(k1.batchSize, 128);
  assert.match(k1.branch!, /100\+ classes: lr 0.1, wd 0.0001, batch >= 128/);
  assert.equal(k1.protocolEpochs, 1300, "100+ classes: 2/3 of 2000, rounded down to a multiple of 100");
  assert.deepEqual(k1.overrides, {});
  // 10 classes, the Fashion-MNIST preset, or the soft protocol: the usual numbers
  for (const s of [
    protocolSettings({ ...base, numClasses: 10 }),
    protocolSettings({ ...base, preset, numClasses: 100 }),
  ]) {
    assert.deepEqual([s.optimizer.lr, s.optimizer.weightDecay, s.batchSize, s.branch], [0.01, 5e-4, 64, null]);
  }
  assert.equal(protocolSettings({ ...base, protocol: "soft", arch: "resnet18", numClasses: 1000 }).branch, null);
  const o = protocolSettings({ ...base, numClasses: 1000, lr: 0.05, weightDecay: 0, batchSize: 256, epochs: 7 });
  assert.deepEqual([o.optimizer.lr, o.optimizer.weightDecay, o.batchSize, o.epochs], [0.05, 0, 256, 7]);
  assert.deepEqual(o.overrides, { epochs: 7, batchSize: 256, lr: 0.05, weightDecay: 0 });
  const soft = protocolSettings({ ...base, protocol: "soft", arch: "resnet18", numClasses: 10, weightDecay: 0.05 });
  assert.equal(soft.optimizer.weightDecay, 0.05);
  assert.throws(() => protocolSettings({ ...base, numClasses: 10, weightDecay: -1 }), /weight decay must be 0 or more/);
});

for (const protocol of ["hard", "soft"] as const) {
  test(`${protocol}: the loop sets every parameter group's lr to schedule.ts's value for each epoch`, async () => {
    const epochs = 12;
    const s = settings(protocol, epochs);
    const student = buildClassifier(tiny(s.norm), { generator: new torch.Generator(1) });
    const teacher = buildClassifier(tiny("batch"), { generator: new torch.Generator(2) }).eval();
    const trainer = protocol === "hard" ? hardTrainer(student, s, preset) : softTrainer(student, teacher, s, preset);
    const seen: number[][] = [];
    await trainStudent(student, trainer, memoryImageSet(tinySet(8)), {
      epochs,
      batchSize: s.batchSize,
      testEpochs: [],
      test: async () => 0,
      device: "cpu",
      dataGen: new torch.Generator(3),
      augGen: new torch.Generator(4),
      onEpoch: () => seen.push(trainer.optimizer.paramGroups.map((g) => g.lr)),
    });
    assert.equal(seen.length, epochs);
    const formula = protocol === "hard" ? hardLr : softLr;
    seen.forEach((lrs, e) => lrs.forEach((lr) => assert.equal(lr, formula(s.optimizer.lr, e, epochs), `epoch ${e}`)));
    // the schedules do change within 12 epochs (hard: milestones 8 and 10)
    assert.ok(new Set(seen.map((l) => l[0])).size >= 3);
  });
}

test("soft AdamW: weight decay on weights with 2+ dimensions, none on biases and norm parameters", () => {
  const s = settings("soft", 10);
  const student = buildClassifier(tiny("batch"));
  const opt = makeOptimizer(student, s.optimizer);
  const [decay, rest] = opt.paramGroups as unknown as { params: torch.Tensor[]; weightDecay: number }[];
  assert.equal(decay.weightDecay, 0.01);
  assert.equal(rest.weightDecay, 0);
  const names = new Map([...student.namedParameters()].map(([k, v]) => [v, k]));
  assert.deepEqual(decay.params.map((p) => names.get(p)).sort(), ["classifier.weight", "features.0.weight"]);
  assert.deepEqual(rest.params.map((p) => names.get(p)).sort(), [
    "classifier.bias",
    "features.0.bias",
    "features.1.bias",
    "features.1.weight",
  ]);
});

/** Runs `f` with a generator in a given state. */
function withState<T>(state: torch.Tensor, f: (g: torch.Generator) => T): T {
  const g = new torch.Generator(0);
  g.setState(state);
  return f(g);
}

test("hard step: CutMix cross-entropy of the student on the augmented, mixed batch", () => {
  const s = settings("hard", 10);
  const student = buildClassifier(tiny("instance"), { generator: new torch.Generator(5) });
  const data = tinySet(6, 1);
  const x = data.images.to("float32").div(255);
  const y = torch.tensor([0, 1, 2, 3, 0, 1], { dtype: "int64" });
  const state = new torch.Generator(11).getState();
  const got = withState(state, (g) => hardTrainer(student, s, preset).loss(x, y, g).item());
  const expected = withState(state, (g) => {
    const m = cutmix(augmentBatch(x, g, s, preset), g, { p: 1, beta: 1 });
    assert.ok(m.lam < 1, "this draw mixes");
    return cutmixCrossEntropy(student.forward(m.images), y, m.partner, m.lam).item();
  });
  assert.equal(got, expected);
});

test("soft step: KL at T = 20 between student and teacher on the same mixed batch", () => {
  const s = settings("soft", 10);
  const student = buildClassifier(tiny("instance"), { generator: new torch.Generator(6) });
  const teacher = buildClassifier(tiny("batch"), { generator: new torch.Generator(7) }).eval();
  const x = tinySet(6, 2).images.to("float32").div(255);
  const state = new torch.Generator(12).getState();
  const got = withState(state, (g) =>
    softTrainer(student, teacher, s, preset)
      .loss(x, torch.zeros([6], { dtype: "int64" }), g)
      .item(),
  );
  const expected = withState(state, (g) => {
    const m = cutmix(augmentBatch(x, g, s, preset), g, { p: 1, beta: 1 }).images;
    return softLabelKl(student.forward(m), teacher.forward(m), 20).item();
  });
  assert.equal(got, expected);
  // a teacher on the unmixed batch would give another value
  const unmixed = withState(state, (g) => {
    const a = augmentBatch(x, g, s, preset);
    return softLabelKl(student.forward(cutmix(a, g, { p: 1, beta: 1 }).images), teacher.forward(a), 20).item();
  });
  assert.notEqual(got, unmixed);
});

test("augment none: normalisation only; protocol augmentation: same shape, reproducible, different from none", () => {
  const x = tinySet(4, 3).images.to("float32").div(255);
  const none = { ...settings("hard", 10), augment: "none" as const };
  assert.ok(torch.equal(augmentBatch(x, new torch.Generator(1), none, preset), normalize(x, preset.mean, preset.std)));
  for (const p of ["hard", "soft"] as const) {
    const s = settings(p, 10);
    const a = augmentBatch(x, new torch.Generator(1), s, preset);
    assert.deepEqual(a.shape, x.shape);
    assert.ok(torch.equal(a, augmentBatch(x, new torch.Generator(1), s, preset)));
    assert.ok(!torch.equal(a, normalize(x, preset.mean, preset.std)));
  }
});

test("the loop tests after the named epochs; best is the first highest, final the last", async () => {
  const s = settings("hard", 6);
  const student = buildClassifier(tiny("instance"), { generator: new torch.Generator(1) });
  const scripted = [40, 55, 55, 50];
  const modes: boolean[] = [];
  let i = 0;
  const r = await trainStudent(student, hardTrainer(student, s, preset), memoryImageSet(tinySet(8)), {
    epochs: 6,
    batchSize: 4,
    testEpochs: [2, 3, 5, 6],
    test: async () => (modes.push(student.training), scripted[i++]),
    device: "cpu",
    dataGen: new torch.Generator(3),
    augGen: new torch.Generator(4),
  });
  assert.deepEqual(
    r.curve.map((p) => [p.epoch, p.top1]),
    [
      [2, 40],
      [3, 55],
      [5, 55],
      [6, 50],
    ],
  );
  assert.equal(r.best, 55);
  assert.equal(r.bestEpoch, 3);
  assert.equal(r.final, 50);
  assert.deepEqual(modes, [false, false, false, false], "tests run in eval mode");
  assert.equal(student.training, true);
  assert.ok(r.curve.every((p) => Number.isFinite(p.trainLoss)));
});

test("crop-flip augmentation: the protocol's crop and flip only, the same draws as the protocol's first two steps", () => {
  const s = protocolSettings({
    protocol: "hard",
    arch: "convnet3",
    preset,
    ipc: 2,
    numClasses: 4,
    setSize: 8,
    augment: "crop-flip",
  });
  assert.deepEqual(s.augmentations, [
    "RandomResizedCrop(scale 0.5-1)",
    "RandomHorizontalFlip",
    `Normalize(mean ${preset.mean}, std ${preset.std})`,
  ]);
  const x = torch.tidy(() => tinySet(4).images.float().div(255));
  const got = augmentBatch(x, new torch.Generator(3), s, preset);
  const full = protocolSettings({ protocol: "hard", arch: "convnet3", preset, ipc: 2, numClasses: 4, setSize: 8 });
  assert.notDeepEqual(full.augmentations, s.augmentations);
  const g = new torch.Generator(3);
  const want = torch.tidy(() => {
    const { randomResizedCrop, randomHorizontalFlip } = augmentModule;
    return normalize(
      randomHorizontalFlip(randomResizedCrop(x, g, { size: [8, 8], scale: [0.5, 1] }), g),
      preset.mean,
      preset.std,
    );
  });
  assert.deepEqual(got.toNumbers(), want.toNumbers());
});

test("forwardAt bf16: the students (instance and batch norm) run under autocast and give fp32 logits near fp32's", () => {
  for (const norm of ["instance", "batch"] as const) {
    const model = buildClassifier(tiny(norm), { generator: new torch.Generator(3) });
    model.eval();
    const x = torch.randn([4, 1, 8, 8], { generator: new torch.Generator(4) });
    const full = torch.noGrad(() => forwardAt(model, { device: "cpu", precision: "fp32" })(x));
    const low = torch.noGrad(() => forwardAt(model, { device: "cpu", precision: "bf16" })(x));
    assert.equal(low.dtype, "float32");
    const err = low.sub(full).abs().max().item() / full.abs().max().item();
    // A bf16 result (not fp32 left alone), within a few bf16 steps (2^-8 each) of fp32.
    assert.ok(err > 0 && err < 3e-2, `${norm}: rel err ${err}`);
  }
});
