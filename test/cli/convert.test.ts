// `cao2 convert`: a torch.save archive becomes the same tensors in safetensors; --dtype float16 stores floating-point
// tensors in half precision (integer buffers untouched) and keeps the cao2 description, so the file still loads.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { loadSelector } from "../../src/distill/models.js";
import { openCheckpoint } from "../../src/io/checkpoint.js";
import { loadSafetensors } from "../../src/io/safetensors.js";
import { createResNet, type ResNet } from "../../src/models/resnet.js";
import { saveModel } from "../../src/models/saved.js";
import * as torch from "../../src/torch/index.js";
import { fixture, ROOT } from "../helpers/fixtures.js";

const dir = mkdtempSync(join(tmpdir(), "cao2-convert-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const cao2 = (...args: string[]) =>
  spawnSync(process.execPath, [join(ROOT, "dist", "src", "cli", "main.js"), "convert", ...args], { encoding: "utf8" });

test("a torch.save archive to safetensors: the same tensors", () => {
  const out = join(dir, "wrapped.safetensors");
  const r = cao2(fixture("io", "wrapped.pt"), out);
  assert.equal(r.status, 0, r.stderr);
  const got = loadSafetensors(out);
  const want = loadSafetensors(fixture("io", "wrapped.expected.safetensors"));
  assert.deepEqual([...got.keys()].sort(), [...want.keys()].sort());
  for (const [k, t] of want) assert.ok(torch.equal(got.get(k)!, t), k);
});

test("--dtype float16 halves the floats, keeps integer buffers and the cao2 description; the model still loads", () => {
  const net = createResNet(
    { depth: 18, numClasses: 10, inChannels: 1, stem: "mid" },
    { generator: new torch.Generator(1) },
  );
  const src = join(dir, "sel.safetensors");
  saveModel(
    src,
    net,
    {
      kind: "resnet",
      config: net.config,
      preprocess: { size: 32, channels: 1, mean: [0.3], std: [0.4] },
      classes: ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"],
    },
    { val_accuracy: "0.9" },
  );
  const half = join(dir, "sel16.safetensors");
  const r = cao2(src, half, "--dtype", "float16");
  assert.equal(r.status, 0, r.stderr);
  assert.ok(statSync(half).size < 0.55 * statSync(src).size);
  const ck = openCheckpoint(half);
  assert.equal(ck.tensors.get("conv1.weight")!.dtype, "float16");
  assert.equal(ck.tensors.get("bn1.num_batches_tracked")!.dtype, "int64");
  assert.equal(ck.metadata.val_accuracy, "0.9");
  ck.close();
  const loaded = loadSelector(half, { device: "cpu" });
  assert.equal((loaded.selector as ResNet).config.stem, "mid");
  const w = loaded.selector.stateDict().get("conv1.weight")!;
  assert.equal(w.dtype, "float32");
  assert.ok(torch.equal(w, net.stateDict().get("conv1.weight")!.to("float16").to("float32")));
  assert.equal(cao2(src, half).status, 2, "an existing output needs --force");
  assert.match(cao2(src, half).stderr, /already exists \(pass --force/);
  assert.equal(cao2(src, half, "--force", "--dtype", "float32").status, 0);
});
