#!/usr/bin/env node
// Mutation fuzzing of cao2's file readers (docs/security.md): one reader process reads the inputs one after another
// while this process watches it (a separate process rather than a worker thread, so that a native crash in the
// reader, an abort or a segfault, is counted as a crash instead of ending the run; a reader is replaced only after a
// crash, hang or memory kill).
//   npm run build && npm run fuzz -- <pt|safetensors|png|jpeg|idx> [--iterations N] [--seed S] [--timeout-s 10]
//                                    [--max-rss-mb 1024] [--out fuzz-out] [--keep-slow-ms T] [--json]
// Inputs are mutations of valid seeds (the repository's fixtures and files made here), drawn from a seeded generator:
// byte-level edits (bit flips, interesting integers, inserted, deleted, duplicated and spliced runs) and, per format,
// edits that keep the input past its checksums so the parser behind them is reached (the pickle inside a well-formed
// zip, PNG chunks with their CRCs recomputed, header numbers in safetensors JSON, the inflated body of a .gz). Each
// input goes through what a command does with such a file: open, every tensor loaded, the cao2 description checked;
// decode; parse and build the data set.
// Outcomes: accepted, refused (an InputError: what a reader must say about bad input), crash (any other exception,
// or the reader process dying: a bug), hang (no answer within --timeout-s: the reader is killed and replaced), memory
// (the reader's resident memory passed --max-rss-mb). Crashing and hanging inputs are written to
// <out>/<target>/ to reproduce (and, with --keep-slow-ms, inputs that took longer than T ms but finished). The report
// gives counts, the slowest input and the reader processes' peak RSS (the kernel's high-water mark, VmHWM).
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { fork } from "node:child_process";
import { crc32, deflateSync, gunzipSync, gzipSync, inflateSync } from "node:zlib";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const TARGETS = ["pt", "safetensors", "png", "jpeg", "idx"];

// ---------------------------------------------------------------------------------------------------------------
// Seeded randomness (SplitMix32-style), so a run is reproducible from --seed and an input from its index
// ---------------------------------------------------------------------------------------------------------------

function rng(seed) {
  let s = seed >>> 0;
  const next = () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
  const int = (n) => next() % Math.max(1, n);
  return { next, int, pick: (xs) => xs[int(xs.length)], chance: (p) => next() / 2 ** 32 < p };
}

const INTERESTING = [
  0,
  1,
  2,
  0x7f,
  0x80,
  0xff,
  0x100,
  0x7fff,
  0x8000,
  0xffff,
  46340,
  65000,
  0x7fffffff,
  0x80000000,
  0xffffffff,
  1e6,
  2 ** 24,
];

/** One byte-level edit of `b` (a new buffer). */
function mutateBytes(b, r, splice) {
  const out = Buffer.from(b);
  if (out.length === 0) return Buffer.from([r.int(256)]);
  const at = r.int(out.length);
  switch (r.int(9)) {
    case 0: // flip a bit
      out[at] ^= 1 << r.int(8);
      return out;
    case 1: // an interesting byte
      out[at] = r.pick([0, 1, 0x7f, 0x80, 0xff, r.int(256)]);
      return out;
    case 2: // an interesting 16/32-bit integer, either byte order
    case 3: {
      const v = r.pick(INTERESTING) >>> 0;
      const n = r.chance(0.5) ? 4 : 2;
      if (at + n > out.length) return out;
      if (n === 4) r.chance(0.5) ? out.writeUInt32BE(v, at) : out.writeUInt32LE(v, at);
      else r.chance(0.5) ? out.writeUInt16BE(v & 0xffff, at) : out.writeUInt16LE(v & 0xffff, at);
      return out;
    }
    case 4: // delete a run
      return Buffer.concat([out.subarray(0, at), out.subarray(Math.min(out.length, at + 1 + r.int(32)))]);
    case 5: {
      // duplicate a run (repeated structure: a second chunk, an op repeated)
      const len = 1 + r.int(Math.min(64, out.length - at));
      const run = out.subarray(at, at + len);
      const copies = 1 + r.int(r.chance(0.2) ? 200 : 4);
      return Buffer.concat([out.subarray(0, at), ...Array(copies).fill(run), out.subarray(at)]);
    }
    case 6: // insert random bytes
      return Buffer.concat([
        out.subarray(0, at),
        Buffer.from(Array.from({ length: 1 + r.int(16) }, () => r.int(256))),
        out.subarray(at),
      ]);
    case 7: // truncate
      return out.subarray(0, at);
    default: {
      // splice in a run of another seed
      const other = splice();
      if (!other.length) return out;
      const from = r.int(other.length);
      return Buffer.concat([out.subarray(0, at), other.subarray(from, from + 1 + r.int(64)), out.subarray(at)]);
    }
  }
}

