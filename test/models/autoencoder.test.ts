// AutoencoderKL against our PyTorch reference (tools/reference/models_autoencoder.py): a small random model for
// numerics (encode, sample, KL, decode, gradients), and the key/shape list of the full SD VAE for the layout.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { loadSafetensors, saveSafetensors } from "../../src/io/safetensors.js";
import {
  adaptAutoencoderKLStateDict,
  AUTOENCODER_KL_PRESETS,
  type AutoencoderKLConfig,
  autoencoderKLConfigFromDiffusers,
  createAutoencoderKL,
} from "../../src/models/autoencoder.js";
import { StateDictError } from "../../src/io/state-dict.js";
import { InputError } from "../../src/errors.js";
import * as torch from "../../src/torch/index.js";
import { fixture, relErr } from "../helpers/fixtures.js";

const small = JSON.parse(readFileSync(fixture("models", "autoencoder_small.json"), "utf8")) as {
  config: Record<string, unknown>;
  sample_seed: number;
};
const sdKeys = JSON.parse(readFileSync(fixture("models", "autoencoder_sd_keys.json"), "utf8")) as {
  config: Record<string, unknown>;
  shapes: Record<string, number[]>;
  num_parameters: number;
};
const io = loadSafetensors(fixture("models", "autoencoder_small_io.safetensors"));
const get = (k: string) => io.get(k)!;
const smallConfig = autoencoderKLConfigFromDiffusers(small.config);

function loadedSmall(file = "autoencoder_small.safetensors") {
  const model = createAutoencoderKL(smallConfig, { init: "zeros" }).eval();
  model.loadStateDict(loadSafetensors(fixture("models", file)));
  return model;
}

/** Asserts rel err <= 1e-5 (float32) and returns it for the report. */
function close(actual: torch.Tensor, expected: torch.Tensor, what: string, tol = 1e-5): number {
  assert.deepEqual(actual.shape, expected.shape, `${what}: shape`);
  const e = relErr(actual.toFloat64Array(), expected.toFloat64Array());
  assert.ok(e <= tol, `${what}: rel err ${e.toExponential(3)} > ${tol}`);
  return e;
}

function sameStateDicts(a: Map<string, torch.Tensor>, b: Map<string, torch.Tensor>): void {
  assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort());
  for (const [k, t] of a) assert.ok(torch.equal(t, b.get(k)!), `${k} differs`);
}

test("encode (mean, logvar, seeded sample, KL) and decode match PyTorch", (t) => {
  const model = loadedSmall();
  const errs = torch.noGrad(() =>
    torch.tidy(() => {
      const post = model.encode(get("x"));
      const sample = post.sample(new torch.Generator(small.sample_seed));
      return {
        mean: close(post.mean, get("mean"), "mean"),
        logvar: close(post.logvar, get("logvar"), "logvar"),
        sample: close(sample, get("sample"), "sample"),
        kl: close(post.kl(), get("kl"), "kl"),
        decode: close(model.decode(get("z")), get("decoded"), "decoded"),
      };
    }),
  );
  t.diagnostic(
    `rel err ${JSON.stringify(Object.fromEntries(Object.entries(errs).map(([k, v]) => [k, v.toExponential(2)])))}`,
  );
});

test("gradients through encoder and decoder (attention, in-place residuals) match PyTorch", (t) => {
  const model = loadedSmall();
  torch.tidy(() => {
    const x = get("x").clone().requiresGrad_();
    const post = model.encode(x);
    const encLoss = torch.add(
      torch.sum(torch.mul(post.mean, get("w_mean"))),
      torch.sum(torch.mul(post.logvar, get("w_logvar"))),
    );
    const [gx] = torch.grad(encLoss, x);
    const z = get("z").clone().requiresGrad_();
    const toQ = model.namedParameters().get("decoder.mid_block.attentions.0.to_q.weight")!;
    const decLoss = torch.sum(torch.mul(model.decode(z), get("w_dec")));
    const [gz, gq] = torch.grad(decLoss, [z, toQ]);
    const e = [
      close(gx!, get("grad_x"), "d/dx"),
      close(gz!, get("grad_z"), "d/dz"),
      close(gq!, get("grad_dec_to_q"), "d/d to_q"),
    ];
    t.diagnostic(
      `rel err grad_x ${e[0].toExponential(2)}, grad_z ${e[1].toExponential(2)}, grad to_q ${e[2].toExponential(2)}`,
    );
  });
});

test("a checkpoint with the old attention names (query/key/value/proj_attn) loads to the same weights", () => {
  const old = loadSafetensors(fixture("models", "autoencoder_small_old.safetensors"));
  assert.ok(
    old.has("decoder.mid_block.attentions.0.proj_attn.weight") &&
      !old.has("decoder.mid_block.attentions.0.to_out.0.weight"),
  );
  const model = loadedSmall("autoencoder_small_old.safetensors");
  sameStateDicts(model.stateDict(), loadedSmall().stateDict());
  torch.noGrad(() => torch.tidy(() => close(model.decode(get("z")), get("decoded"), "decoded (old names)")));
});

test("conv-shaped [C, C, 1, 1] attention weights are reshaped on load; other keys pass through untouched", () => {
  const sd = loadSafetensors(fixture("models", "autoencoder_small.safetensors"));
  const convShaped = new Map(sd);
  let reshaped = 0;
  for (const [k, v] of sd) {
    if (/attentions\.0\.(to_q|to_k|to_v|to_out\.0)\.weight$/.test(k)) {
      convShaped.set(k, v.reshape(...v.shape, 1, 1));
      reshaped++;
    }
  }
  assert.equal(reshaped, 8); // 4 projections in each of the two mid blocks
  const adapted = adaptAutoencoderKLStateDict(convShaped);
  assert.equal(adapted.get("encoder.conv_in.weight"), sd.get("encoder.conv_in.weight"));
  const model = createAutoencoderKL(smallConfig, { init: "zeros" });
  model.loadStateDict(convShaped);
  sameStateDicts(model.stateDict(), sd);
});

