// safetensors: an 8-byte little-endian header length, a JSON header {name: {dtype, shape, data_offsets}} (plus an
// optional "__metadata__" of strings), then the raw little-endian tensor bytes. Reading validates the header strictly
// and reads each tensor's bytes on demand, so a multi-gigabyte file is never copied whole into memory.
import { closeSync } from "node:fs";
import { InputError } from "../errors.js";
import { writeFileAtomic } from "../util/atomic.js";
import { type DType, ITEM_SIZE, type Tensor } from "../torch/index.js";
import { openRegular, readAt } from "./files.js";
import { checkedNumel } from "./limits.js";
import { type ByteSource, readInto, readTensor } from "./tensor-read.js";

/** safetensors dtype names and ours. I16/I8 load as int16/int8; BOOL as bool. */
const FROM_ST: Record<string, DType> = {
  F64: "float64",
  F32: "float32",
  F16: "float16",
  BF16: "bfloat16",
  I64: "int64",
  I32: "int32",
  I16: "int16",
  I8: "int8",
  U8: "uint8",
  BOOL: "bool",
};
const TO_ST = Object.fromEntries(Object.entries(FROM_ST).map(([k, v]) => [v, k])) as Record<DType, string>;

export interface TensorInfo {
  name: string;
  dtype: DType;
  shape: number[];
  /** Element count (exact: the header is refused when it is not below 2^53). */
  numel: number;
  /** Absolute byte range in the file. */
  begin: number;
  end: number;
}

export class SafetensorsError extends InputError {
  constructor(file: string, msg: string) {
    super(`${file}: ${msg}`);
  }
}

/** Upper bound on the JSON header, as the reference implementation (100 MB). */
const MAX_HEADER = 100_000_000;
/** More dimensions than any real tensor has (libtorch's CUDA kernels stop at 25). */
const MAX_DIMS = 64;

/** A JSON value for messages, shortened when long. */
const brief = (v: unknown) => {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
};

/** An open safetensors file: metadata up front, tensors read one at a time. Close it when done. */
export class SafetensorsFile {
  readonly path: string;
  readonly tensors: Map<string, TensorInfo>;
  readonly metadata: Record<string, string>;
  /** File size in bytes. */
  readonly size: number;
  private fd: number | null;

  private constructor(
    path: string,
    fd: number,
    size: number,
    tensors: Map<string, TensorInfo>,
    metadata: Record<string, string>,
  ) {
    this.path = path;
    this.fd = fd;
    this.size = size;
    this.tensors = tensors;
    this.metadata = metadata;
  }

  static open(path: string): SafetensorsFile {
    const { fd, size } = openRegular(path);
    try {
      const { tensors, metadata } = parseHeader(path, fd, size);
      return new SafetensorsFile(path, fd, size, tensors, metadata);
    } catch (e) {
      closeSync(fd);
      throw e;
    }
  }

  keys(): string[] {
    return [...this.tensors.keys()];
  }

  /** The raw bytes of one tensor. */
  readBytes(name: string): Uint8Array {
    const info = this.info(name);
    const out = new Uint8Array(info.end - info.begin);
    readFully(this.path, this.requireFd(), out, info.begin);
    return out;
  }

  /** One tensor, read from disk now (CPU). */
  get(name: string): Tensor {
    const info = this.info(name);
    return readTensor(this.source(info), info.dtype, info.shape);
  }

  /** Copies one tensor into an existing tensor of the same shape (copy_ converts dtype and device). */
  getInto(name: string, dst: Tensor): void {
    const info = this.info(name);
    if (dst.shape.join() !== info.shape.join())
      throw new SafetensorsError(
        this.path,
        `tensor '${name}' has shape [${info.shape}], the destination [${dst.shape}]`,
      );
    readInto(dst, this.source(info), info.dtype, info.shape);
  }

  info(name: string): TensorInfo {
    const info = this.tensors.get(name);
    if (!info) throw new SafetensorsError(this.path, `no tensor named '${name}'`);
    return info;
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }

  private source(info: TensorInfo): ByteSource {
    this.requireFd();
    return { path: this.path, fileSize: this.size, offset: info.begin };
  }

  private requireFd(): number {
    if (this.fd === null) throw new SafetensorsError(this.path, "file already closed");
    return this.fd;
  }
}

function readFully(path: string, fd: number, buf: Uint8Array, position: number): void {
  const done = readAt(fd, buf, position);
  if (done < buf.length) throw new SafetensorsError(path, `unexpected end of file at byte ${position + done}`);
}

/** The header's JSON object (the 8-byte length, then that many bytes of JSON). */
function readHeaderJson(
  path: string,
  fd: number,
  size: number,
): { header: Record<string, unknown>; dataStart: number } {
  if (size < 8) throw new SafetensorsError(path, `file is ${size} bytes, too short for a safetensors header`);
  const lenBuf = Buffer.alloc(8);
  readFully(path, fd, lenBuf, 0);
  const headerLen = Number(lenBuf.readBigUInt64LE(0));
  if (headerLen > MAX_HEADER) throw new SafetensorsError(path, `header length ${headerLen} exceeds the 100 MB limit`);
  if (8 + headerLen > size) {
    throw new SafetensorsError(path, `header length ${headerLen} runs past the end of the file (${size} bytes)`);
  }
  const headerBuf = Buffer.alloc(headerLen);
  readFully(path, fd, headerBuf, 8);
  if (headerBuf[0] !== 0x7b)
    throw new SafetensorsError(path, "not a safetensors file (the header does not start with '{')");
  let header: unknown;
  try {
    header = JSON.parse(headerBuf.toString("utf8"));
  } catch (e) {
    throw new SafetensorsError(path, `header is not valid JSON (${(e as Error).message})`);
  }
  if (typeof header !== "object" || header === null || Array.isArray(header))
    throw new SafetensorsError(path, "header is not a JSON object");
  return { header: header as Record<string, unknown>, dataStart: 8 + headerLen };
}