/** 1 to 4 byte-level edits. */
function mutate(b, r, splice) {
  let out = b;
  for (let n = 1 + r.int(4); n > 0; n--) out = mutateBytes(out, r, splice);
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Targets: seeds, structure-aware mutations, and what is done with an input
// ---------------------------------------------------------------------------------------------------------------

const D = (p) => import(pathToFileURL(join(ROOT, "dist", "src", p)).href);
const fixtures = (sub, ext) => {
  const dir = join(ROOT, "test", "fixtures", sub);
  return readdirSync(dir)
    .filter((f) => f.endsWith(ext))
    .map((f) => readFileSync(join(dir, f)));
};

/** Zip entries of a stored-or-deflated archive (enough to take the seeds' pickles and storages apart). */
async function zipParts(bytes, tmp) {
  const { ZipReader } = await D("io/zip.js");
  const p = join(tmp, "seed.zip");
  writeFileSync(p, bytes);
  const z = ZipReader.open(p);
  try {
    return [...z.entries.keys()].map((name) => [name, Buffer.from(z.read(name))]);
  } finally {
    z.close();
  }
}

/** The PNG chunks of a file with their CRCs recomputed (a mutation inside a chunk then reaches the decoder). */
function fixPngCrcs(b) {
  const out = Buffer.from(b);
  for (let p = 8; p + 12 <= out.length;) {
    const len = out.readUInt32BE(p);
    if (p + 12 + len > out.length) break;
    out.writeUInt32BE(crc32(out.subarray(p + 4, p + 8 + len)) >>> 0, p + 8 + len);
    p += 12 + len;
  }
  return out;
}

/** Opens a checkpoint and materialises each of its tensors (what a model load does); returns the tensor count. */
function loadEveryTensor(openCheckpoint, file) {
  const ck = openCheckpoint(file);
  try {
    for (const e of ck.tensors.values()) e.load().dispose();
    return ck.tensors.size;
  } finally {
    ck.close();
  }
}

/** Builds a target: { seeds, mutate(seed, r, splice), run(bytes) }. */
async function makeTarget(name, tmp) {
  // The readers run with the default limits (docs/security.md): those are what a user gets.
  const hostile = await import(pathToFileURL(join(ROOT, "tools", "hostile", "make.mjs")).href);
  const file = join(tmp, `input.${name}`);
  if (name === "pt") {
    const { openCheckpoint } = await D("io/checkpoint.js");
    const seeds = [];
    for (const b of fixtures("io", ".pt"))
      if (b.readUInt32LE(0) === 0x04034b50) seeds.push({ parts: await zipParts(b, tmp) }); // legacy.pt is no zip
    seeds.push({ parts: await zipParts(hostile.ptWithTensor([3, 4], [0, 1], 4), tmp) });
    const OPS = [
      Buffer.from("2"),
      Buffer.from("("),
      Buffer.from("t"),
      Buffer.from("u"),
      Buffer.from("e"),
      Buffer.from("l"),
      Buffer.from("d"),
      Buffer.from("}"),
      Buffer.from("]"),
      Buffer.from("R"),
      Buffer.from("b"),
      Buffer.from([0x94]),
      Buffer.from([0x85]),
      Buffer.from([0x86]),
      Buffer.from("0"),
    ];
    const gets = (r) => Buffer.from([0x68, r.int(8)]);
    return {
      seeds,
      mutate(seed, r, splice) {
        const parts = seed.parts.map(([n, d]) => [n, d]);
        const i = parts.findIndex(([n]) => n.endsWith("/data.pkl"));
        if (r.chance(0.1) || i < 0) return mutate(hostile.zipStored(parts), r, () => splice().parts[0][1]);
        let pkl = parts[i][1];
        for (let n = 1 + r.int(4); n > 0; n--) {
          if (r.chance(0.4)) {
            // An opcode inserted or repeated: memo reuse, marks, containers, calls.
            const at = r.int(pkl.length);
            const ins = r.chance(0.5) ? gets(r) : r.pick(OPS);
            pkl = Buffer.concat([pkl.subarray(0, at), ...Array(r.chance(0.1) ? 100 : 1).fill(ins), pkl.subarray(at)]);
          } else pkl = mutateBytes(pkl, r, () => splice().parts[0][1]);
        }
        parts[i] = [parts[i][0], pkl];
        return hostile.zipStored(parts);
      },
      run(bytes) {
        writeFileSync(file, bytes);
        return loadEveryTensor(openCheckpoint, file);
      },
    };
  }
  if (name === "safetensors") {
    const { openCheckpoint } = await D("io/checkpoint.js");
    const { readModelMeta } = await D("models/saved.js");
    const seeds = [
      ...fixtures("io", ".safetensors"),
      ...fixtures("data", ".safetensors"),
      hostile.safetensorsDiTMeta({ depth: 1 }),
    ];
    // Small cao2 model files, so the description checks are reached.
    const { saveModel } = await D("models/saved.js");
    const { createDiT } = await D("models/dit.js");
    const { createConvNet } = await D("models/convnet.js");
    const dit = {
      inputSize: 4,
      inChannels: 2,
      numClasses: 3,
      learnSigma: true,
      classDropoutProb: 0.1,
      depth: 1,
      hiddenSize: 8,
      numHeads: 2,
      patchSize: 2,
      mlpRatio: 2,
    };
    const cn = { numClasses: 3, depth: 1, width: 4, inChannels: 1, imageSize: 8 };
    const pre = { size: 8, channels: 1, mean: [0.5], std: [0.5] };
    for (const [model, meta] of [
      [createDiT(dit, { init: "zeros" }), { kind: "dit", config: dit, classes: ["a", "b", "c"] }],
      [createConvNet(cn), { kind: "convnet", config: cn, preprocess: pre, classes: ["a", "b", "c"] }],
    ]) {
      saveModel(file, model, meta);
      seeds.push(readFileSync(file));
    }
    const numbers = [0, -1, 1, 3, 2 ** 31, 2 ** 32, 2 ** 53, 2 ** 64, 1e300, 0.5, 1e6, 1e9];
    return {
      seeds,
      mutate(seed, r, splice) {
        if (r.chance(0.5)) return mutate(seed, r, splice);
        // A number in the JSON header (shapes, offsets, or the cao2 description inside) replaced.
        const len = Number(seed.readBigUInt64LE(0));
        let json = seed.subarray(8, 8 + len).toString("utf8");
        const nums = [...json.matchAll(/-?\d+(\.\d+)?(e[+-]?\d+)?/g)];
        for (let n = 1 + r.int(3); n > 0 && nums.length; n--) {
          const m = r.pick(nums);
          json = json.slice(0, m.index) + String(r.pick(numbers)) + json.slice(m.index + m[0].length);
        }
        const head = Buffer.from(json, "utf8");
        const lb = Buffer.alloc(8);
        lb.writeBigUInt64LE(BigInt(head.length));
        return Buffer.concat([lb, head, seed.subarray(8 + len)]);
      },
      run(bytes) {
        writeFileSync(file, bytes);
        readModelMeta(file);
        return loadEveryTensor(openCheckpoint, file);
      },
    };
  }
  if (name === "png" || name === "jpeg") {
    const { decodeImage } = await D("io/image.js");
    const { encodePng } = await D("io/png.js");
    let seeds;
    if (name === "png") {
      seeds = fixtures("data/png", ".png");
      seeds.push(
        Buffer.from(encodePng({ width: 5, height: 3, channels: 3, data: new Uint8Array(45).map((_, i) => i * 5) })),
      );
    } else {
      const jpeg = (await import("jpeg-js")).default;
      seeds = fixtures("data/jpeg", ".jpg");
      seeds.push(jpeg.encode({ width: 9, height: 7, data: Buffer.alloc(9 * 7 * 4, 200) }, 80).data);
    }
    return {
      seeds,
      mutate(seed, r, splice) {
        if (name === "jpeg") return mutate(seed, r, splice);
        if (r.chance(0.15)) {
          // The inflated image data mutated and recompressed (reaches the unfiltering with valid zlib).
          try {
            const chunks = [];
            for (let p = 8; p + 12 <= seed.length;) {
              const len = seed.readUInt32BE(p);
              chunks.push([seed.toString("latin1", p + 4, p + 8), seed.subarray(p + 8, p + 8 + len)]);
              p += 12 + len;
            }
            const idat = Buffer.concat(chunks.filter(([t]) => t === "IDAT").map(([, d]) => d));
            const body = deflateSync(mutate(inflateSync(idat), r, () => Buffer.alloc(0)));
            const keep = chunks.filter(([t]) => t !== "IDAT" && t !== "IEND");
            return Buffer.concat([
              seed.subarray(0, 8),
              ...keep.map(([t, d]) => hostile.pngChunk(t, d)),
              hostile.pngChunk("IDAT", body),
              hostile.pngChunk("IEND", Buffer.alloc(0)),
            ]);
          } catch {
            return mutate(seed, r, splice);
          }
        }
        const out = mutate(seed, r, splice);
        return r.chance(0.85) ? fixPngCrcs(out) : out;
      },
      run(bytes) {
        const img = decodeImage(bytes, "input");
        return img.width * img.height;
      },
    };
  }
  if (name === "idx") {
    const { readIdx, loadIdxPair } = await D("io/datasets/idx.js");
    const img = Buffer.concat([hostile.idxHeader([3, 4, 5]), Buffer.alloc(60, 7)]);
    const lab = Buffer.concat([hostile.idxHeader([3]), Buffer.from([0, 1, 2])]);
    const seeds = [img, gzipSync(img), lab, gzipSync(lab)];
    const folder = join(tmp, "idx");
    mkdirSync(folder, { recursive: true });
    return {
      seeds,
      mutate(seed, r, splice) {
        if (seed[0] === 0x1f && r.chance(0.5)) {
          try {
            return gzipSync(mutate(gunzipSync(seed), r, splice));
          } catch {
            /* a seed that does not inflate: mutate the bytes */
          }
        }
        return mutate(seed, r, splice);
      },
      run(bytes) {
        const { dims } = readIdx(bytes, "input");
        if (dims.length !== 3 || dims[0] > 1e6) return dims.length;
        // As a data set: the images file beside a labels file of the same count.
        writeFileSync(join(folder, "im"), bytes);
        writeFileSync(join(folder, "lb"), Buffer.concat([hostile.idxHeader([dims[0]]), Buffer.alloc(dims[0])]));
        const ds = loadIdxPair(folder, "im", "lb", ["a"]);
        ds.images.dispose();
        return dims[0];
      },
    };
  }
  throw new Error(`unknown target ${name}`);
}

// ---------------------------------------------------------------------------------------------------------------
// Reader process: makes input i, reports it, reads it, reports the outcome
// ---------------------------------------------------------------------------------------------------------------

const send = (m) => new Promise((resolve) => process.send(m, resolve));

async function readerMain({ target, seed, start, end }) {
  const tmp = mkdtempSync(join(tmpdir(), `cao2-fuzz-${target}-`));
  const { InputError } = await D("errors.js");
  const t = await makeTarget(target, tmp);
  for (let i = start; i < end; i++) {
    const r = rng(seed * 1_000_003 + i);
    const input = Buffer.from(t.mutate(r.pick(t.seeds), r, () => r.pick(t.seeds)));
    await send({ type: "start", i, input });
    const t0 = performance.now();
    let outcome;
    let detail = "";
    try {
      t.run(input);
      outcome = "accepted";
    } catch (e) {
      if (e instanceof InputError) {
        outcome = "refused";
        detail = e.message.replace(/^[^:]*input[^:]*: /, "").slice(0, 120);
      } else {
        outcome = "crash";
        detail = e instanceof Error ? (e.stack ?? e.message) : String(e);
      }
    }
    await send({ type: "done", i, outcome, detail, ms: performance.now() - t0 });
  }
  rmSync(tmp, { recursive: true, force: true });
  await send({ type: "end" });
  process.disconnect();
}

/** Resident memory and its high-water mark of a process, in bytes (Linux /proc), or zeros once it is gone. */
function memoryOf(pid) {
  try {
    const st = readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = (k) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, "m").exec(st)?.[1] ?? 0) * 1024;
    return { rss: kb("VmRSS"), peak: kb("VmHWM") };
  } catch {
    return { rss: 0, peak: 0 };
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Main: the watchdog and the report
// ---------------------------------------------------------------------------------------------------------------

function parseArgs(argv) {
  const o = {
    target: undefined,
    iterations: 1000,
    seed: 1,
    timeoutS: 10,
    maxRssMb: 1024,
    out: "fuzz-out",
    keepSlowMs: Infinity,
    json: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      const v = Number(argv[++i]);
      if (!Number.isFinite(v) || v <= 0) usage(`${a} needs a positive number`);
      return v;
    };
    if (a === "--iterations") o.iterations = Math.floor(val());
    else if (a === "--seed") o.seed = Math.floor(val());
    else if (a === "--timeout-s") o.timeoutS = val();
    else if (a === "--max-rss-mb") o.maxRssMb = val();
    else if (a === "--keep-slow-ms") o.keepSlowMs = val();
    else if (a === "--out") o.out = argv[++i];
    else if (a === "--json") o.json = true;
    else if (!a.startsWith("--") && !o.target) o.target = a;
    else usage(`unknown argument '${a}'`);
  }
  if (!TARGETS.includes(o.target)) usage(`the target must be one of ${TARGETS.join(", ")}`);
  return o;
}