test("the SD preset has the key names and shapes of the SD VAE (sd-vae-ft-mse layout)", () => {
  assert.deepEqual(autoencoderKLConfigFromDiffusers(sdKeys.config), AUTOENCODER_KL_PRESETS.sd);
  const model = createAutoencoderKL("sd", { init: "zeros" });
  const shapes = Object.fromEntries([...model.stateDict()].map(([k, v]) => [k, v.shape]));
  assert.deepEqual(shapes, sdKeys.shapes);
  assert.equal(Object.keys(shapes).filter((k) => k.startsWith("decoder.")).length, 138);
  assert.equal(Object.keys(shapes).filter((k) => k.startsWith("encoder.")).length, 106);
  assert.equal(model.numParameters(), sdKeys.num_parameters);
  assert.equal(model.scalingFactor, 0.18215);
  // Four levels: 8x down- and upsampling, 4 latent channels.
  torch.noGrad(() =>
    torch.tidy(() => {
      assert.deepEqual(model.encode(torch.zeros([1, 3, 8, 16])).mean.shape, [1, 4, 1, 2]);
      assert.deepEqual(model.decode(torch.zeros([1, 4, 1, 2])).shape, [1, 3, 8, 16]);
    }),
  );
  for (const t of model.parameters()) t.dispose();
});

test("stateDict -> saveSafetensors -> load into a fresh model gives identical outputs", () => {
  const dir = mkdtempSync(join(tmpdir(), "cao2-vae-"));
  try {
    // A freshly initialised (random) model, so the round trip does not depend on the fixture.
    const a = createAutoencoderKL(smallConfig, { generator: new torch.Generator(7) }).eval();
    saveSafetensors(join(dir, "vae.safetensors"), a.stateDict());
    const b = createAutoencoderKL(smallConfig, { init: "zeros" }).eval();
    b.loadStateDict(loadSafetensors(join(dir, "vae.safetensors")));
    torch.noGrad(() =>
      torch.tidy(() => {
        assert.ok(torch.equal(b.decode(get("z")), a.decode(get("z"))));
        assert.ok(torch.equal(b.encode(get("x")).mean, a.encode(get("x")).mean));
      }),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a checkpoint that does not fit names every wrong, missing and unexpected key", () => {
  const sd = new Map(loadSafetensors(fixture("models", "autoencoder_small.safetensors")));
  sd.set("decoder.conv_in.weight", torch.zeros([64, 4, 5, 5]));
  sd.delete("encoder.conv_out.bias");
  sd.set("decoder.extra.weight", torch.zeros([1]));
  const model = createAutoencoderKL(smallConfig, { init: "zeros" });
  const before = model.stateDict().get("decoder.conv_in.bias")!.clone();
  assert.throws(
    () => model.loadStateDict(sd),
    (e: unknown) =>
      e instanceof StateDictError &&
      /decoder\.conv_in\.weight: checkpoint \[64,4,5,5\] vs model \[64,4,3,3\]/.test(e.message) &&
      /missing keys: encoder\.conv_out\.bias/.test(e.message) &&
      /unexpected keys: decoder\.extra\.weight/.test(e.message),
  );
  // Nothing was copied.
  assert.ok(torch.equal(model.stateDict().get("decoder.conv_in.bias")!, before));
});

test("logvar is clamped to [-30, 20] before std = exp(logvar / 2)", () => {
  const model = loadedSmall();
  const latent = smallConfig.latentChannels;
  torch.noGrad(() =>
    torch.tidy(() => {
      // Push the log-variance half of quant_conv's output far above the clamp.
      model.quantConv.bias!.narrow(0, latent, latent).add_(1000);
      const post = model.encode(get("x"));
      assert.deepEqual(new Set(post.logvar.toNumbers()), new Set([20]));
      assert.deepEqual(new Set(post.std.toNumbers()), new Set([Math.fround(Math.exp(10))]));
    }),
  );
});

test("configs: diffusers config.json is read, architecture changes and bad values are refused", () => {
  // The published sd-vae-ft-mse config.json.
  const sdVaeFtMse = {
    _class_name: "AutoencoderKL",
    act_fn: "silu",
    block_out_channels: [128, 256, 512, 512],
    down_block_types: ["DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D"],
    in_channels: 3,
    latent_channels: 4,
    layers_per_block: 2,
    norm_num_groups: 32,
    out_channels: 3,
    sample_size: 256,
    up_block_types: ["UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D"],
  };
  assert.deepEqual(autoencoderKLConfigFromDiffusers(sdVaeFtMse), AUTOENCODER_KL_PRESETS.sd);
  assert.throws(() => autoencoderKLConfigFromDiffusers({ ...sdVaeFtMse, act_fn: "gelu" }), /act_fn="gelu"/);
  assert.throws(
    () => autoencoderKLConfigFromDiffusers({ ...sdVaeFtMse, use_quant_conv: false }),
    /use_quant_conv=false/,
  );
  const bad: AutoencoderKLConfig = { ...smallConfig, blockOutChannels: [32, 60] };
  assert.throws(
    () => createAutoencoderKL(bad),
    (e: unknown) => e instanceof InputError && /divisible by normNumGroups 8/.test(e.message),
  );
  assert.throws(
    () => createAutoencoderKL("sdxl" as "sd"),
    (e: unknown) => e instanceof InputError && /unknown autoencoder preset 'sdxl'/.test(e.message),
  );
});
