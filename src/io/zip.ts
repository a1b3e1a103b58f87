// A read-only zip reader for PyTorch's archive checkpoints: the central directory is parsed up front (ZIP64 included,
// for archives and entries over 4 GB); entry data is read on demand from the file descriptor, so a multi-gigabyte
// archive is never copied whole into memory. Stored entries (what torch.save writes) report where their bytes lie in
// the file, so that tensors can be mapped from there; deflated ones (an archive re-zipped by another tool) are
// inflated whole with node:zlib when read.
import { closeSync } from "node:fs";
import { crc32, inflateRawSync } from "node:zlib";
import { InputError } from "../errors.js";
import { openRegular, readAt } from "./files.js";

export class ZipError extends InputError {
  constructor(file: string, msg: string) {
    super(`${file}: ${msg}`);
  }
}

export interface ZipEntry {
  name: string;
  /** 0 = stored, 8 = deflated. */
  method: number;
  crc32: number;
  compressedSize: number;
  size: number;
  localHeaderOffset: number;
}

const SIG_LOCAL = 0x04034b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_EOCD = 0x06054b50;
const SIG_ZIP64_EOCD = 0x06064b50;
const SIG_ZIP64_LOCATOR = 0x07064b50;
const U32_MAX = 0xffffffff;
const EOCD_SIZE = 22;
const MAX_COMMENT = 0xffff;
/** Deflated entries are inflated in memory: up to 2 GiB (torch.save stores entries uncompressed). */
const MAX_INFLATE = 2 ** 31;

export class ZipReader {
  readonly path: string;
  readonly size: number;
  readonly entries: Map<string, ZipEntry>;
  private fd: number | null;
  private readonly dataStarts = new Map<string, number>();
  /** The last inflated entry, so that tensors sharing a deflated storage inflate it once. */
  private inflated: { name: string; data: Uint8Array } | null = null;

  private constructor(path: string, fd: number, size: number, entries: Map<string, ZipEntry>) {
    this.path = path;
    this.fd = fd;
    this.size = size;
    this.entries = entries;
  }

  static open(path: string): ZipReader {
    const { fd, size } = openRegular(path);
    try {
      return new ZipReader(path, fd, size, readCentralDirectory(path, fd, size));
    } catch (e) {
      closeSync(fd);
      throw e;
    }
  }

  entry(name: string): ZipEntry {
    const e = this.entries.get(name);
    if (!e) throw new ZipError(this.path, `archive entry '${name}' is missing`);
    return e;
  }

  /** A whole entry, inflated if needed, with its CRC-32 checked (a recorded CRC of 0 means none was computed). */
  read(name: string): Uint8Array {
    const e = this.entry(name);
    const out = e.method === 0 ? this.readRaw(e, 0, e.size) : this.inflate(e);
    if (e.crc32 !== 0 && crc32(out) >>> 0 !== e.crc32)
      throw new ZipError(this.path, `archive entry '${name}' is corrupted (CRC-32 mismatch)`);
    return out;
  }

  /** Checks an entry's CRC-32 by streaming it through a small buffer (entries with a recorded CRC of 0 pass). */
  verify(name: string): void {
    const e = this.entry(name);
    if (e.crc32 === 0) return;
    if (e.method !== 0) return void this.read(name);
    const buf = new Uint8Array(Math.min(e.size, 4 << 20));
    let crc = 0;
    for (let at = 0; at < e.size; at += buf.length)
      crc = crc32(this.readRaw(e, at, Math.min(buf.length, e.size - at), buf), crc);
    if (crc >>> 0 !== e.crc32) throw new ZipError(this.path, `archive entry '${name}' is corrupted (CRC-32 mismatch)`);
  }

  /** Where a stored entry's bytes start in the file. */
  dataOffset(name: string): number {
    const e = this.entry(name);
    if (e.method !== 0) throw new ZipError(this.path, `archive entry '${name}' is compressed and has no byte offset`);
    return this.dataStart(e);
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
    this.inflated = null;
  }