function usage(msg) {
  process.stderr.write(
    `fuzz: ${msg}\nusage: npm run fuzz -- <${TARGETS.join("|")}> [--iterations N] [--seed S] [--timeout-s 10] [--max-rss-mb 1024] [--out fuzz-out] [--keep-slow-ms T] [--json]\n`,
  );
  process.exit(2);
}

/** Runs the fuzzer; resolves to the report. Exported for the test suite's short run. */
export async function fuzz(opts) {
  const o = { iterations: 1000, seed: 1, timeoutS: 10, maxRssMb: 1024, out: "fuzz-out", keepSlowMs: Infinity, ...opts };
  const counts = { accepted: 0, refused: 0, crash: 0, hang: 0, memory: 0 };
  const findings = [];
  const refusals = new Map();
  let slowest = { ms: 0, i: -1 };
  let peak = 0;
  let next = 0;
  const t0 = Date.now();
  const save = (kind, i, input, detail) => {
    const dir = join(o.out, o.target);
    mkdirSync(dir, { recursive: true });
    const p = join(dir, `${kind}-${o.seed}-${i}.bin`);
    writeFileSync(p, input);
    findings.push({ kind, i, file: p, detail: String(detail).slice(0, 2000) });
  };
  while (next < o.iterations) {
    // One reader process reads inputs next..end; a crash, hang or memory kill replaces it from the input after.
    await new Promise((resolve, reject) => {
      const w = fork(
        fileURLToPath(import.meta.url),
        ["--reader", JSON.stringify({ target: o.target, seed: o.seed, start: next, end: o.iterations })],
        {
          serialization: "advanced",
          stdio: ["ignore", "ignore", "pipe", "ipc"],
        },
      );
      let stderr = "";
      w.stderr.on("data", (d) => (stderr = (stderr + d).slice(-4000)));
      let current = null;
      let finished = false;
      const watch = () => {
        const m = memoryOf(w.pid);
        peak = Math.max(peak, m.peak, m.rss);
        return m;
      };
      const stop = (kind, detail) => {
        if (finished) return;
        finished = true;
        clearInterval(timer);
        watch();
        w.kill("SIGKILL");
        if (!current)
          return reject(new Error(`the fuzz reader failed outside any input (a harness error): ${detail}\n${stderr}`));
        counts[kind]++;
        save(kind, current.i, current.input, detail);
        next = current.i + 1;
        resolve();
      };
      const timer = setInterval(() => {
        const { rss } = watch();
        if (current && rss > o.maxRssMb * 2 ** 20) stop("memory", `resident memory ${Math.round(rss / 2 ** 20)} MB`);
        else if (current && Date.now() - current.at > o.timeoutS * 1000)
          stop("hang", `no answer within ${o.timeoutS} s`);
      }, 20);
      w.on("message", (m) => {
        if (m.type === "start") current = { i: m.i, input: Buffer.from(m.input), at: Date.now() };
        else if (m.type === "done") {
          counts[m.outcome]++;
          if (m.ms > slowest.ms) slowest = { ms: m.ms, i: m.i };
          if (m.outcome === "crash") save("crash", m.i, current.input, m.detail);
          else if (m.ms > o.keepSlowMs)
            save("slow", m.i, current.input, `${Math.round(m.ms)} ms, ${m.outcome}${m.detail ? `: ${m.detail}` : ""}`);
          if (m.outcome === "refused")
            refusals.set(
              m.detail.replace(/\d+/g, "N").slice(0, 60),
              (refusals.get(m.detail.replace(/\d+/g, "N").slice(0, 60)) ?? 0) + 1,
            );
          current = null;
          next = m.i + 1;
          if (!o.json && next % 500 === 0) process.stderr.write(`${o.target}: ${next}/${o.iterations}\n`);
        } else if (m.type === "end") {
          watch();
          finished = true;
          clearInterval(timer);
          resolve();
        }
      });
      w.on("exit", (code, signal) => {
        if (!current && next >= o.iterations && code === 0) {
          finished = true; // the end message raced the exit: a normal end
          clearInterval(timer);
          return resolve();
        }
        stop(
          "crash",
          `the reader process died (${signal ?? `exit code ${code}`}): ${stderr.trim().split("\n").slice(-3).join(" | ")}`,
        );
      });
    });
  }
  const peakRssMb = Math.round(peak / 2 ** 20);
  const topRefusals = [...refusals].sort((a, b) => b[1] - a[1]).slice(0, 8);
  return {
    target: o.target,
    inputs: o.iterations,
    seed: o.seed,
    ...counts,
    slowestMs: Math.round(slowest.ms),
    slowestInput: slowest.i,
    peakRssMb,
    seconds: Math.round((Date.now() - t0) / 1000),
    findings,
    topRefusals,
  };
}

if (process.argv[2] === "--reader") {
  await readerMain(JSON.parse(process.argv[3]));
} else if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const o = parseArgs(process.argv.slice(2));
  const rep = await fuzz(o);
  if (o.json) process.stdout.write(JSON.stringify(rep, null, 2) + "\n");
  else {
    process.stdout.write(
      `${rep.target}: ${rep.inputs} inputs in ${rep.seconds} s (seed ${rep.seed}): ${rep.accepted} accepted, ${rep.refused} refused (InputError), ` +
        `${rep.crash} crashes, ${rep.hang} hangs (> ${o.timeoutS} s), ${rep.memory} over ${o.maxRssMb} MB; slowest input ${rep.slowestMs} ms (#${rep.slowestInput}); peak RSS ${rep.peakRssMb} MB\n`,
    );
    for (const [msg, n] of rep.topRefusals) process.stdout.write(`  refused ${n}x: ${msg}\n`);
    for (const f of rep.findings)
      process.stdout.write(`  ${f.kind} #${f.i} (${f.file}): ${f.detail.split("\n").slice(0, 3).join(" | ")}\n`);
  }
  process.exitCode = rep.crash + rep.hang + rep.memory > 0 ? 1 : 0;
}
