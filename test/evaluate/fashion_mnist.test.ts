// The hard-label protocol learns on real data (slow-ish, about 20-40 s on 2 shared cores): ConvNet-3 trained for a
// few epochs on 10 random real Fashion-MNIST images per class is clearly above chance (10%) on a 2000-image test
// subset. 30% is a floor that shows learning, not a tuned number (a few epochs give about 45-60%).
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { test } from "node:test";
import { fitToPreset } from "../../src/io/datasets/sets.js";
import { PRESETS } from "../../src/evaluate/presets.js";
import { protocolSettings } from "../../src/evaluate/protocols.js";
import { runEvaluation } from "../../src/evaluate/run.js";
import {
  FASHION_MNIST_DIR,
  loadFashionMnist,
  memoryImageSet,
  sampleRandomPerClass,
} from "../../src/io/datasets/index.js";
import * as torch from "../../src/torch/index.js";

const missing =
  !existsSync(FASHION_MNIST_DIR) &&
  `Fashion-MNIST not installed (${FASHION_MNIST_DIR}, Debian package dataset-fashion-mnist)`;

test(
  "hard protocol: ConvNet-3 on 100 real Fashion-MNIST images learns (> 30% on 2000 test images)",
  { skip: missing },
  async () => {
    const preset = PRESETS["fashion-mnist"];
    const train = fitToPreset(sampleRandomPerClass(loadFashionMnist("train"), 10, 0).dataset, preset);
    const test = fitToPreset(sampleRandomPerClass(loadFashionMnist("test"), 200, 1).dataset, preset);
    const settings = protocolSettings({
      protocol: "hard",
      arch: "convnet3",
      preset,
      ipc: 10,
      numClasses: 10,
      setSize: 100,
      epochs: 6,
      testEvery: 6,
    });
    const record = await runEvaluation({
      train: memoryImageSet(train),
      test: memoryImageSet(test),
      trainName: "fashion-mnist random 10/class",
      testName: "fashion-mnist test 200/class",
      preset,
      settings,
      repeats: 1,
      seed: 0,
      device: "cpu",
      threads: torch.getNumThreads(),
      testPerClass: 200,
    });
    const r = record.repeats[0];
    assert.deepEqual(
      r.curve.map((p) => p.epoch),
      [6],
    );
    assert.ok(r.best > 30, `test top-1 ${r.best}% is not clearly above chance`);
    assert.equal(record.test.images, 2000);
  },
);
