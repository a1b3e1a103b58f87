// Channels-last memory order (Model.toChannelsLast): the same tensors with other strides, so outputs, gradients and
// saved state are those of the contiguous model; evaluation applies it where it was measured to pay.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { channelsLastPays } from "../../src/evaluate/run.js";
import { saveSafetensors } from "../../src/io/safetensors.js";
import { createResNet } from "../../src/models/resnet.js";
import * as torch from "../../src/torch/index.js";
import { relErr } from "../helpers/fixtures.js";

const make = () => createResNet({ depth: 18, numClasses: 5, stem: "cifar" }, { generator: new torch.Generator(7) });

test("toChannelsLast: same outputs, gradients and saved bytes as the contiguous model; the tensors stay the same objects", () => {
  const [a, b] = [make(), make()];
  const before = b.parameters();
  b.toChannelsLast();
  assert.ok(b.channelsLast && !a.channelsLast);
  assert.deepEqual(b.parameters(), before, "the same tensor objects (an optimiser made earlier still holds them)");
  // A conv weight is now stored channels-last: its stride over channels is 1.
  const w = b.stateDict().get("layer1.0.conv1.weight")!;
  assert.equal(torch.callOp("stride.int", w, 1), 1);
  const dir = mkdtempSync(join(tmpdir(), "cao2-cl-"));
  saveSafetensors(join(dir, "a.safetensors"), a.stateDict());
  saveSafetensors(join(dir, "b.safetensors"), b.stateDict());
  assert.deepEqual(readFileSync(join(dir, "b.safetensors")), readFileSync(join(dir, "a.safetensors")));
  const x = torch.randn([3, 3, 16, 16], { generator: new torch.Generator(8) });
  const y = torch.fromArray(BigInt64Array.from([0n, 2n, 4n]), [3]);
  for (const m of [a, b]) torch.F.crossEntropy(m.train().forward(x), y).backward();
  // Convolutions in channels-last sum in another order: the deepest weight gradients differ at the 1e-5 level.
  for (const [k, p] of a.namedParameters()) {
    const q = b.namedParameters().get(k)!;
    assert.ok(relErr(q.grad!.toFloat64Array(), p.grad!.toFloat64Array()) <= 1e-4, `grad ${k}`);
  }
  a.eval();
  b.eval();
  const [oa, ob] = torch.noGrad(() => [a.forward(x), b.forward(x)]);
  assert.ok(relErr(ob.toFloat64Array(), oa.toFloat64Array()) <= 1e-5);
});

test("channelsLastPays: batch-norm ResNets under a mixed precision only", () => {
  const resnet = { kind: "resnet", depth: 18, norm: "batch", stem: "cifar", numClasses: 10, inChannels: 3 } as const;
  assert.equal(channelsLastPays(resnet, { device: "cpu", precision: "bf16" }), true);
  assert.equal(channelsLastPays(resnet, { device: "cpu", precision: "fp32" }), false);
  assert.equal(channelsLastPays({ ...resnet, norm: "instance" }, { device: "cpu", precision: "bf16" }), false);
  const convnet = {
    kind: "convnet",
    depth: 3,
    width: 128,
    norm: "instance",
    numClasses: 10,
    inChannels: 3,
    imageSize: 32,
  } as const;
  assert.equal(channelsLastPays(convnet, { device: "cpu", precision: "bf16" }), false);
});
