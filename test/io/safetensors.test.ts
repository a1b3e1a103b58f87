import assert from "node:assert/strict";
import {
  closeSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  truncateSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { loadSafetensors, SafetensorsError, SafetensorsFile, saveSafetensors } from "../../src/io/safetensors.js";
import * as torch from "../../src/torch/index.js";

const dir = mkdtempSync(join(tmpdir(), "cao2-st-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const sameTensor = (a: torch.Tensor, b: torch.Tensor, what: string) => {
  assert.equal(a.dtype, b.dtype, `${what}: dtype`);
  assert.deepEqual(a.shape, b.shape, `${what}: shape`);
  assert.ok(Buffer.from(a.toBytes()).equals(Buffer.from(b.toBytes())), `${what}: bytes differ`);
};

/** One tensor of every dtype safetensors knows, with values that exercise the range of each. */
function everyDtype(): Map<string, torch.Tensor> {
  const g = new torch.Generator(7);
  const f = torch.randn([3, 5], { generator: g });
  return new Map<string, torch.Tensor>([
    ["f64", torch.randn([2, 3], { generator: g, dtype: "float64" })],
    ["f32", f],
    ["f16", f.to("float16")],
    ["bf16", f.to("bfloat16")],
    ["i64", torch.fromArray(new BigInt64Array([-(2n ** 62n), 0n, 2n ** 53n + 1n]), [3])],
    ["i32", torch.fromArray(new Int32Array([-(2 ** 31), 5, 2 ** 31 - 1]), [3])],
    ["i16", torch.fromArray(new Int16Array([-32768, 1, 32767]), [3])],
    ["i8", torch.fromArray(new Int8Array([-128, 0, 127]), [3])],
    ["u8", torch.fromArray(new Uint8Array([0, 128, 255]), [1, 3])],
    ["bool", torch.fromArray(new Uint8Array([1, 0, 1, 1]), [2, 2], { dtype: "bool" })],
    ["scalar", torch.tensor(3.25)],
    ["empty", torch.zeros([0, 7])],
  ]);
}

test("every dtype round-trips: values, dtypes, shapes and metadata; re-saving gives the same file bytes", () => {
  const src = everyDtype();
  const a = join(dir, "all.safetensors");
  saveSafetensors(a, src, { format: "pt", note: "round trip" });
  const back = loadSafetensors(a);
  assert.deepEqual([...back.keys()].sort(), [...src.keys()].sort());
  for (const [k, t] of src) sameTensor(back.get(k)!, t, k);
  const f = SafetensorsFile.open(a);
  assert.deepEqual(f.metadata, { format: "pt", note: "round trip" });
  f.close();
  const b = join(dir, "again.safetensors");
  saveSafetensors(b, back, { format: "pt", note: "round trip" });
  assert.ok(readFileSync(a).equals(readFileSync(b)), "second save differs");
});

test("tensors are read on demand, one at a time, straight into existing tensors too", () => {
  const big = torch.arange(5_500_000, undefined, 1, { dtype: "float32" });
  const small = torch.tensor([1, 2, 3]);
  const p = join(dir, "big.safetensors");
  saveSafetensors(p, { big, small });
  const f = SafetensorsFile.open(p);
  try {
    assert.deepEqual(f.get("small").toNumbers(), [1, 2, 3]);
    assert.ok(torch.equal(f.get("big"), big));
    // getInto converts dtype through copy_ (a float64 destination) and checks the shape.
    const dst = torch.zeros([5_500_000], { dtype: "float64" });
    f.getInto("big", dst);
    assert.ok(torch.equal(dst, big.to("float64")));
    assert.throws(
      () => f.getInto("big", torch.zeros([1100, 5000])),
      /tensor 'big' has shape \[5500000\], the destination \[1100,5000\]/,
    );
  } finally {
    f.close();
  }
});

test("a tensor stored at an offset that is not a multiple of its item size loads exactly", () => {
  // Names are written in sorted order: 3 bool bytes first put the float32 and int64 tensors at odd offsets.
  const src = new Map<string, torch.Tensor>([
    ["a", torch.fromArray(new Uint8Array([1, 0, 1]), [3], { dtype: "bool" })],
    ["b", torch.tensor([1.5, -2.25, 3])],
    ["c", torch.fromArray(new BigInt64Array([-3n, 2n ** 60n]), [2])],
  ]);
  const p = join(dir, "odd.safetensors");
  saveSafetensors(p, src);
  const f = SafetensorsFile.open(p);
  assert.notEqual(f.info("b").begin % 4, 0);
  f.close();
  const back = loadSafetensors(p);
  for (const [k, t] of src) sameTensor(back.get(k)!, t, k);
});

test("offsets past 4 GB are exact (a sparse file: nothing is stored before the tensor)", () => {
  const begin = 4_400_000_000;
  const json = Buffer.from(JSON.stringify({ far: { dtype: "F32", shape: [2, 2], data_offsets: [begin, begin + 16] } }));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  const p = join(dir, "sparse.safetensors");
  writeFileSync(p, Buffer.concat([len, json]));
  truncateSync(p, 8 + json.length + begin + 16);
  const fd = openSync(p, "r+");
  writeSync(fd, new Uint8Array(new Float32Array([1.5, -2, 3, 4]).buffer), 0, 16, 8 + json.length + begin);
  closeSync(fd);
  const f = SafetensorsFile.open(p);
  try {
    assert.deepEqual(f.get("far").toNumbers(), [1.5, -2, 3, 4]);
  } finally {
    f.close();
  }
});

/** Writes a safetensors file from a header object and a data section, bypassing our writer. */
function craft(name: string, header: unknown, data: Uint8Array, lengthOverride?: number): string {
  const json = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(lengthOverride ?? json.length));
  const p = join(dir, name);
  writeFileSync(p, Buffer.concat([len, json, data]));
  return p;
}

test("the header is validated strictly, and every error names the tensor and the problem", () => {
  const data = new Uint8Array(16);
  const cases: [string, unknown, RegExp, number?][] = [
    [
      "past-end",
      { a: { dtype: "F32", shape: [2], data_offsets: [0, 8] } },
      /header length 1000 runs past the end of the file/,
      1000,
    ],
    [
      "oob",
      { a: { dtype: "F32", shape: [8], data_offsets: [0, 32] } },
      /tensor 'a': data_offsets \[0,32\] out of bounds \(data section is 16 bytes\)/,
    ],
    [
      "overlap",
      { a: { dtype: "F32", shape: [2], data_offsets: [0, 8] }, b: { dtype: "F32", shape: [2], data_offsets: [4, 12] } },
      /tensors 'a' and 'b' have overlapping byte ranges/,
    ],
    ["dtype", { a: { dtype: "F8", shape: [2], data_offsets: [0, 2] } }, /tensor 'a': unknown dtype "F8"/],
    [
      "proto-dtype",
      { a: { dtype: "constructor", shape: [2], data_offsets: [0, 2] } },
      /tensor 'a': unknown dtype "constructor"/,
    ],
    [
      "count",
      { a: { dtype: "F16", shape: [3, 2], data_offsets: [0, 8] } },
      /tensor 'a': 8 bytes stored but F16 \[3,2\] needs 12/,
    ],
    [
      "shape",
      { a: { dtype: "F32", shape: [-1], data_offsets: [0, 4] } },
      /tensor 'a': shape \[-1\] is not a list of at most 64 non-negative integers below 2\^53/,
    ],
    [
      "offsets",
      { a: { dtype: "F32", shape: [1], data_offsets: [8, 4] } },
      /tensor 'a': data_offsets \[8,4\] must be \[begin, end\]/,
    ],
    ["meta", { __metadata__: { n: 3 } }, /__metadata__ must map names to strings/],
    ["array", [1, 2], /the header does not start with '\{'/],
  ];
  for (const [name, header, re, len] of cases) {
    const p = craft(`${name}.safetensors`, header, data, len);
    assert.throws(
      () => SafetensorsFile.open(p),
      (e: unknown) =>
        e instanceof SafetensorsError && re.test((e as Error).message) && (e as Error).message.startsWith(p),
      name,
    );
  }
  // Not JSON, and not a safetensors file at all.
  const bad = join(dir, "notjson.safetensors");
  writeFileSync(bad, Buffer.concat([Buffer.from([4, 0, 0, 0, 0, 0, 0, 0]), Buffer.from("{abc")]));
  assert.throws(() => SafetensorsFile.open(bad), /header is not valid JSON/);
  const text = join(dir, "text.safetensors");
  writeFileSync(text, "hello world, not a tensor file");
  assert.throws(() => SafetensorsFile.open(text), SafetensorsError);
});

test("a truncated download is reported with the tensor that runs past the end", () => {
  const p = join(dir, "full.safetensors");
  saveSafetensors(p, { a: torch.ones([4]), b: torch.ones([100]) });
  const bytes = readFileSync(p);
  const cut = join(dir, "cut.safetensors");
  writeFileSync(cut, bytes.subarray(0, bytes.length - 10));
  assert.throws(() => SafetensorsFile.open(cut), /tensor 'b': data_offsets \[16,416\] out of bounds/);
  writeFileSync(cut, bytes.subarray(0, 5));
  assert.throws(() => SafetensorsFile.open(cut), /too short for a safetensors header/);
});
