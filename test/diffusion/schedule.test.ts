import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import {
  diffusionTables,
  GaussianDiffusion,
  linearBetas,
  respacedBetas,
  roundHalfEven,
  spaceTimesteps,
} from "../../src/diffusion/index.js";
import { InputError } from "../../src/errors.js";
import { loadSafetensors } from "../../src/io/safetensors.js";
import { fixture, relErr } from "../helpers/fixtures.js";

const maps = JSON.parse(readFileSync(fixture("diffusion", "timestep_maps.json"), "utf8")) as Record<string, number[]>;
const tables = loadSafetensors(fixture("diffusion", "tables.safetensors"));
const expected = (key: string) => tables.get(key)!.toFloat64Array();

// The tables are float64 on both sides, computed with the same operations: they agree far below float32 precision.
const F64_TOL = 1e-12;

test("Python's round: halves go to the even neighbour", () => {
  assert.deepEqual([0.5, 1.5, 2.5, 166.5, 167.5, 2.4999, 2.5001, 3].map(roundHalfEven), [0, 2, 2, 166, 168, 2, 3, 3]);
});

test("respaced timesteps equal the reference's space_timesteps (step counts, sections, ddimN)", () => {
  assert.deepEqual(spaceTimesteps(1000, 50), maps["50"]);
  assert.deepEqual(spaceTimesteps(1000, "50"), maps["50"]);
  // 25 steps hit an exact .5 (4 * 999/24 = 166.5), where rounding half up would keep 167.
  assert.deepEqual(spaceTimesteps(1000, 25), maps["25"]);
  assert.deepEqual(spaceTimesteps(1000, [10]), maps["10"]);
  assert.deepEqual(spaceTimesteps(1000, "ddim50"), maps.ddim50);
  assert.deepEqual(spaceTimesteps(1000, "ddim25"), maps.ddim25);
  assert.deepEqual(spaceTimesteps(300, "10,15,20"), maps["T300_10,15,20"]);
  assert.deepEqual(spaceTimesteps(1000, [3, 2]), maps["T1000_3,2"]);
  for (const S of [50, 25, 10]) {
    const m = spaceTimesteps(1000, S);
    assert.equal(m.length, S);
    assert.equal(m[0], 0);
    assert.equal(m[S - 1], 999);
  }
});

test("bad respacing requests are input errors", () => {
  assert.throws(() => spaceTimesteps(100, 101), InputError);
  // ceil(1000/k) skips 49: no stride gives 49 steps.
  assert.throws(() => spaceTimesteps(1000, "ddim49"), /no integer stride/);
  assert.throws(() => spaceTimesteps(1000, "10,x"), /not a positive integer/);
  assert.throws(() => spaceTimesteps(1000, 0), InputError);
  assert.throws(() => respacedBetas(linearBetas(10), [3, 2]), /increasing/);
  assert.throws(() => GaussianDiffusion.create({ respacing: 1 }), /at least 2 steps/);
});

test("linear betas (T = 1000 and scaled for T = 250) and every table of the full process", () => {
  let worst = relErr(linearBetas(250), expected("T250.betas"));
  const full = diffusionTables(linearBetas(1000));
  for (const [name, arr] of Object.entries(full)) {
    const e = relErr(arr, expected(`T1000.${name}`));
    assert.ok(e <= F64_TOL, `T1000.${name}: rel err ${e}`);
    worst = Math.max(worst, e);
  }
  assert.ok(worst <= F64_TOL, `worst ${worst}`);
  console.log(`full-process tables: worst rel err ${worst.toExponential(2)}`);
});

test("tables of the respaced processes (S = 50, 25, 10) equal the reference's", () => {
  let worst = 0;
  for (const S of [50, 25, 10]) {
    const d = GaussianDiffusion.create({ respacing: S });
    assert.equal(d.numTimesteps, S);
    assert.deepEqual(d.timestepMap, maps[String(S)]);
    assert.equal(d.originalNumTimesteps, 1000);
    for (const [name, arr] of Object.entries(d.tables)) {
      const e = relErr(arr, expected(`S${S}.${name}`));
      assert.ok(e <= F64_TOL, `S${S}.${name}: rel err ${e}`);
      worst = Math.max(worst, e);
    }
    // The kept steps keep the original cumulative products.
    const base = diffusionTables(linearBetas(1000)).alphasCumprod;
    assert.ok(
      relErr(
        d.tables.alphasCumprod,
        d.timestepMap.map((t) => base[t]),
      ) < 1e-12,
    );
  }
  console.log(`respaced tables: worst rel err ${worst.toExponential(2)}`);
});
