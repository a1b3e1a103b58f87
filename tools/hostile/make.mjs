#!/usr/bin/env node
// Hand-made hostile files for cao2's readers (docs/security.md): each one small, each aimed at one way a reader
// can be made to hang, exhaust memory or crash. The tests (test/io/hostile.test.ts, test/cli/hostile.test.ts) build
// them in memory with the functions below; run as a script to write them all to a folder:
//   node tools/hostile/make.mjs <out-folder> [--bomb-bytes N]
// --bomb-bytes sets what the inflate bombs expand to (default 3 GiB for the PNG, 5 GiB for the idx, as reported in
// issue #24; the tests use smaller ones, the bound does not depend on the size). Nothing here depends on cao2's code,
// so a file is hostile by construction, not by what the reader under test happens to accept.
import { execFileSync } from "node:child_process";
import { mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { constants, crc32, deflateRawSync, deflateSync } from "node:zlib";

// ---------------------------------------------------------------------------------------------------------------
// Deflate bombs: a raw deflate stream of N zero bytes built from one compressed MiB repeated (blocks flushed to a
// byte boundary need nothing from each other), so a stream that inflates to gigabytes takes a millisecond to make
// and about a thousandth of its inflated size on disk.
// ---------------------------------------------------------------------------------------------------------------

const MiB = 1 << 20;
const ZERO_BYTES = Buffer.alloc(MiB);
const ZERO_MIB = deflateRawSync(ZERO_BYTES, { level: 9, finishFlush: constants.Z_SYNC_FLUSH });
const FINAL = deflateRawSync(Buffer.alloc(0));

/** A raw deflate stream: `head` (compressed), then `zeros` zero bytes in whole MiB (rounded up), then the end. */
export function deflateBomb(zeros, head = Buffer.alloc(0)) {
  const parts = [deflateRawSync(head, { finishFlush: constants.Z_SYNC_FLUSH })];
  for (let n = 0; n < zeros; n += MiB) parts.push(ZERO_MIB);
  parts.push(FINAL);
  return Buffer.concat(parts);
}
const bombZeros = (zeros) => Math.ceil(zeros / MiB) * MiB;

/**
 * zlib framing (RFC 1950) around a bomb of `zeros` zero bytes, with its true Adler-32 (for zeros, a stays 1 and b
 * counts the bytes), so the stream is valid to the end: a reader that inflates it all succeeds, and only a bound
 * stops it early.
 */
function zlibBomb(zeros) {
  const adler = Buffer.alloc(4);
  adler.writeUInt32BE((((bombZeros(zeros) % 65521) << 16) | 1) >>> 0);
  return Buffer.concat([Buffer.from([0x78, 0xda]), deflateBomb(zeros), adler]);
}

/** gzip framing (RFC 1952) around a bomb of `head` then `zeros` zero bytes, with its true CRC-32 and size. */
function gzipBomb(zeros, head) {
  let crc = crc32(head);
  for (let n = 0; n < zeros; n += MiB) crc = crc32(ZERO_BYTES, crc);
  const trailer = Buffer.alloc(8);
  trailer.writeUInt32LE(crc >>> 0, 0);
  trailer.writeUInt32LE((head.length + bombZeros(zeros)) % 2 ** 32, 4);
  return Buffer.concat([Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]), deflateBomb(zeros, head), trailer]);
}

// ---------------------------------------------------------------------------------------------------------------
// PNG and JPEG
// ---------------------------------------------------------------------------------------------------------------

/** One PNG chunk: length, type, data, CRC over type and data. */
export function pngChunk(type, data) {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, "latin1");
  data.copy(out, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)) >>> 0, 8 + data.length);
  return out;
}

/** A well-formed 8-bit greyscale PNG header for width x height, with `idat` as its compressed data (CRCs right). */
export function pngWith(width, height, idat) {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth; colour type 0 (grey), no interlace
  return Buffer.concat([
    Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]),
    pngChunk("IHDR", ihdr),
    pngChunk("IDAT", idat),
    pngChunk("IEND", Buffer.alloc(0)),
  ]);
}

/** 46340 x 46340 grey (just under 2^31 pixels), with only one row of data: the size alone is the attack. */
export function pngHugeDimensions(side = 46340) {
  return pngWith(side, side, deflateSync(Buffer.alloc(side + 1)));
}

/** A 1x1 grey PNG (2 bytes of image data) whose IDAT inflates to `bytes` (default 3 GiB), a valid zlib stream. */
export function pngInflateBomb(bytes = 3 * 2 ** 30) {
  return pngWith(1, 1, zlibBomb(bytes));
}

