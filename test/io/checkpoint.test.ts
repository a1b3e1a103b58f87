// Loading torch.save archives and safetensors through loadStateDict / openCheckpoint / loadInto. Every fixture
// (tools/reference/checkpoint_fixtures.py) has the state dict PyTorch saved as <name>.expected.safetensors;
// loaded tensors must equal it bit for bit (same dtype, shape and bytes).
import assert from "node:assert/strict";
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { InputError } from "../../src/errors.js";
import { CheckpointError, detectFormat, loadInto, loadStateDict, openCheckpoint } from "../../src/io/checkpoint.js";
import { UnsafePickleError } from "../../src/io/pickle.js";
import { loadSafetensors, saveSafetensors } from "../../src/io/safetensors.js";
import { StateDictError } from "../../src/io/state-dict.js";
import * as torch from "../../src/torch/index.js";
import { fixture } from "../helpers/fixtures.js";

const dir = mkdtempSync(join(tmpdir(), "cao2-ckpt-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const io = (name: string) => fixture("io", name);

function assertSameStateDict(got: Map<string, torch.Tensor>, expected: Map<string, torch.Tensor>, what: string): void {
  assert.deepEqual([...got.keys()].sort(), [...expected.keys()].sort(), `${what}: key set`);
  for (const [k, e] of expected) {
    const g = got.get(k)!;
    assert.equal(g.dtype, e.dtype, `${what} ${k}: dtype`);
    assert.deepEqual(g.shape, e.shape, `${what} ${k}: shape`);
    assert.ok(Buffer.from(g.toBytes()).equals(Buffer.from(e.toBytes())), `${what} ${k}: values differ`);
  }
}

const expected = (name: string) => loadSafetensors(io(`${name}.expected.safetensors`));

test("torch.save files load exactly: plain, views of shared storages, every dtype, nested dicts, whole models", () => {
  for (const name of ["plain", "views", "dtypes", "nested", "whole_model"]) {
    assertSameStateDict(loadStateDict(io(`${name}.pt`)), expected(name), name);
  }
  // The views fixture saves several tensors viewing one storage: keys are in file order, each tensor independent.
  const views = loadStateDict(io("views.pt"));
  assert.deepEqual([...views.keys()], ["base", "row2", "col3", "transposed", "strided", "expanded", "weight_t"]);
  torch.fillInto(views.get("base")!, 0);
  assert.ok(
    views
      .get("row2")!
      .toNumbers()
      .some((v) => v !== 0),
  );
});

test("archive variants load the same values: protocol 4, ZIP64, deflated entries, big-endian storages", () => {
  const plain = expected("plain");
  for (const name of ["protocol4", "zip64", "deflated", "bigendian"])
    assertSameStateDict(loadStateDict(io(`${name}.pt`)), plain, name);
});

test("a training checkpoint unwraps its 'model' entry and reports every other entry by name", () => {
  const ck = openCheckpoint(io("wrapped.pt"));
  try {
    assert.equal(ck.format, "torch");
    assert.equal(ck.unwrapped, "model");
    assert.deepEqual(
      ck.skipped.map((s) => `${s.key}: ${s.kind}`),
      [
        "epoch: int 3",
        "optimizer: dict of 2 entries, 6 tensors inside",
        "args: argparse.Namespace",
        "best_acc: float 0.875",
        "steps: int 1200",
      ],
    );
  } finally {
    ck.close();
  }
  assertSameStateDict(loadStateDict(io("wrapped.pt")), expected("wrapped"), "wrapped");
  // unwrap "none" keeps everything that is a tensor, under its full path.
  const all = openCheckpoint(io("wrapped.pt"), { unwrap: "none" });
  assert.ok(all.tensors.has("model.conv.weight") && all.tensors.has("optimizer.state.0.momentum_buffer"));
  assert.ok(all.skipped.some((s) => s.key === "args" && s.kind === "argparse.Namespace"));
  all.close();
});

test("two state dicts: auto takes 'ema' when there is one, refuses to guess otherwise; an explicit choice loads that one", () => {
  const ck = openCheckpoint(io("model_and_ema.pt"));
  assert.equal(ck.unwrapped, "ema");
  assert.deepEqual(
    ck.skipped.map((s) => s.key),
    ["model", "args"],
  );
  ck.close();
  assertSameStateDict(loadStateDict(io("model_and_ema.pt")), expected("model_and_ema"), "auto: ema");
  assertSameStateDict(loadStateDict(io("model_and_ema.pt"), { unwrap: "ema" }), expected("model_and_ema"), "ema");
  assert.throws(
    () => loadStateDict(io("two_state_dicts.pt")),
    (e: unknown) =>
      e instanceof CheckpointError &&
      /several state dicts \('model', 'state_dict'\); choose one with the unwrap option \(e\.g\. --unwrap model\)$/.test(
        (e as Error).message,
      ),
  );
  assertSameStateDict(
    loadStateDict(io("two_state_dicts.pt"), { unwrap: "model" }),
    expected("two_state_dicts"),
    "model",
  );
  assertSameStateDict(loadStateDict(io("model_and_ema.pt"), { unwrap: "model" }), expected("plain"), "model");
  assert.throws(
    () => loadStateDict(io("model_and_ema.pt"), { unwrap: "teacher" }),
    /no entry 'teacher'.*'model', 'ema', 'args'/,
  );
  assert.throws(
    () => loadStateDict(io("model_and_ema.pt"), { unwrap: "args" }),
    /entry 'args' holds no tensors \(argparse.Namespace\)/,
  );
  // A flat safetensors file has no entries: the message names its top-level names instead.
  const flat = join(dir, "flat.safetensors");
  saveSafetensors(flat, expected("plain"));
  assert.throws(
    () => loadStateDict(flat, { unwrap: "model" }),
    (e: unknown) =>
      e instanceof CheckpointError &&
      /no entry 'model' to take the state dict from \(no key starts with 'model\.'; top-level names: 'bn', 'conv', 'fc'\)$/.test(
        (e as Error).message,
      ),
  );
});

test("'module.' from DataParallel is stripped when every key has it, kept when asked", () => {
  const ck = openCheckpoint(io("dataparallel.pt"));
  assert.equal(ck.strippedPrefix, "module.");
  ck.close();
  assertSameStateDict(loadStateDict(io("dataparallel.pt")), expected("dataparallel"), "dataparallel");
  const kept = openCheckpoint(io("dataparallel.pt"), { stripPrefix: "" });
  assert.ok([...kept.tensors.keys()].every((k) => k.startsWith("module.")));
  kept.close();
});

test("dtype and device options: floating tensors convert, integer buffers keep their dtype", () => {
  const sd = loadStateDict(io("plain.pt"), { dtype: "float64", device: "cpu" });
  const exp = expected("plain");
  assert.equal(sd.get("conv.weight")!.dtype, "float64");
  assert.equal(sd.get("bn.num_batches_tracked")!.dtype, "int64");
  assert.ok(torch.equal(sd.get("conv.weight")!, exp.get("conv.weight")!.to("float64")));
});

test("the format is detected from content, not the file name", () => {
  const pt = join(dir, "really-a-torch-file.safetensors");
  copyFileSync(io("plain.pt"), pt);
  const st = join(dir, "really-safetensors.pt");
  copyFileSync(io("plain.expected.safetensors"), st);
  assert.equal(detectFormat(pt), "torch");
  assert.equal(detectFormat(st), "safetensors");
  assertSameStateDict(loadStateDict(pt), expected("plain"), "renamed .pt");
  assertSameStateDict(loadStateDict(st), expected("plain"), "renamed safetensors");
  const junk = join(dir, "junk.bin");
  writeFileSync(junk, "GGUF and other things");
  assert.throws(() => detectFormat(junk), /not a checkpoint format cao2 reads/);
  writeFileSync(junk, "");
  assert.throws(() => detectFormat(junk), /the file is empty/);
});

test("legacy (non-zip) torch files and TorchScript archives are refused with advice", () => {
  assert.throws(
    () => loadStateDict(io("legacy.pt")),
    (e: unknown) =>
      e instanceof CheckpointError &&
      /legacy \(non-zip\) torch.save file.*torch.save\(torch.load/.test((e as Error).message),
  );
  assert.throws(() => loadStateDict(io("torchscript.pt")), /TorchScript archive \(torch.jit.save\).*state_dict\(\)/);
});

test("a pickle nested deeper than any state dict is refused, not walked", () => {
  assert.throws(
    () => openCheckpoint(io("deep.pt")),
    (e: unknown) => e instanceof CheckpointError && /nested more than 64 levels deep/.test((e as Error).message),
  );
});

test("malicious checkpoints are refused naming the global, and their payloads never run", () => {
  const cases: [string, string, string][] = [
    ["malicious_system.pt", "posix.system", "/tmp/cao2_ckpt_marker_system"],
    ["malicious_eval.pt", "__builtin__.eval", "/tmp/cao2_ckpt_marker_eval"],
  ];
  for (const [file, global, marker] of cases) {
    rmSync(marker, { force: true });
    for (const open of [() => loadStateDict(io(file)), () => openCheckpoint(io(file), { unwrap: "model" })]) {
      assert.throws(
        open,
        (e: unknown) =>
          e instanceof UnsafePickleError &&
          e.global === global &&
          e.message.includes(`refusing to load: the checkpoint calls ${global}`) &&
          e.message.startsWith(io(file)),
      );
    }
    assert.equal(existsSync(marker), false, `${file}: the payload ran`);
  }
  assert.throws(
    () => loadStateDict(io("unknown_call.pt")),
    /refusing to load: the checkpoint calls functools\.partial/,
  );
});

/** Replaces every occurrence of `from` by `to` (same length) in a copy of a fixture. */
function patched(name: string, out: string, edit: (b: Buffer) => void): string {
  const b = readFileSync(io(name));
  edit(b);
  const p = join(dir, out);
  writeFileSync(p, b);
  return p;
}
const replaceAll = (b: Buffer, from: string, to: string) => {
  for (let i = b.indexOf(from); i >= 0; i = b.indexOf(from, i + 1)) b.write(to, i, "latin1");
};

test("damaged archives: truncated, a storage entry missing, corrupted bytes (CRC-32)", () => {
  const whole = readFileSync(io("plain.pt"));
  const cut = join(dir, "cut.pt");
  for (const n of [whole.length - 30, Math.floor(whole.length / 2), 10]) {
    writeFileSync(cut, whole.subarray(0, n));
    assert.throws(
      () => loadStateDict(cut),
      (e: unknown) =>
        e instanceof InputError && /truncated|not a zip archive|end-of-central-directory/.test((e as Error).message),
      `cut at ${n}`,
    );
  }
  // Renaming the entry of storage 0 (in both its local and central headers) is the same as removing it.
  const missing = patched("plain.pt", "missing.pt", (b) => replaceAll(b, "plain/data/0", "plain/data/Z"));
  assert.throws(() => openCheckpoint(missing), /storage '0' is missing from the archive/);
  // One flipped byte in a storage: opening works (no data is read); with verifyCrc, loading that tensor fails its
  // CRC-32; by default (like torch.load) storages are not checksummed and the damaged value comes through.
  const pkl = whole.indexOf("plain/data/0");
  const dataStart = pkl + "plain/data/0".length + whole.readUInt16LE(pkl - 2);
  const flipped = patched("plain.pt", "flipped.pt", (b) => (b[dataStart + 5] ^= 0x40));
  const ck = openCheckpoint(flipped, { verifyCrc: true });
  assert.throws(
    () => ck.tensors.get("conv.weight")!.load(),
    /tensor 'conv.weight': storage '0' is corrupted \(CRC-32 mismatch\)/,
  );
  assert.deepEqual(ck.tensors.get("conv.bias")!.load().toNumbers(), expected("plain").get("conv.bias")!.toNumbers());
  ck.close();
  assert.throws(() => loadStateDict(flipped, { verifyCrc: true }), /CRC-32 mismatch/);
  const unchecked = loadStateDict(flipped);
  assert.ok(!torch.equal(unchecked.get("conv.weight")!, expected("plain").get("conv.weight")!));
  assert.ok(torch.equal(unchecked.get("fc.weight")!, expected("plain").get("fc.weight")!));
  // An intact archive passes the check.
  assertSameStateDict(loadStateDict(io("plain.pt"), { verifyCrc: true }), expected("plain"), "verified");
  // A flipped byte in data.pkl is caught before anything is unpickled.
  const pklFlip = patched("plain.pt", "pklflip.pt", (b) => {
    const at = b.indexOf("plain/data.pkl");
    b[at + "plain/data.pkl".length + b.readUInt16LE(at - 2) + 40] ^= 0x01;
  });
  assert.throws(() => openCheckpoint(pklFlip), /archive entry 'plain\/data.pkl' is corrupted \(CRC-32 mismatch\)/);
});

test("loadInto fills existing tensors (converting dtype), checking keys and shapes first by name", () => {
  const exp = expected("plain");
  const target = new Map(
    [...exp].map(([k, t]) => [k, torch.zerosLike(t, { dtype: t.dtype === "float32" ? "float64" : t.dtype })]),
  );
  const report = loadInto(target, io("wrapped.pt"));
  assert.deepEqual(report.missing, []);
  assert.ok(report.skipped.some((s) => s.key === "epoch"));
  for (const [k, t] of exp) assert.ok(torch.equal(target.get(k)!, t.to(target.get(k)!.dtype)), k);
  // Views and a wrong shape.
  const views = expected("views");
  const vt = new Map([...views].map(([k, t]) => [k, torch.zerosLike(t)]));
  loadInto(vt, io("views.pt"));
  for (const [k, t] of views) assert.ok(torch.equal(vt.get(k)!, t), k);
  const bad = new Map(target);
  bad.set("fc.weight", torch.zeros([3, 4]));
  bad.set("extra.weight", torch.zeros([1]));
  const before = target.get("conv.bias")!.clone();
  torch.fillInto(bad.get("conv.bias")!, 0);
  assert.throws(
    () => loadInto(bad, io("plain.pt"), { modelName: "TinyNet" }),
    (e: unknown) => {
      const m = (e as Error).message;
      return (
        e instanceof StateDictError &&
        m.includes("does not fit TinyNet") &&
        m.includes("fc.weight: checkpoint [2,4] vs model [3,4]") &&
        m.includes("missing keys: extra.weight")
      );
    },
  );
  // Nothing was copied: the checks come before any read.
  assert.deepEqual(bad.get("conv.bias")!.toNumbers(), [0, 0, 0, 0]);
  assert.ok(!torch.equal(before, bad.get("conv.bias")!));
  // Not strict: missing keys are reported, not errors.
  bad.set("fc.weight", torch.zeros([2, 4]));
  assert.deepEqual(loadInto(bad, io("plain.pt"), { strict: false }).missing, ["extra.weight"]);
});

test("safetensors through the same API: explicit unwrap by key prefix, DataParallel prefix", () => {
  const sd = expected("plain");
  const p = join(dir, "wrapped.safetensors");
  saveSafetensors(
    p,
    new Map([...sd].flatMap(([k, t]) => [[`module.${k}`, t] as const, [`ema.module.${k}`, t.mul(2)] as const])),
  );
  // Auto: no unwrapping for a flat file, and not every key starts with module., so keys stay.
  const ck = openCheckpoint(p);
  assert.equal(ck.strippedPrefix, null);
  assert.equal(ck.tensors.size, 2 * sd.size);
  ck.close();
  const ema = loadStateDict(p, { unwrap: "ema" });
  assert.deepEqual([...ema.keys()].sort(), [...sd.keys()].sort());
  assert.ok(torch.equal(ema.get("fc.weight")!, sd.get("fc.weight")!.mul(2)));
  assert.throws(() => loadStateDict(p, { unwrap: "model" }), /no key starts with 'model\.'/);
});
