// PNG codec: round trips, decoding of files whose pixels PIL decoded (tools/reference/data_images.py), corruption.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { InputError } from "../../src/errors.js";
import { decodePng, encodePng, type RawImage } from "../../src/io/png.js";
import { loadSafetensors } from "../../src/io/safetensors.js";
import { fixture } from "../helpers/fixtures.js";

function randomImage(width: number, height: number, channels: RawImage["channels"], seed: number): RawImage {
  const data = new Uint8Array(width * height * channels);
  let s = seed;
  for (let i = 0; i < data.length; i++) {
    // smooth ramps plus noise, so that every filter type wins on some rows
    s = (s * 1103515245 + 12345) >>> 0;
    data[i] = i % 3 === 0 ? (i * 7) & 0xff : (s >>> 24) & (i % 2 ? 0xff : 0x0f);
  }
  return { width, height, channels, data };
}

test("encode -> decode is the identity for grey, grey+alpha, RGB and RGBA", () => {
  for (const channels of [1, 2, 3, 4] as const) {
    for (const [w, h] of [
      [1, 1],
      [17, 5],
      [32, 32],
    ]) {
      const img = randomImage(w, h, channels, w * 31 + channels);
      const back = decodePng(encodePng(img));
      assert.deepEqual(
        { ...back, data: Array.from(back.data) },
        { ...img, data: Array.from(img.data) },
        `${w}x${h}x${channels}`,
      );
    }
  }
});

test("the encoder is deterministic and writes only IHDR, IDAT and IEND", () => {
  const img = randomImage(20, 9, 3, 5);
  const a = encodePng(img);
  assert.deepEqual(a, encodePng(img));
  const types: string[] = [];
  const v = new DataView(a.buffer, a.byteOffset);
  for (let p = 8; p < a.length; p += 12 + v.getUint32(p)) types.push(String.fromCharCode(...a.subarray(p + 4, p + 8)));
  assert.deepEqual(types, ["IHDR", "IDAT", "IEND"]);
});

test("decodes PIL-verified PNGs: every bit depth, colour type, filter type and Adam7", () => {
  const expected = loadSafetensors(fixture("data", "png", "expected.safetensors"));
  const files = JSON.parse(readFileSync(fixture("data", "png", "cases.json"), "utf8")) as Record<string, string>;
  assert.ok(Object.keys(files).length >= 26);
  for (const [name, file] of Object.entries(files)) {
    const img = decodePng(readFileSync(fixture("data", "png", file)));
    const want = expected.get(name)!;
    const [h, w, c] = want.shape;
    assert.deepEqual([img.height, img.width, img.channels], [h, w, c], `${name}: shape`);
    assert.deepEqual(Array.from(img.data), want.toNumbers(), `${name}: pixels`);
  }
});

test("corrupted PNGs fail with clear InputErrors", () => {
  const good = encodePng(randomImage(8, 8, 3, 1));
  const flipped = good.slice();
  flipped[45] ^= 0x10; // inside the IDAT data (IDAT starts at byte 33, its data at 41)
  assert.throws(
    () => decodePng(flipped),
    (e: Error) => e instanceof InputError && /CRC mismatch in chunk 'IDAT'/.test(e.message),
  );
  assert.throws(() => decodePng(good.subarray(0, good.length - 20)), /truncated/);
  assert.throws(() => decodePng(good.subarray(0, 30)), /truncated/);
  assert.throws(() => decodePng(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9])), /not a PNG file/);
  // a valid CRC over a bad header value
  const badDepth = good.slice();
  badDepth[24] = 3;
  const crc = crc32(badDepth.subarray(12, 29));
  new DataView(badDepth.buffer).setUint32(29, crc);
  assert.throws(() => decodePng(badDepth), /bit depth 3 is not allowed for colour type 2/);
});

/** Independent bitwise CRC-32 (no table) for crafting test files. */
function crc32(b: Uint8Array): number {
  let c = ~0;
  for (const x of b) {
    c ^= x;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
  }
  return ~c >>> 0;
}