  /** Where an entry's data starts: after its local header, whose name and extra field lengths may differ from the central ones. */
  private dataStart(e: ZipEntry): number {
    let start = this.dataStarts.get(e.name);
    if (start === undefined) {
      const h = Buffer.alloc(30);
      this.pread(h, e.localHeaderOffset, `local header of '${e.name}'`);
      if (h.readUInt32LE(0) !== SIG_LOCAL)
        throw new ZipError(this.path, `archive entry '${e.name}': bad local header signature`);
      const nameLen = h.readUInt16LE(26);
      const name = Buffer.alloc(nameLen);
      this.pread(name, e.localHeaderOffset + 30, `local header of '${e.name}'`);
      if (name.toString("utf8") !== e.name) {
        throw new ZipError(this.path, `archive entry '${e.name}': local header names '${name.toString("utf8")}'`);
      }
      start = e.localHeaderOffset + 30 + nameLen + h.readUInt16LE(28);
      if (start + e.compressedSize > this.size) {
        throw new ZipError(this.path, `archive entry '${e.name}' runs past the end of the file (truncated download?)`);
      }
      this.dataStarts.set(e.name, start);
    }
    return start;
  }

  private readRaw(e: ZipEntry, start: number, length: number, into?: Uint8Array): Uint8Array {
    const out = into ?? new Uint8Array(length);
    this.pread(out.subarray(0, length), this.dataStart(e) + start, `archive entry '${e.name}'`);
    return out.subarray(0, length);
  }

  private inflate(e: ZipEntry): Uint8Array {
    if (this.inflated?.name === e.name) return this.inflated.data;
    if (e.method !== 8)
      throw new ZipError(
        this.path,
        `archive entry '${e.name}' uses compression method ${e.method} (only stored and deflated are supported)`,
      );
    if (e.size > MAX_INFLATE)
      throw new ZipError(
        this.path,
        `archive entry '${e.name}' is compressed and too large to inflate (${e.size} bytes); store it uncompressed`,
      );
    const raw = this.readRaw(e, 0, e.compressedSize);
    let out: Uint8Array;
    try {
      out = inflateRawSync(raw, { maxOutputLength: Math.max(e.size, 1) });
    } catch (err) {
      throw new ZipError(this.path, `archive entry '${e.name}' cannot be inflated (${(err as Error).message})`);
    }
    if (out.length !== e.size)
      throw new ZipError(this.path, `archive entry '${e.name}' inflates to ${out.length} bytes, expected ${e.size}`);
    this.inflated = { name: e.name, data: out };
    return out;
  }

  private pread(buf: Uint8Array, position: number, what: string): void {
    if (this.fd === null) throw new ZipError(this.path, "archive already closed");
    if (readAt(this.fd, buf, position) < buf.length)
      throw new ZipError(this.path, `${what} runs past the end of the file (truncated download?)`);
  }
}

function readBytes(path: string, fd: number, position: number, length: number): Buffer {
  const buf = Buffer.alloc(length);
  if (readAt(fd, buf, position) < length) throw new ZipError(path, "unexpected end of file");
  return buf;
}

const u64 = (b: Buffer, at: number, path: string) => {
  const v = b.readBigUInt64LE(at);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new ZipError(path, `64-bit zip field ${v} is too large`);
  return Number(v);
};