/**
 * A baseline JPEG whose frame header (SOF0) declares width x height (default 65,000 x 65,000): a minimal valid
 * 8x8 grey JPEG with the size fields changed. Built by hand: SOI, one quantisation table, SOF0, the two Huffman
 * tables of a DC-only image, a scan of one all-zero block, EOI.
 */
export function jpegHugeDimensions(width = 65000, height = 65000) {
  const seg = (marker, body) =>
    Buffer.concat([Buffer.from([0xff, marker, (body.length + 2) >> 8, (body.length + 2) & 0xff]), body]);
  const dqt = seg(0xdb, Buffer.concat([Buffer.from([0]), Buffer.alloc(64, 1)]));
  const sof = seg(0xc0, Buffer.from([8, height >> 8, height & 0xff, width >> 8, width & 0xff, 1, 1, 0x11, 0]));
  // DC table 0: one code of length 1 for category 0; AC table 0: one code of length 1 for EOB (0x00).
  const counts = Buffer.alloc(16);
  counts[0] = 1;
  const dht = seg(
    0xc4,
    Buffer.concat([Buffer.from([0x00]), counts, Buffer.from([0]), Buffer.from([0x10]), counts, Buffer.from([0])]),
  );
  const sos = seg(0xda, Buffer.from([1, 1, 0x00, 0, 63, 0]));
  return Buffer.concat([Buffer.from([0xff, 0xd8]), dqt, sof, dht, sos, Buffer.from([0x00]), Buffer.from([0xff, 0xd9])]);
}

// ---------------------------------------------------------------------------------------------------------------
// idx
// ---------------------------------------------------------------------------------------------------------------

/** An idx header (unsigned bytes) for the given dimensions. */
export function idxHeader(dims) {
  const b = Buffer.alloc(4 + 4 * dims.length);
  b[2] = 0x08;
  b[3] = dims.length;
  dims.forEach((d, i) => b.writeUInt32BE(d, 4 + 4 * i));
  return b;
}

/** A gzipped idx whose header says one 28x28 image but whose data inflates to `bytes` more (default 5 GiB). */
export function idxGzipBomb(bytes = 5 * 2 ** 30) {
  return gzipBomb(bytes, idxHeader([1, 28, 28]));
}

/** An idx of `n` images of height 0 (no data at all). */
export const idxHeightZero = (n = 10, width = 28) => idxHeader([n, 0, width]);

// ---------------------------------------------------------------------------------------------------------------
// Pickles and torch.save archives
// ---------------------------------------------------------------------------------------------------------------

/** Protocol-2 pickle opcodes, enough for state dicts. */
export const op = {
  proto: Buffer.from([0x80, 2]),
  stop: Buffer.from("."),
  mark: Buffer.from("("),
  tuple: Buffer.from("t"),
  emptyTuple: Buffer.from(")"),
  emptyDict: Buffer.from("}"),
  setitems: Buffer.from("u"),
  reduce: Buffer.from("R"),
  binpersid: Buffer.from("Q"),
  pop: Buffer.from("0"),
  newFalse: Buffer.from([0x89]),
  global: (module, name) => Buffer.from(`c${module}\n${name}\n`, "latin1"),
  str(s) {
    const b = Buffer.from(s, "utf8"); // BINUNICODE: protocol 2, as torch.save writes
    const h = Buffer.alloc(5);
    h[0] = 0x58;
    h.writeUInt32LE(b.length, 1);
    return Buffer.concat([h, b]);
  },
  int(n) {
    const v = BigInt(n);
    if (v >= -(2n ** 31n) && v < 2n ** 31n) {
      const b = Buffer.alloc(5);
      b[0] = 0x4a;
      b.writeInt32LE(Number(v), 1);
      return b;
    }
    const bytes = [];
    for (let x = v; bytes.length === 0 || x !== 0n || (bytes[bytes.length - 1] & 0x80) !== 0; x >>= 8n)
      bytes.push(Number(x & 0xffn));
    return Buffer.from([0x8a, bytes.length, ...bytes]);
  },
  put: (i) => {
    const b = Buffer.alloc(5);
    b[0] = 0x72;
    b.writeUInt32LE(i, 1);
    return b;
  },
  get: (i) => {
    const b = Buffer.alloc(5);
    b[0] = 0x6a;
    b.writeUInt32LE(i, 1);
    return b;
  },
};

