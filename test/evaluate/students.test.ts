// Students and teachers: the named students, architecture inference from state dicts, and teacher checks.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { PRESETS } from "../../src/evaluate/presets.js";
import { STUDENT_ARCHS, studentSpec } from "../../src/evaluate/students.js";
import { archName, buildClassifier, type ClassifierSpec, classifierSpecOf } from "../../src/models/classifiers.js";
import { loadTeacher } from "../../src/evaluate/teacher.js";
import { InputError } from "../../src/errors.js";
import { saveSafetensors } from "../../src/io/safetensors.js";
import { resizeImages } from "../../src/io/image.js";
import { createAutoencoderKL } from "../../src/models/autoencoder.js";
import { createResNet } from "../../src/models/resnet.js";
import { saveModel } from "../../src/models/saved.js";
import * as torch from "../../src/torch/index.js";

const dir = mkdtempSync(join(tmpdir(), "cao2-students-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const fm = PRESETS["fashion-mnist"];
const TEN = Array.from({ length: 10 }, (_, i) => `c${i}`);

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

test("every --arch name builds the student it names, at the preset's channels, and a 224 px input gives logits", () => {
  const o = { numClasses: 5, inChannels: 3, imageSize: 224, norm: "batch" as const, stem: "imagenet" as const };
  for (const arch of STUDENT_ARCHS) {
    const spec = studentSpec(arch, o);
    assert.equal(archName(spec), arch);
    torch.tidy(() => {
      const m = buildClassifier(spec).eval();
      assert.deepEqual(torch.noGrad(() => m.forward(torch.zeros([1, 3, 224, 224]))).shape, [1, 5], arch);
      assert.equal(m.numFeatures, m.features(torch.zeros([1, 3, 224, 224])).size(1), arch);
      torch.disposeAll(m.stateDict());
    });
  }
  // ConvNet-D depth from the name; ResNet-AP takes IDC's stem for the size
  assert.equal((studentSpec("convnet6", o) as { depth: number }).depth, 6);
  assert.equal((studentSpec("resnetap10", o) as { stem: string }).stem, "large");
  assert.equal((studentSpec("resnetap10", { ...o, imageSize: 32 }) as { stem: string }).stem, "small");
  assert.throws(
    () => studentSpec("mobilenet_v2", { ...o, norm: "instance" }),
    (e) => e instanceof InputError && /mobilenet_v2 is built with batch norm only/.test(e.message),
  );
});

const SPECS: ClassifierSpec[] = [
  { kind: "resnet", depth: 18, norm: "batch", stem: "cifar", numClasses: 10, inChannels: 1 },
  { kind: "resnet", depth: 18, norm: "instance", stem: "imagenet", numClasses: 7, inChannels: 3 },
  { kind: "resnet", depth: 50, norm: "batch", stem: "imagenet", numClasses: 5, inChannels: 3 },
  { kind: "convnet", depth: 3, width: 128, norm: "instance", numClasses: 10, inChannels: 1, imageSize: 32 },
  { kind: "convnet", depth: 2, width: 16, norm: "batch", numClasses: 4, inChannels: 3, imageSize: 32 },
  { kind: "convnet", depth: 2, width: 16, norm: "none", numClasses: 4, inChannels: 3, imageSize: 32 },
  { kind: "resnetap", depth: 10, norm: "instance", stem: "large", numClasses: 10, inChannels: 3 },
  { kind: "resnetap", depth: 10, norm: "batch", stem: "small", numClasses: 3, inChannels: 1 },
  { kind: "mobilenet_v2", norm: "batch", dropout: 0.2, numClasses: 6, inChannels: 3 },
  { kind: "efficientnet_b0", norm: "batch", dropout: 0.2, stochasticDepth: 0.2, numClasses: 6, inChannels: 3 },
];

test("the architecture of a state dict is read off its keys and shapes", () => {
  for (const spec of SPECS) {
    const sd = buildClassifier(spec).stateDict();
    assert.deepEqual(classifierSpecOf(new Map([...sd].map(([k, t]) => [k, t.shape])), 32, "x"), spec, archName(spec));
    torch.disposeAll(sd);
  }
  assert.throws(
    () => classifierSpecOf(new Map([["w", [1]]]), 32, "odd.safetensors"),
    /odd.safetensors: not a classifier cao2 builds \(ResNet, ResNet-AP, ConvNet, MobileNetV2, EfficientNet-B0\): its keys match none/,
  );
});

function saveTeacher(name: string, spec: ClassifierSpec): string {
  const path = join(dir, name);
  saveSafetensors(path, buildClassifier(spec, { generator: new torch.Generator(3) }).stateDict());
  return path;
}

test("a teacher loads with its weights, in eval mode, frozen", () => {
  const spec = SPECS[0];
  const path = saveTeacher("r18.safetensors", spec);
  const t = loadTeacher(path, { preset: fm, classes: TEN, arch: "resnet18" });
  assert.deepEqual(t.spec, spec);
  assert.equal(t.model.training, false);
  assert.ok(t.model.parameters().every((p) => !p.requiresGrad));
  const ref = buildClassifier(spec, { generator: new torch.Generator(3) }).eval();
  const x = torch.rand([2, 1, 32, 32], { generator: new torch.Generator(4) });
  assert.ok(torch.equal(t.model.forward(x), ref.forward(x)));
});

test("teacher errors: wrong class count, wrong channels, wrong architecture, unreadable files", () => {
  const five = saveTeacher("five.safetensors", { ...SPECS[3], numClasses: 5 });
  assert.throws(
    () => loadTeacher(five, { preset: fm, classes: TEN }),
    (e: Error) => e instanceof InputError && /5 outputs but the data set has 10 classes/.test(e.message),
  );
  const rgb = saveTeacher("rgb.safetensors", { ...SPECS[4], numClasses: 10 });
  assert.throws(
    () => loadTeacher(rgb, { preset: fm, classes: TEN }),
    /3-channel input but the fashion-mnist preset gives 1/,
  );
  const conv = saveTeacher("conv.safetensors", SPECS[3]);
  assert.throws(
    () => loadTeacher(conv, { preset: fm, classes: TEN, arch: "resnet18" }),
    /is a convnet3, not a resnet18/,
  );
  const pt = join(dir, "t.pt");
  writeFileSync(pt, "not a checkpoint");
  assert.throws(
    () => loadTeacher(pt, { preset: fm, classes: TEN }),
    (e: Error) => e instanceof InputError && e.message.includes(pt),
  );
});

test("a cao2 classifier file: built from its description (max-pool stem), classes checked, input converted", () => {
  const config = { depth: 18 as const, numClasses: 10, inChannels: 1, stem: "mid" as const };
  const net = createResNet(config, { generator: new torch.Generator(5) }).eval();
  const pre = { size: 16, channels: 1, mean: [0.3], std: [0.4] };
  const path = join(dir, "selector.safetensors");
  saveModel(path, net, { kind: "resnet", config, preprocess: pre, classes: TEN });
  const t = loadTeacher(path, { preset: fm, classes: TEN.map((c, i) => `${i}_${c}`), arch: "resnet18" });
  assert.equal(t.spec.kind === "resnet" && t.spec.stem, "mid");
  // the student's input: raw images at the preset's 32x32, normalised with the preset's statistics
  const raw = torch.rand([3, 1, 32, 32], { generator: new torch.Generator(6) });
  const studentInput = raw.sub(fm.mean[0]).div(fm.std[0]);
  const expected = net.forward(resizeImages(raw, [16, 16]).sub(0.3).div(0.4));
  const got = t.forward(studentInput);
  const err = torch.sub(got, expected).abs().max().item() / expected.abs().max().item();
  assert.ok(err < 1e-5, `relative error ${err}`);
  const other = [...TEN.slice(0, 9), "zebra"];
  assert.throws(
    () => loadTeacher(path, { preset: fm, classes: other }),
    /class 9 is 'zebra' in the training set but 'c9' in the teacher/,
  );
  const ae = join(dir, "ae.safetensors");
  const auto = createAutoencoderKL({
    inChannels: 1,
    outChannels: 1,
    blockOutChannels: [8],
    layersPerBlock: 1,
    latentChannels: 4,
    normNumGroups: 4,
    scalingFactor: 1,
  });
  saveModel(ae, auto, { kind: "autoencoder", config: auto.config, scalingFactor: 1 });
  assert.throws(
    () => loadTeacher(ae, { preset: fm, classes: TEN }),
    /expected a classifier, but it holds a cao2 autoencoder model/,
  );
});
