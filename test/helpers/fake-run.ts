// A made-up `cao2 distill` output for the report's tests and benchmark: placeholder images (a per-image pattern, so
// no two are alike) and records with the manifest's fields, in either run-state layout. Not a distillation: the
// numbers are arbitrary; what matters is the shape of the folder.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { encodePng } from "../../src/io/png.js";
import type { Manifest } from "../../src/distill/run.js";
import type { ClassRecord } from "../../src/distill/write.js";

export interface FakeRunOptions {
  classes: number;
  ipc: number;
  poolFactor?: number;
  /** Image side in pixels (grey). */
  size?: number;
  preRefine?: boolean;
  /** Run state inside the output (`.cao2/`, older runs) or beside it (`<out>.cao2/`, recorded in the manifest). */
  layout?: "inside" | "sibling";
  /** Labels of classes not finished: no manifest is written, as in a run still in progress. */
  unfinished?: number[];
}

function placeholder(size: number, seed: number): Uint8Array {
  const data = new Uint8Array(size * size);
  for (let y = 0; y < size; y++)
    for (let x = 0; x < size; x++)
      data[y * size + x] = (x * ((seed % 7) + 1) + y * (((seed >> 3) % 5) + 1) + seed * 13) & 255;
  return encodePng({ width: size, height: size, channels: 1, data });
}

/** Writes the run into `out`; returns the manifest (written only when every class is finished). */
export function makeFakeRun(out: string, o: FakeRunOptions): Manifest {
  const size = o.size ?? 16;
  const pf = o.poolFactor ?? 2;
  const state = o.layout === "sibling" ? `${out}.cao2` : join(out, ".cao2");
  const width = String(o.classes - 1).length;
  const specs = Array.from({ length: o.classes }, (_, label) => ({
    label,
    modelIndex: label,
    id: `c${label}`,
    name: `class ${label}`,
  }));
  const classes = specs.map((c) => ({ ...c, folder: `${String(c.label).padStart(width, "0")}_${c.id}` }));
  const config = {
    preset: "fashion-mnist",
    classes: specs,
    numClasses: o.classes,
    ipc: o.ipc,
    poolFactor: pf,
    select: "confident",
    refineIters: 2,
    savePreRefine: !!o.preRefine,
    seed: 0,
  };
  mkdirSync(join(state, "classes"), { recursive: true });
  writeFileSync(join(state, "run.json"), JSON.stringify(config));
  const records: ClassRecord[] = [];
  for (const c of classes) {
    if (o.unfinished?.includes(c.label)) continue;
    mkdirSync(join(out, c.folder), { recursive: true });
    if (o.preRefine) mkdirSync(join(state, "pre-refine", c.folder), { recursive: true });
    const filled = c.label % 3 === 2 ? 1 : 0;
    const items = Array.from({ length: o.ipc }, (_, i) => {
      const file = `${c.folder}/${i}.png`;
      const seed = c.label * 1000 + i;
      writeFileSync(join(out, file), placeholder(size, seed));
      if (o.preRefine) writeFileSync(join(state, "pre-refine", file), placeholder(size, seed + 1));
      const wrong = i >= o.ipc - filled;
      const confidence = wrong ? 0.2 : 0.99 - i / (10 * o.ipc);
      return {
        file,
        poolIndex: i * pf,
        prediction: wrong ? (c.modelIndex + 1) % o.classes : c.modelIndex,
        confidence,
        el2n: 1 - confidence,
        lossBefore: 2 + i / 10,
        lossAfter: 1.5 + i / 10,
        refinedPrediction: c.modelIndex,
        refinedConfidence: confidence,
      };
    });
    const pool = Array.from({ length: o.ipc * pf }, (_, k) => ({
      prediction: k % 5 === 4 ? (c.modelIndex + 1) % o.classes : c.modelIndex,
      confidence: ((k * 37 + c.label * 11) % 100) / 100,
    }));
    const record: ClassRecord = {
      ...c,
      strategy: "confident",
      filled,
      condition: { kind: "true", label: c.modelIndex },
      items,
      pool,
      timings: { pool_s: 1 + (c.label % 4), select_s: 0.1, refine_s: 2 + (c.label % 3), write_s: 0.05 },
    };
    writeFileSync(join(state, "classes", `${c.label}.json`), JSON.stringify(record));
    records.push(record);
  }
  const hash = { path: "/models/x.safetensors", sha256: "0".repeat(64), bytes: 1 };
  const manifest: Manifest = {
    tool: { name: "cao2", version: "0.1.0", libtorch: "test" },
    created: "2026-01-01T00:00:00.000Z",
    config: { ...config, out, ...(o.layout === "sibling" ? { state } : {}) },
    condition: { requested: "true", chosen: "true" },
    models: {
      dit: hash,
      vae: hash,
      selector: hash,
      selectorPreprocess: { size, channels: 1, mean: [0.5], std: [0.5] },
      scalingFactor: 1,
    } as Manifest["models"],
    seeds: { seed: 0, derivation: "made up" },
    classes,
    images: records.reduce((n, r) => n + r.items.length, 0),
    distillSeconds: 1,
    records,
  };
  if (!o.unfinished?.length) {
    writeFileSync(join(out, "classes.txt"), classes.map((c) => c.folder).join("\n") + "\n");
    writeFileSync(join(out, "manifest.json"), JSON.stringify(manifest));
  }
  return manifest;
}