/** Pickle ops that build a float32 tensor viewing storage `key` (of `numel` values) with the given layout. */
export function tensorOps(key, numel, shape, stride, offset = 0) {
  const ints = (xs) => Buffer.concat([op.mark, ...xs.map(op.int), op.tuple]);
  return Buffer.concat([
    op.global("torch._utils", "_rebuild_tensor_v2"),
    op.mark,
    op.mark,
    op.str("storage"),
    op.global("torch", "FloatStorage"),
    op.str(key),
    op.str("cpu"),
    op.int(numel),
    op.tuple,
    op.binpersid,
    op.int(offset),
    ints(shape),
    ints(stride),
    op.newFalse,
    op.global("collections", "OrderedDict"),
    op.emptyTuple,
    op.reduce,
    op.tuple,
    op.reduce,
  ]);
}

/** A pickle of a dict {key: value-ops, ...}. */
export const dictOps = (entries) =>
  Buffer.concat([op.emptyDict, op.mark, ...entries.flatMap(([k, v]) => [op.str(k), v]), op.setitems]);

/**
 * A zip archive of stored entries (what torch.save writes), CRCs right: `files` are [name, data] pairs, optionally
 * with a third element overriding the entry's { method, flags, crc } (the zip reader's tests); `comment` follows the
 * end record.
 */
export function zipStored(files, comment = "") {
  const locals = [];
  const centrals = [];
  let offset = 0;
  for (const [name, data, over = {}] of files) {
    const n = Buffer.from(name, "utf8");
    // The central record holds the local header's fields from "version needed" on, 2 bytes further along.
    const fields = (b, at) => {
      b.writeUInt16LE(20, at + 4);
      b.writeUInt16LE(over.flags ?? 0, at + 6);
      b.writeUInt16LE(over.method ?? 0, at + 8);
      b.writeUInt32LE(over.crc ?? crc32(data) >>> 0, at + 14);
      b.writeUInt32LE(data.length, at + 18);
      b.writeUInt32LE(data.length, at + 22);
      b.writeUInt16LE(n.length, at + 26);
      return b;
    };
    const local = fields(Buffer.alloc(30), 0);
    local.writeUInt32LE(0x04034b50, 0);
    locals.push(local, n, data);
    const central = fields(Buffer.alloc(46), 2);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(20, 4);
    central.writeUInt32LE(offset, 42);
    centrals.push(central, n);
    offset += 30 + n.length + data.length;
  }
  const cd = Buffer.concat(centrals);
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0);
  eocd.writeUInt16LE(files.length, 8);
  eocd.writeUInt16LE(files.length, 10);
  eocd.writeUInt32LE(cd.length, 12);
  eocd.writeUInt32LE(offset, 16);
  eocd.writeUInt16LE(Buffer.byteLength(comment), 20);
  return Buffer.concat([...locals, cd, eocd, Buffer.from(comment)]);
}

/** A torch.save-style archive: data.pkl and float32 storages by key. */
export function torchArchive(pickle, storages = {}) {
  return zipStored([
    ["archive/data.pkl", pickle],
    ["archive/version", Buffer.from("3\n")],
    ...Object.entries(storages).map(([k, v]) => [`archive/data/${k}`, Buffer.from(new Float32Array(v).buffer)]),
  ]);
}

/** A .pt holding {name: tensor} for one tensor viewing a storage of `numel` values (all 1) with the given layout. */
export function ptWithTensor(shape, stride, numel = 1, offset = 0) {
  const pkl = Buffer.concat([op.proto, dictOps([["weight", tensorOps("0", numel, shape, stride, offset)]]), op.stop]);
  return torchArchive(pkl, { 0: Array(numel).fill(1) });
}

/**
 * The DAG bomb (1.9 KB): dict level 0 holds a tensor; dict level i holds {"a": level i-1, "b": level i-1} through the
 * memo, so the top dict has 2^depth paths to the tensor while the pickle has 2 * depth + 1 entries.
 */
export function ptDagBomb(depth = 40) {
  const parts = [op.proto, dictOps([["w", tensorOps("0", 1, [1], [1])]]), op.put(0)];
  for (let i = 1; i <= depth; i++)
    parts.push(
      dictOps([
        ["a", op.get(i - 1)],
        ["b", op.get(i - 1)],
      ]),
      op.put(i),
    );
  parts.push(op.get(depth), op.stop);
  return torchArchive(Buffer.concat(parts), { 0: [1] });
}

// ---------------------------------------------------------------------------------------------------------------
// safetensors
// ---------------------------------------------------------------------------------------------------------------

/** A safetensors file from a header object (written as JSON verbatim) and a data section. */
export function safetensorsRaw(headerJson, data = Buffer.alloc(0)) {
  const json = Buffer.from(headerJson, "utf8");
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([len, json, data]);
}

/** A tensor whose shape is [0, 1e300]: zero bytes, an element count no integer type holds. */
export const safetensorsHugeZeroShape = () =>
  safetensorsRaw('{"x":{"dtype":"F32","shape":[0,1e300],"data_offsets":[0,0]}}');