/** One tensor's header entry, checked: a known dtype, a shape, and offsets inside the data section that fit both. */
function tensorEntry(path: string, name: string, raw: unknown, dataStart: number, dataLen: number): TensorInfo {
  const e = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
  if (typeof e !== "object" || e === null) throw new SafetensorsError(path, `tensor '${name}': entry is not an object`);
  if (typeof e.dtype !== "string" || !Object.hasOwn(FROM_ST, e.dtype)) {
    throw new SafetensorsError(
      path,
      `tensor '${name}': unknown dtype ${brief(e.dtype)} (known: ${Object.keys(FROM_ST).join(", ")})`,
    );
  }
  if (
    !Array.isArray(e.shape) ||
    e.shape.length > MAX_DIMS ||
    !e.shape.every((d) => Number.isSafeInteger(d) && d >= 0)
  ) {
    throw new SafetensorsError(
      path,
      `tensor '${name}': shape ${brief(e.shape)} is not a list of at most ${MAX_DIMS} non-negative integers below 2^53`,
    );
  }
  const count = checkedNumel(e.shape);
  if ("problem" in count)
    throw new SafetensorsError(path, `tensor '${name}': shape ${brief(e.shape)}: ${count.problem}`);
  const off = e.data_offsets;
  if (
    !Array.isArray(off) ||
    off.length !== 2 ||
    !off.every((d) => Number.isSafeInteger(d) && d >= 0) ||
    off[0] > off[1]
  ) {
    throw new SafetensorsError(
      path,
      `tensor '${name}': data_offsets ${brief(off)} must be [begin, end] with begin <= end`,
    );
  }
  if (off[1] > dataLen) {
    throw new SafetensorsError(
      path,
      `tensor '${name}': data_offsets [${off}] out of bounds (data section is ${dataLen} bytes)`,
    );
  }
  const dtype = FROM_ST[e.dtype];
  const shape = e.shape as number[];
  const expected = BigInt(count.numel) * BigInt(ITEM_SIZE[dtype]);
  if (BigInt(off[1] - off[0]) !== expected) {
    throw new SafetensorsError(
      path,
      `tensor '${name}': ${off[1] - off[0]} bytes stored but ${e.dtype} [${shape}] needs ${expected}`,
    );
  }
  return { name, dtype, shape, numel: count.numel, begin: dataStart + off[0], end: dataStart + off[1] };
}

function parseHeader(
  path: string,
  fd: number,
  size: number,
): { tensors: Map<string, TensorInfo>; metadata: Record<string, string> } {
  const { header, dataStart } = readHeaderJson(path, fd, size);
  const tensors = new Map<string, TensorInfo>();
  let metadata: Record<string, string> = {};
  for (const [name, raw] of Object.entries(header)) {
    if (name === "__metadata__") {
      if (
        typeof raw !== "object" ||
        raw === null ||
        Array.isArray(raw) ||
        !Object.values(raw).every((v) => typeof v === "string")
      ) {
        throw new SafetensorsError(path, "__metadata__ must map names to strings");
      }
      metadata = raw as Record<string, string>;
      continue;
    }
    tensors.set(name, tensorEntry(path, name, raw, dataStart, size - dataStart));
  }
  const sorted = [...tensors.values()].filter((t) => t.end > t.begin).sort((a, b) => a.begin - b.begin);
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i].begin < sorted[i - 1].end) {
      throw new SafetensorsError(
        path,
        `tensors '${sorted[i - 1].name}' and '${sorted[i].name}' have overlapping byte ranges`,
      );
    }
  }
  return { tensors, metadata };
}

/** Reads every tensor of a safetensors file into memory. */
export function loadSafetensors(path: string): Map<string, Tensor> {
  const f = SafetensorsFile.open(path);
  try {
    return new Map(f.keys().map((k) => [k, f.get(k)]));
  } finally {
    f.close();
  }
}

/**
 * Writes tensors (sorted by name, as the reference writer) atomically: a temporary file in the same folder is
 * written, flushed and renamed, so a crash or a full disk never leaves a half-written file under the final name.
 */
export function saveSafetensors(
  path: string,
  tensors: Map<string, Tensor> | Record<string, Tensor>,
  metadata?: Record<string, string>,
): void {
  const entries = [...(tensors instanceof Map ? tensors.entries() : Object.entries(tensors))].sort(([a], [b]) =>
    a < b ? -1 : a > b ? 1 : 0,
  );
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length) header.__metadata__ = metadata;
  let offset = 0;
  for (const [name, t] of entries) {
    const n = t.numel * ITEM_SIZE[t.dtype];
    header[name] = { dtype: TO_ST[t.dtype], shape: t.shape, data_offsets: [offset, offset + n] };
    offset += n;
  }
  let json = Buffer.from(JSON.stringify(header), "utf8");
  // Pad the header with spaces to a multiple of 8 so the data section is aligned.
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded !== json.length) json = Buffer.concat([json, Buffer.alloc(padded - json.length, 0x20)]);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  writeFileAtomic(
    path,
    (function* () {
      yield len;
      yield json;
      for (const [, t] of entries) yield t.toBytes();
    })(),
  );
}
