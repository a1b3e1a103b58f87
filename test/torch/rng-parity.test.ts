// Random streams equal PyTorch's CPU generator exactly (tools/reference/rng_fixtures.py): the authors' noise bank
// manualSeed(42); randn([1024, 4, 32, 32]), seeded Generator streams of every sampler, and generator state.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { loadSafetensors } from "../../src/io/safetensors.js";
import * as torch from "../../src/torch/index.js";
import { fixture } from "../helpers/fixtures.js";

type Tensor = torch.Tensor;
type Draw = [string, ...unknown[]];
interface Fixture {
  bank: {
    seed: number;
    shape: number[];
    head: number;
    stride: number;
    sha256: string;
    sum: number;
    sum_squares: number;
  };
  seeds: string[];
  draws: Draw[];
  state: { seed: number; draws_after: number };
}

const spec = JSON.parse(readFileSync(fixture("torch", "rng.json"), "utf8")) as Fixture;
const stored = loadSafetensors(fixture("torch", "rng.safetensors"));
const get = (key: string) => {
  const t = stored.get(key);
  assert.ok(t, `fixture has no ${key}`);
  return t;
};

/** Bit-exact equality of shape, dtype and every value. */
function assertSame(actual: Tensor, expected: Tensor, what: string): void {
  assert.deepEqual(actual.shape, expected.shape, `${what}: shape`);
  assert.equal(actual.dtype, expected.dtype, `${what}: dtype`);
  assert.ok(Buffer.from(actual.toBytes()).equals(Buffer.from(expected.toBytes())), `${what}: values differ`);
}

// The draw kinds of the fixture's table, with our API.
type Shape = number[];
const SAMPLERS: Record<string, (g: torch.Generator, ...a: never[]) => Tensor> = {
  randn: (g, shape: Shape) => torch.randn(shape, { generator: g }),
  rand: (g, shape: Shape) => torch.rand(shape, { generator: g }),
  randn_float64: (g, shape: Shape) => torch.randn(shape, { generator: g, dtype: "float64" }),
  rand_float64: (g, shape: Shape) => torch.rand(shape, { generator: g, dtype: "float64" }),
  randint: (g, low: number, high: number, shape: Shape) => torch.randint(low, high, shape, { generator: g }),
  randperm: (g, n: number) => torch.randperm(n, { generator: g }),
  normal: (g, mean: number, std: number, shape: Shape) => {
    const t = torch.empty(shape);
    torch.normalInto(t, mean, std, g);
    return t;
  },
  uniform: (g, from: number, to: number, shape: Shape) => {
    const t = torch.empty(shape);
    torch.uniformInto(t, from, to, g);
    return t;
  },
};
const draw = (g: torch.Generator, [kind, ...args]: Draw) => {
  const f = SAMPLERS[kind];
  assert.ok(f, `no sampler for draw kind ${kind}`);
  return (f as (g: torch.Generator, ...a: unknown[]) => Tensor)(g, ...args);
};

/** Neumaier-compensated float64 sum: as exact as the fixture's math.fsum to far below one float32 ulp. */
function accurateSum(values: Float32Array, f: (v: number) => number): number {
  let s = 0;
  let c = 0;
  for (let i = 0; i < values.length; i++) {
    const v = f(values[i]);
    const t = s + v;
    c += Math.abs(s) >= Math.abs(v) ? s - t + v : v - t + s;
    s = t;
  }
  return s + c;
}

test(`manualSeed(${spec.bank.seed}); randn([${spec.bank.shape}]) equals PyTorch's bit for bit`, () =>
  torch.tidy(() => {
    const { bank } = spec;
    torch.manualSeed(bank.seed);
    const x = torch.randn(bank.shape).flatten();
    assertSame(x.slice(0, 0, bank.head), get("bank/head"), "first values");
    assertSame(x.slice(0, 0, undefined, bank.stride), get("bank/strided"), "strided sample");
    const bytes = x.toBytes();
    assert.equal(createHash("sha256").update(bytes).digest("hex"), bank.sha256, "sha256 of all values");
    const values = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
    // One float32 ulp of a unit value (1.2e-7) is far above both tolerances, which only absorb float64 rounding.
    assert.ok(Math.abs(accurateSum(values, (v) => v) - bank.sum) <= 1e-9, "sum");
    assert.ok(
      Math.abs(accurateSum(values, (v) => v * v) - bank.sum_squares) <= 1e-14 * bank.sum_squares,
      "sum of squares",
    );
  }));

for (const seed of spec.seeds) {
  test(`Generator(${seed}) streams equal torch.Generator().manual_seed(${seed})`, () =>
    torch.tidy(() => {
      const g = new torch.Generator(BigInt(seed));
      spec.draws.forEach((d, i) =>
        assertSame(draw(g, d), get(`stream/${seed}/${i}`), `draw ${i} (${JSON.stringify(d)})`),
      );
      // manualSeed on an existing generator restarts the stream.
      g.manualSeed(BigInt(seed));
      assert.equal(g.initialSeed, BigInt(seed));
      assertSame(draw(g, spec.draws[0]), get(`stream/${seed}/0`), "first draw after reseeding");
    }));
}

test("generator state: getState equals PyTorch's get_state, and setState replays the stream", () =>
  torch.tidy(() => {
    const { seed, draws_after } = spec.state;
    const after = spec.draws.slice(0, draws_after);
    const g = new torch.Generator(seed);
    draw(g, ["randn", [5]]);
    draw(g, ["rand", [3]]);
    const state = g.getState();
    assertSame(state, get("state/bytes"), "state bytes");
    const first = after.map((d) => draw(g, d));
    first.forEach((t, i) => assertSame(t, get(`state/after/${i}`), `draw ${i} after the saved state`));
    // Replay on the same generator, and on a fresh one given PyTorch's saved state.
    g.setState(state);
    after.forEach((d, i) => assertSame(draw(g, d), first[i], `replayed draw ${i}`));
    const h = new torch.Generator(0);
    h.setState(get("state/bytes"));
    after.forEach((d, i) => assertSame(draw(h, d), first[i], `draw ${i} from PyTorch's state`));
  }));
