// A short run of the fuzz suite (tools/fuzz/fuzz.mjs, `npm run fuzz`) over every reader (slow: a few hundred
// mutated inputs per target, about 10 s each on 2 shared cores): no input may end in anything but acceptance or an
// InputError, none may take longer than the watchdog's limit, and the process stays under 1 GB. The long run's
// figures are in docs/security.md.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { after, describe, test } from "node:test";
import { ROOT } from "../helpers/fixtures.js";

interface Report {
  inputs: number;
  accepted: number;
  refused: number;
  crash: number;
  hang: number;
  memory: number;
  peakRssMb: number;
  findings: { kind: string; file: string; detail: string }[];
}
const { fuzz } = (await import(pathToFileURL(join(ROOT, "tools", "fuzz", "fuzz.mjs")).href)) as {
  fuzz(o: {
    target: string;
    iterations: number;
    seed: number;
    timeoutS: number;
    maxRssMb: number;
    out: string;
  }): Promise<Report>;
};

const out = mkdtempSync(join(tmpdir(), "cao2-fuzz-test-"));
after(() => rmSync(out, { recursive: true, force: true }));

describe("fuzz suite, short run (slow)", () => {
  for (const target of ["pt", "safetensors", "png", "jpeg", "idx"]) {
    test(`${target}: 300 mutated inputs, no crash, hang or memory blow-up`, async () => {
      const r = await fuzz({ target, iterations: 300, seed: 7, timeoutS: 10, maxRssMb: 1024, out });
      assert.deepEqual(r.findings, [], "findings (crashing or hanging inputs were saved)");
      assert.equal(r.crash + r.hang + r.memory, 0);
      assert.equal(r.accepted + r.refused, 300);
      // The mutations must reach both outcomes, or the run proves little.
      assert.ok(r.accepted > 0 && r.refused > 0, `accepted ${r.accepted}, refused ${r.refused}`);
      assert.ok(r.peakRssMb < 1024, `peak RSS ${r.peakRssMb} MB`);
    });
  }
});
