// Students and teachers: the named students, architecture inference from state dicts, and teacher checks.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { PRESETS } from "../../src/evaluate/presets.js";
import { archName, buildClassifier, type ClassifierSpec, inferClassifierSpec, studentSpec } from "../../src/evaluate/students.js";
import { loadTeacher } from "../../src/evaluate/teacher.js";
import { InputError } from "../../src/errors.js";
import { saveSafetensors } from "../../src/io/safetensors.js";
import * as torch from "../../src/torch/index.js";

const dir = mkdtempSync(join(tmpdir(), "cao2-students-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const fm = PRESETS["fashion-mnist"];

test("named students: ConvNet-3 width 128 and torchvision ResNets at the preset's channels and stem", () => {
  const o = { numClasses: 10, inChannels: 1, imageSize: 32, norm: "instance" as const, stem: "cifar" as const };
  const c = buildClassifier(studentSpec("convnet3", o));
  assert.deepEqual(c.forward(torch.zeros([2, 1, 32, 32])).shape, [2, 10]);
  assert.deepEqual(c.stateDict().get("features.0.weight")!.shape, [128, 1, 3, 3]);
  // first padding 1: 32 -> 16 -> 8 -> 4, so the classifier reads 128 x 4 x 4 features
  assert.deepEqual(c.stateDict().get("classifier.weight")!.shape, [10, 128 * 16]);
  for (const arch of ["resnet18", "resnet50", "resnet101"] as const) {
    const spec = studentSpec(arch, o);
    assert.equal(archName(spec), arch);
    assert.equal(spec.kind === "resnet" && spec.stem, "cifar");
  }
});

const SPECS: ClassifierSpec[] = [
  { kind: "resnet", depth: 18, norm: "batch", stem: "cifar", numClasses: 10, inChannels: 1 },
  { kind: "resnet", depth: 18, norm: "instance", stem: "imagenet", numClasses: 7, inChannels: 3 },
  { kind: "resnet", depth: 50, norm: "batch", stem: "imagenet", numClasses: 5, inChannels: 3 },
  { kind: "convnet", depth: 3, width: 128, norm: "instance", numClasses: 10, inChannels: 1, imageSize: 32 },
  { kind: "convnet", depth: 2, width: 16, norm: "batch", numClasses: 4, inChannels: 3, imageSize: 32 },
  { kind: "convnet", depth: 2, width: 16, norm: "none", numClasses: 4, inChannels: 3, imageSize: 32 },
];

test("the architecture of a state dict is read off its keys and shapes", () => {
  for (const spec of SPECS) {
    const sd = buildClassifier(spec).stateDict();
    assert.deepEqual(inferClassifierSpec(sd, 32, "x"), spec, archName(spec));
  }
  assert.throws(() => inferClassifierSpec(new Map([["w", torch.zeros([1])]]), 32, "odd.safetensors"), /odd.safetensors: not a ResNet .* or ConvNet/);
});

function saveTeacher(name: string, spec: ClassifierSpec): string {
  const path = join(dir, name);
  saveSafetensors(path, buildClassifier(spec, { generator: new torch.Generator(3) }).stateDict());
  return path;
}

test("a teacher loads with its weights, in eval mode, frozen", () => {
  const spec = SPECS[0];
  const path = saveTeacher("r18.safetensors", spec);
  const t = loadTeacher(path, { preset: fm, numClasses: 10, arch: "resnet18" });
  assert.deepEqual(t.spec, spec);
  assert.equal(t.model.training, false);
  assert.ok(t.model.parameters().every((p) => !p.requiresGrad));
  const ref = buildClassifier(spec, { generator: new torch.Generator(3) }).eval();
  const x = torch.rand([2, 1, 32, 32], { generator: new torch.Generator(4) });
  assert.ok(torch.equal(t.model.forward(x), ref.forward(x)));
});

test("teacher errors: wrong class count, wrong channels, wrong architecture, .pt files", () => {
  const five = saveTeacher("five.safetensors", { ...SPECS[3], numClasses: 5 });
  assert.throws(() => loadTeacher(five, { preset: fm, numClasses: 10 }), (e: Error) => e instanceof InputError && /5 outputs but the data set has 10 classes/.test(e.message));
  const rgb = saveTeacher("rgb.safetensors", { ...SPECS[4], numClasses: 10 });
  assert.throws(() => loadTeacher(rgb, { preset: fm, numClasses: 10 }), /3-channel input but the fashion-mnist preset gives 1/);
  const conv = saveTeacher("conv.safetensors", SPECS[3]);
  assert.throws(() => loadTeacher(conv, { preset: fm, numClasses: 10, arch: "resnet18" }), /is a convnet3, not a resnet18/);
  const pt = join(dir, "t.pt");
  writeFileSync(pt, "not read");
  assert.throws(() => loadTeacher(pt, { preset: fm, numClasses: 10 }), /PyTorch checkpoints are not readable yet/);
});
