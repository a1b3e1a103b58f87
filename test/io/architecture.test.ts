// Architecture guessing from key -> shape tables (tools/reference/checkpoint_architectures.py: torchvision ResNets,
// the DC ConvNet, and the published DiT / AutoencoderKL layouts, each with the configuration it was built from).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { ArchitectureError, guessArchitecture, requireArchitecture } from "../../src/io/architecture.js";
import { fixture } from "../helpers/fixtures.js";

interface Case {
  expected: Record<string, unknown> & { family: string; name: string; naming: string };
  shapes: Record<string, number[]>;
}
const cases = JSON.parse(readFileSync(fixture("io", "architectures.json"), "utf8")) as Record<string, Case>;

test("every reference architecture is recognised with the configuration it was built from", () => {
  assert.ok(Object.keys(cases).length >= 15);
  for (const [name, { expected, shapes }] of Object.entries(cases)) {
    const g = guessArchitecture(shapes);
    assert.ok(g, `${name}: not recognised`);
    const { family, name: archName, naming, ...config } = expected;
    assert.deepEqual({ family: g.family, name: g.name, naming: g.naming }, { family, name: archName, naming }, name);
    for (const [k, v] of Object.entries(config)) assert.deepEqual(g.config[k], v, `${name}: ${k}`);
  }
});

test("keys from other models are not mistaken for a known architecture", () => {
  assert.equal(guessArchitecture({ "conv.weight": [4, 3, 3, 3], "fc.weight": [2, 4] }), null);
  assert.equal(guessArchitecture(new Map()), null);
  // A DiT without its final layer (e.g. a partial export) is not claimed as a DiT.
  const dit = { ...cases.dit_S2_official.shapes };
  delete dit["final_layer.linear.weight"];
  assert.notEqual(guessArchitecture(dit)?.family, "dit");
});

test("requireArchitecture accepts the right family and rejects others saying what the file is", () => {
  assert.equal(requireArchitecture(cases.dit_XL2_official.shapes, "dit", "DiT-XL-2-256x256.pt").name, "DiT-XL/2");
  assert.throws(
    () => requireArchitecture(new Map(Object.entries(cases.sd_vae_diffusers.shapes)), "dit", "vae.safetensors"),
    (e: unknown) =>
      e instanceof ArchitectureError &&
      e.message ===
        "vae.safetensors: expected a DiT checkpoint, but it holds AutoencoderKL (Stable Diffusion VAE) weights",
  );
  assert.throws(
    () => requireArchitecture({ "conv.weight": [4, 3, 3, 3] }, "resnet", "x.pt"),
    /expected a ResNet checkpoint, but its keys match no known architecture \(keys: conv.weight\)/,
  );
});