function readCentralDirectory(path: string, fd: number, size: number): Map<string, ZipEntry> {
  // The end-of-central-directory record sits at the end, before a comment of up to 64 KB.
  const tailLen = Math.min(size, EOCD_SIZE + MAX_COMMENT);
  if (size < EOCD_SIZE) throw new ZipError(path, `file is ${size} bytes, too short for a zip archive (truncated?)`);
  const tail = readBytes(path, fd, size - tailLen, tailLen);
  let eocd = -1;
  for (let i = tailLen - EOCD_SIZE; i >= 0; i--) {
    if (tail.readUInt32LE(i) === SIG_EOCD && i + EOCD_SIZE + tail.readUInt16LE(i + 20) === tailLen) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0)
    throw new ZipError(path, "no zip end-of-central-directory record (the file is truncated or not a zip archive)");
  let count = tail.readUInt16LE(eocd + 10);
  let cdSize = tail.readUInt32LE(eocd + 12);
  let cdOffset = tail.readUInt32LE(eocd + 16);
  const eocdPos = size - tailLen + eocd;
  // ZIP64: a locator just before the record points at a 64-bit version of it.
  if (eocdPos >= 20) {
    const loc = readBytes(path, fd, eocdPos - 20, 20);
    if (loc.readUInt32LE(0) === SIG_ZIP64_LOCATOR) {
      const recPos = u64(loc, 8, path);
      if (recPos + 56 > eocdPos) throw new ZipError(path, "ZIP64 end-of-central-directory record out of bounds");
      const rec = readBytes(path, fd, recPos, 56);
      if (rec.readUInt32LE(0) !== SIG_ZIP64_EOCD)
        throw new ZipError(path, "bad ZIP64 end-of-central-directory signature");
      count = u64(rec, 32, path);
      cdSize = u64(rec, 40, path);
      cdOffset = u64(rec, 48, path);
    }
  }
  if (cdOffset + cdSize > eocdPos)
    throw new ZipError(path, "central directory out of bounds (the file is truncated or corrupted)");
  // Each central record takes at least 46 bytes, which bounds the count before anything is allocated per entry.
  if (count * 46 > cdSize)
    throw new ZipError(path, `central directory of ${cdSize} bytes cannot hold ${count} entries`);
  const cd = readBytes(path, fd, cdOffset, cdSize);
  const entries = new Map<string, ZipEntry>();
  let p = 0;
  for (let i = 0; i < count; i++) {
    if (p + 46 > cd.length || cd.readUInt32LE(p) !== SIG_CENTRAL)
      throw new ZipError(path, `central directory entry ${i} is corrupted`);
    const flags = cd.readUInt16LE(p + 8);
    const method = cd.readUInt16LE(p + 10);
    const crc = cd.readUInt32LE(p + 16);
    let compressedSize = cd.readUInt32LE(p + 20);
    let usize = cd.readUInt32LE(p + 24);
    const nameLen = cd.readUInt16LE(p + 28);
    const extraLen = cd.readUInt16LE(p + 30);
    const commentLen = cd.readUInt16LE(p + 32);
    let offset = cd.readUInt32LE(p + 42);
    const end = p + 46 + nameLen + extraLen + commentLen;
    if (end > cd.length) throw new ZipError(path, `central directory entry ${i} runs past the directory`);
    const name = cd.toString("utf8", p + 46, p + 46 + nameLen);
    // ZIP64 extended information: 64-bit values for exactly the fields saturated at 0xFFFFFFFF, in this order.
    let x = p + 46 + nameLen;
    const xEnd = x + extraLen;
    while (x + 4 <= xEnd) {
      const id = cd.readUInt16LE(x);
      const len = cd.readUInt16LE(x + 2);
      if (x + 4 + len > xEnd) throw new ZipError(path, `archive entry '${name}': extra field runs past its record`);
      if (id === 0x0001) {
        let q = x + 4;
        const take = () => {
          if (q + 8 > x + 4 + len) throw new ZipError(path, `archive entry '${name}': ZIP64 extra field too short`);
          const v = u64(cd, q, path);
          q += 8;
          return v;
        };
        if (usize === U32_MAX) usize = take();
        if (compressedSize === U32_MAX) compressedSize = take();
        if (offset === U32_MAX) offset = take();
      }
      x += 4 + len;
    }
    if (flags & 1) throw new ZipError(path, `archive entry '${name}' is encrypted`);
    if (method !== 0 && method !== 8)
      throw new ZipError(
        path,
        `archive entry '${name}' uses compression method ${method} (only stored and deflated are supported)`,
      );
    if (method === 0 && compressedSize !== usize)
      throw new ZipError(
        path,
        `archive entry '${name}': stored entry with different compressed and uncompressed sizes`,
      );
    if (offset + 30 + compressedSize > cdOffset)
      throw new ZipError(path, `archive entry '${name}' lies outside the data area (corrupted archive)`);
    if (entries.has(name)) throw new ZipError(path, `archive entry '${name}' appears twice`);
    entries.set(name, { name, method, crc32: crc, compressedSize, size: usize, localHeaderOffset: offset });
    p = end;
  }
  return entries;
}