/** `count` empty tensors (no data): a header of ~50 bytes per tensor, for listings that must not recurse per row. */
export function safetensorsManyTensors(count = 200_000) {
  const rows = [];
  for (let i = 0; i < count; i++) rows.push(`"t${i}":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}`);
  return safetensorsRaw(`{${rows.join(",")}}`);
}

/** A cao2 DiT description (the `cao2` metadata) with `overrides` in its config, and one small tensor. */
export function safetensorsDiTMeta(overrides) {
  const config = {
    inputSize: 8,
    inChannels: 4,
    numClasses: 10,
    learnSigma: true,
    classDropoutProb: 0.1,
    depth: 2,
    hiddenSize: 64,
    numHeads: 4,
    patchSize: 2,
    mlpRatio: 4,
    ...overrides,
  };
  const cao2 = JSON.stringify({ kind: "dit", config, classes: ["a"] });
  return safetensorsRaw(
    JSON.stringify({ __metadata__: { cao2 }, pos_embed: { dtype: "F32", shape: [1], data_offsets: [0, 4] } }),
    Buffer.alloc(4),
  );
}

/** cao2 metadata that is not JSON. */
export const safetensorsMetaNotJson = () =>
  safetensorsRaw(
    JSON.stringify({ __metadata__: { cao2: "{kind: dit" }, w: { dtype: "F32", shape: [1], data_offsets: [0, 4] } }),
    Buffer.alloc(4),
  );

// ---------------------------------------------------------------------------------------------------------------
// ImageFolder traps (need a file system)
// ---------------------------------------------------------------------------------------------------------------

/**
 * An ImageFolder root whose class 'a' holds one good PNG and one trap: "loop" (a symlink to itself, ELOOP),
 * "cycle" (a symlink to the root: a folder cycle), "fifo" (a named pipe called x.png: opening it blocks) or "zero"
 * (a symlink x.png -> /dev/zero: endless bytes).
 */
export function imageFolderTrap(root, kind) {
  const cls = join(root, "a");
  mkdirSync(cls, { recursive: true });
  writeFileSync(join(cls, "0.png"), pngWith(1, 1, deflateSync(Buffer.from([0, 128]))));
  if (kind === "loop") symlinkSync("loop.png", join(cls, "loop.png"));
  else if (kind === "cycle") symlinkSync(root, join(cls, "cycle"));
  else if (kind === "fifo")
    execFileSync("mkfifo", [join(cls, "x.png")]); // Node has no mkfifo
  else if (kind === "zero") symlinkSync("/dev/zero", join(cls, "x.png"));
  else throw new Error(`unknown trap ${kind}`);
  return root;
}

// ---------------------------------------------------------------------------------------------------------------

/** Every hostile file by name (bomb sizes as reported, or `bombBytes`). */
export function allFiles(bombBytes) {
  return {
    "dag-40.pt": ptDagBomb(40),
    "stride0-2^40x2^40.pt": ptWithTensor([2 ** 40, 2 ** 40], [0, 0]),
    "stride0-4TiB.pt": ptWithTensor([2 ** 20, 2 ** 20], [0, 0]),
    "shape-0x1e300.safetensors": safetensorsHugeZeroShape(),
    "200000-tensors.safetensors": safetensorsManyTensors(200_000),
    "dit-depth-1e6.safetensors": safetensorsDiTMeta({ depth: 1_000_000 }),
    "dit-hidden-1e9.safetensors": safetensorsDiTMeta({ depth: 1, hiddenSize: 1_000_000_000, numHeads: 1 }),
    "meta-not-json.safetensors": safetensorsMetaNotJson(),
    "46340x46340.png": pngHugeDimensions(),
    "1x1-idat-bomb.png": pngInflateBomb(bombBytes ?? 3 * 2 ** 30),
    "65000x65000.jpg": jpegHugeDimensions(),
    "idx-bomb.gz": idxGzipBomb(bombBytes ?? 5 * 2 ** 30),
    "idx-height-0": idxHeightZero(),
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2);
  const out = args.find((a) => !a.startsWith("--"));
  const bi = args.indexOf("--bomb-bytes");
  if (!out) {
    process.stderr.write("usage: node tools/hostile/make.mjs <out-folder> [--bomb-bytes N]\n");
    process.exit(2);
  }
  mkdirSync(out, { recursive: true });
  for (const [name, bytes] of Object.entries(allFiles(bi >= 0 ? Number(args[bi + 1]) : undefined))) {
    writeFileSync(join(out, name), bytes);
    process.stdout.write(`${name}\t${bytes.length} bytes\n`);
  }
}
