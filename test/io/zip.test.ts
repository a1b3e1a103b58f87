// The zip reader on small hand-built archives (ZIP64 and deflated archives from Python are in checkpoint.test.ts).
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { after, test } from "node:test";
import { ZipError, ZipReader } from "../../src/io/zip.js";
import { ROOT } from "../helpers/fixtures.js";

const dir = mkdtempSync(join(tmpdir(), "cao2-zip-"));
after(() => rmSync(dir, { recursive: true, force: true }));

interface Entry {
  name: string;
  data: Buffer;
  method?: number;
  flags?: number;
  crc?: number;
}
type Overrides = Pick<Entry, "method" | "flags" | "crc">;
// The stored-entry zip writer of the hostile-file generator, with per-entry header overrides and an archive comment.
const { zipStored } = (await import(pathToFileURL(join(ROOT, "tools", "hostile", "make.mjs")).href)) as {
  zipStored(files: [string, Buffer, Overrides][], comment?: string): Buffer;
};

function writeZip(file: string, entries: Entry[], comment = ""): string {
  const p = join(dir, file);
  writeFileSync(
    p,
    zipStored(
      entries.map((e) => [e.name, e.data, e]),
      comment,
    ),
  );
  return p;
}

test("entries are listed, read whole (CRC checked) and located for mapping; a trailing comment is skipped", () => {
  const p = writeZip(
    "ok.zip",
    [
      { name: "a/data.pkl", data: Buffer.from("hello") },
      { name: "a/data/0", data: Buffer.from([1, 2, 3, 4]) },
      { name: "a/nocrc", data: Buffer.from("x"), crc: 0 },
    ],
    "a comment with PK\x05\x06 inside",
  );
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
    [
      [
        { name: "x", data: Buffer.from("a") },
        { name: "x", data: Buffer.from("b") },
      ],
      /archive entry 'x' appears twice/,
    ],
    [[{ name: "x", data: Buffer.from("a"), method: 12 }], /uses compression method 12/],
    [[{ name: "x", data: Buffer.from("a"), flags: 1 }], /archive entry 'x' is encrypted/],
  ];
  cases.forEach(([entries, re], i) => {
    const p = writeZip(`bad${i}.zip`, entries);
    assert.throws(
      () => ZipReader.open(p),
      (e: unknown) => e instanceof ZipError && re.test((e as Error).message) && (e as Error).message.startsWith(p),
    );
  });
  const crc = ZipReader.open(writeZip("crc.zip", [{ name: "x", data: Buffer.from("abc"), crc: 1234 }]));
  assert.throws(() => crc.read("x"), /archive entry 'x' is corrupted \(CRC-32 mismatch\)/);
  assert.throws(() => crc.verify("x"), /CRC-32 mismatch/);
  crc.close();
  const notZip = join(dir, "not.zip");
  writeFileSync(notZip, Buffer.alloc(100, 7));
  assert.throws(() => ZipReader.open(notZip), /no zip end-of-central-directory record/);
});
