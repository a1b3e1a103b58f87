// The zip reader on small hand-built archives (ZIP64 and deflated archives from Python are in checkpoint.test.ts).
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { crc32 } from "node:zlib";
import { ZipError, ZipReader } from "../../src/io/zip.js";

const dir = mkdtempSync(join(tmpdir(), "cao2-zip-"));
after(() => rmSync(dir, { recursive: true, force: true }));

interface Entry {
  name: string;
  data: Buffer;
  method?: number;
  flags?: number;
  crc?: number;
}

/** A minimal stored-entry zip writer: local headers, central directory, end record with an optional comment. */
function writeZip(file: string, entries: Entry[], comment = ""): string {
  const parts: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const e of entries) {
    const name = Buffer.from(e.name);
    const crc = e.crc ?? crc32(e.data);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(e.flags ?? 0, 6);
    local.writeUInt16LE(e.method ?? 0, 8);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(e.data.length, 18);
    local.writeUInt32LE(e.data.length, 22);
    local.writeUInt16LE(name.length, 26);
    const c = Buffer.alloc(46);
    c.writeUInt32LE(0x02014b50, 0);
    c.writeUInt16LE(e.flags ?? 0, 8);
    c.writeUInt16LE(e.method ?? 0, 10);
    c.writeUInt32LE(crc, 16);
    c.writeUInt32LE(e.data.length, 20);
    c.writeUInt32LE(e.data.length, 24);
    c.writeUInt16LE(name.length, 28);
    c.writeUInt32LE(offset, 42);
    parts.push(local, name, e.data);
    central.push(c, name);
    offset += 30 + name.length + e.data.length;
  }
  const cd = Buffer.concat(central);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(offset, 16);
  end.writeUInt16LE(Buffer.byteLength(comment), 20);
  const p = join(dir, file);
  writeFileSync(p, Buffer.concat([...parts, cd, end, Buffer.from(comment)]));
  return p;
}

test("entries are listed, read whole (CRC checked) and located for mapping; a trailing comment is skipped", () => {
  const p = writeZip("ok.zip", [
    { name: "a/data.pkl", data: Buffer.from("hello") },
    { name: "a/data/0", data: Buffer.from([1, 2, 3, 4]) },
    { name: "a/nocrc", data: Buffer.from("x"), crc: 0 },
  ], "a comment with PK\x05\x06 inside");
  const z = ZipReader.open(p);
  try {
    assert.deepEqual([...z.entries.keys()], ["a/data.pkl", "a/data/0", "a/nocrc"]);
    assert.equal(Buffer.from(z.read("a/data.pkl")).toString(), "hello");
    assert.equal(z.read("a/nocrc").length, 1);
    // data/0 starts after the first entry (30 + 10 + 5 bytes) and its own header (30 + 8).
    assert.equal(z.dataOffset("a/data/0"), 45 + 38);
    z.verify("a/data/0");
    assert.throws(() => z.read("a/missing"), /archive entry 'a\/missing' is missing/);
  } finally {
    z.close();
  }
});

test("archives cao2 cannot read safely are refused with the entry and the reason", () => {
  const cases: [Entry[], RegExp][] = [
    [[{ name: "x", data: Buffer.from("a") }, { name: "x", data: Buffer.from("b") }], /archive entry 'x' appears twice/],
    [[{ name: "x", data: Buffer.from("a"), method: 12 }], /uses compression method 12/],
    [[{ name: "x", data: Buffer.from("a"), flags: 1 }], /archive entry 'x' is encrypted/],
  ];
  cases.forEach(([entries, re], i) => {
    const p = writeZip(`bad${i}.zip`, entries);
    assert.throws(() => ZipReader.open(p), (e: unknown) => e instanceof ZipError && re.test((e as Error).message) && (e as Error).message.startsWith(p));
  });
  const crc = ZipReader.open(writeZip("crc.zip", [{ name: "x", data: Buffer.from("abc"), crc: 1234 }]));
  assert.throws(() => crc.read("x"), /archive entry 'x' is corrupted \(CRC-32 mismatch\)/);
  assert.throws(() => crc.verify("x"), /CRC-32 mismatch/);
  crc.close();
  const notZip = join(dir, "not.zip");
  writeFileSync(notZip, Buffer.alloc(100, 7));
  assert.throws(() => ZipReader.open(notZip), /no zip end-of-central-directory record/);
});
