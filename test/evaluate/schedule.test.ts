import assert from "node:assert/strict";
import { test } from "node:test";
import {
  hardEpochs,
  hardLr,
  hardTestEpochs,
  softBatchSize,
  softLr,
  softTestEpochs,
} from "../../src/evaluate/schedule.js";

const near = (a: number, b: number) => assert.ok(Math.abs(a - b) <= 1e-12 * Math.max(1, Math.abs(b)), `${a} vs ${b}`);

test("hard-label epochs follow the IPC rule and shrink by 2/3 (down to a multiple of 100) for 100+ classes", () => {
  assert.equal(hardEpochs(1, 10), 3000);
  assert.equal(hardEpochs(10, 10), 2000);
  assert.equal(hardEpochs(11, 10), 1500);
  assert.equal(hardEpochs(50, 10), 1500);
  assert.equal(hardEpochs(100, 10), 1000);
  assert.equal(hardEpochs(200, 10), 1000);
  // Minimax's ipc_epoch: int(2/3 * epoch), then epoch - epoch % 100
  assert.equal(hardEpochs(1, 100), 2000);
  assert.equal(hardEpochs(10, 100), 1300);
  assert.equal(hardEpochs(50, 1000), 1000);
  assert.equal(hardEpochs(100, 100), 600);
});

test("hard-label learning rate: x0.2 at 2E/3 and 5E/6", () => {
  const E = 300;
  near(hardLr(0.01, 0, E), 0.01);
  near(hardLr(0.01, 199, E), 0.01);
  near(hardLr(0.01, 200, E), 0.002);
  near(hardLr(0.01, 249, E), 0.002);
  near(hardLr(0.01, 250, E), 0.0004);
  near(hardLr(0.01, 299, E), 0.0004);
});

test("hard-label test cadence: every E/100 epochs, always at the end", () => {
  const t = hardTestEpochs(2000);
  assert.equal(t.length, 100);
  assert.equal(t[0], 20);
  assert.equal(t[99], 2000);
  assert.deepEqual(
    hardTestEpochs(50),
    Array.from({ length: 50 }, (_, i) => i + 1),
  );
  // a thinned cadence (fewer evaluations for scaled-down presets)
  assert.deepEqual(hardTestEpochs(200, 10), [20, 40, 60, 80, 100, 120, 140, 160, 180, 200]);
  assert.deepEqual(hardTestEpochs(25, 10), [2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 25]);
});

test("soft-label learning rate: 0.5 (1 + cos(pi e / E / 2))", () => {
  near(softLr(1e-3, 0, 300), 1e-3);
  near(softLr(1e-3, 150, 300), 1e-3 * 0.5 * (1 + Math.cos(Math.PI / 4)));
  near(softLr(1e-3, 300, 300), 0.5e-3);
});

test("soft-label batch sizes by IPC, doubled for 100+ classes, capped at the set size", () => {
  assert.equal(softBatchSize(1, 10, 10), 10);
  assert.equal(softBatchSize(10, 10, 100), 50);
  assert.equal(softBatchSize(50, 10, 500), 100);
  assert.equal(softBatchSize(10, 100, 1000), 100);
  assert.equal(softBatchSize(1, 100, 100), 20);
  assert.equal(softBatchSize(50, 10, 60), 60);
});

test("soft-label test cadence: every 10 epochs in the last 20%, as RDED's loop (0-based i > 0.8 E)", () => {
  assert.deepEqual(softTestEpochs(300), [250, 260, 270, 280, 290, 300]);
  assert.deepEqual(softTestEpochs(25), [25]);
  assert.deepEqual(softTestEpochs(100, 5), [85, 90, 95, 100]);
});
