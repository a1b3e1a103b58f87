// Acceptance of the ImageNet-format evaluation path (slow: 12 CLI runs at 224 px): a synthetic ImageNet-style pair
// (10 wnid classes of ImageWoof, training images 48-300 px of mixed sizes, validation images of other sizes, some
// greyscale and CMYK JPEGs) evaluated with `cao2 evaluate --preset imagenet`, hard and soft labels, with each new
// student on one epoch. The record shows the transforms and the settings.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { saveSafetensors } from "../../src/io/safetensors.js";
import { createResNet } from "../../src/models/resnet.js";
import { Generator } from "../../src/torch/index.js";
import { cao2 } from "../helpers/cli.js";
import { ROOT } from "../helpers/fixtures.js";
import { copyFixtureJpeg, writeJpeg, writePng } from "../helpers/image-folders.js";

const STUDENTS = ["resnetap10", "mobilenet_v2", "efficientnet_b0", "convnet4", "convnet5", "convnet6"];

describe("cao2 evaluate --preset imagenet on ImageNet-format folders (slow)", () => {
  const dir = mkdtempSync(join(tmpdir(), "cao2-imagenet-"));
  const train = join(dir, "train");
  const val = join(dir, "val");
  const teacher = join(dir, "resnet18.safetensors");
  after(() => rmSync(dir, { recursive: true, force: true }));

  before(() => {
    const wnids = readFileSync(join(ROOT, "assets", "imagenet", "class_woof.txt"), "utf8")
      .trim()
      .split("\n")
      .slice(0, 10);
    assert.equal(wnids.length, 10);
    wnids.forEach((wnid, c) => {
      // training: one image per class (the students' cost at 224 px dominates), sides 48-300 px, JPEG and PNG;
      // class 3's is a greyscale JPEG, class 7's a CMYK one
      if (c === 3) copyFixtureJpeg("gray", join(train, wnid, "a.JPEG"));
      else if (c === 7) copyFixtureJpeg("cmyk", join(train, wnid, "a.JPEG"));
      else if (c % 2) writePng(join(train, wnid, "a.png"), 64 + c * 20, 300 - c * 9, 100 + c);
      else writeJpeg(join(train, wnid, "a.JPEG"), 48 + ((c * 53) % 253), 300 - ((c * 31) % 200), c);
      // validation: other sizes (up to 500x375, the typical ImageNet size); one greyscale, one CMYK
      if (c === 1) copyFixtureJpeg("gray", join(val, wnid, "v.JPEG"));
      else if (c === 5) copyFixtureJpeg("cmyk", join(val, wnid, "v.JPEG"));
      else writeJpeg(join(val, wnid, "v.JPEG"), 500 - c * 17, 375 - c * 11, 200 + c);
    });
    saveSafetensors(teacher, createResNet({ depth: 18, numClasses: 10 }, { generator: new Generator(1) }).stateDict());
  });

  for (const protocol of ["hard", "soft"] as const) {
    for (const arch of STUDENTS) {
      test(`${protocol}-label ${arch}`, async () => {
        const json = join(dir, `${protocol}-${arch}.json`);
        const soft = protocol === "soft" ? ["--teacher", teacher] : [];
        const r = await cao2([
          "evaluate",
          "--preset",
          "imagenet",
          "--data",
          train,
          "--test",
          val,
          "--protocol",
          protocol,
          "--arch",
          arch,
          ...soft,
          "--epochs",
          "1",
          "--repeats",
          "1",
          "--threads",
          "1",
          "--json",
          json,
        ]);
        assert.equal(r.status, 0, r.stderr);
        const rec = JSON.parse(readFileSync(json, "utf8"));
        assert.equal(rec.config.preset.name, "imagenet");
        assert.equal(rec.config.arch, arch);
        assert.equal(rec.config.epochs, 1);
        assert.deepEqual(rec.config.overrides, { epochs: 1 });
        assert.equal(
          rec.config.norm,
          arch.startsWith("convnet") || arch === "resnetap10" ? (protocol === "hard" ? "instance" : "batch") : "batch",
        );
        assert.equal(rec.data.transform, "Resize((224, 224), bilinear as PIL)");
        assert.equal(rec.test.transform, "Resize(256, bilinear as PIL) -> CenterCrop(224)");
        assert.deepEqual([rec.data.images, rec.test.images], [10, 10]);
        assert.deepEqual(rec.data.shape, [3, 224, 224]);
        assert.equal(rec.classMapping[0].data, rec.classMapping[0].test);
        assert.ok(Number.isFinite(rec.summary.final.mean));
        if (protocol === "soft") assert.equal(rec.teacher.spec.kind, "resnet");
      });
    }
  }
});
