// The validation transform against PIL / torchvision (tools/reference/transforms_fixtures.py): Resize(256) on the
// shorter side with PIL's antialiased bilinear filter, then CenterCrop(224), after PIL's convert("RGB"), for odd sizes
// and image modes (greyscale, palette with and without transparency, RGBA, CMYK JPEG).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { convertChannels, decodeImage } from "../../src/io/image.js";
import { centerCrop, resizeBilinear, resizeShorterSide } from "../../src/io/resample.js";
import { fixture } from "../helpers/fixtures.js";

const cases = JSON.parse(readFileSync(fixture("data", "transform", "cases.json"), "utf8")) as Record<
  string,
  { file: string; mode: string; size: [number, number] }
>;
const read = (file: string) => decodeImage(readFileSync(fixture("data", "transform", file)), file);

function maxAbsDiff(a: Uint8Array, b: Uint8Array): { max: number; mean: number } {
  assert.equal(a.length, b.length);
  let max = 0;
  let sum = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    max = Math.max(max, d);
    sum += d;
  }
  return { max, mean: sum / a.length };
}

test("Resize(256) + CenterCrop(224) of PNGs in every mode matches PIL within 1 grey level", (t) => {
  const pngs = Object.entries(cases).filter(([, c]) => c.file.endsWith(".png"));
  assert.ok(pngs.length >= 11);
  for (const [name, c] of pngs) {
    const img = read(c.file);
    assert.deepEqual([img.width, img.height], c.size, name);
    const out = centerCrop(resizeShorterSide(convertChannels(img, 3), 256), 224);
    const want = read(`${name}.expected.png`);
    assert.deepEqual([out.width, out.height, out.channels], [want.width, want.height, 3], name);
    const { max, mean } = maxAbsDiff(out.data, want.data);
    t.diagnostic(`${name} (${c.mode} ${c.size.join("x")}): max |diff| ${max}, mean ${mean.toFixed(4)}`);
    assert.ok(max <= 1, `${name}: max |diff| ${max}`);
  }
});

test("a CMYK JPEG converts to RGB as PIL does, within the JPEG decoders' own difference", (t) => {
  const c = cases.cmyk_320x240;
  const img = read(c.file);
  assert.equal(img.channels, 3);
  const out = centerCrop(resizeShorterSide(img, 256), 224);
  const { max, mean } = maxAbsDiff(out.data, read("cmyk_320x240.expected.png").data);
  t.diagnostic(`CMYK: max |diff| ${max}, mean ${mean.toFixed(3)}`);
  // jpeg-js and libjpeg differ by up to 3 grey levels on 4:4:4 colour JPEGs (test/io/image.test.ts); after resizing
  // (an average) the difference can only shrink.
  assert.ok(max <= 3 && mean <= 0.7, `max ${max}, mean ${mean}`);
});

test("resizing to the same size copies; the crop offset of an odd margin rounds half to even as Python", () => {
  const img = { width: 3, height: 2, channels: 1 as const, data: Uint8Array.from([1, 2, 3, 4, 5, 6]) };
  const same = resizeBilinear(img, 3, 2);
  assert.deepEqual(same.data, img.data);
  assert.notEqual(same.data, img.data);
  // margins 1 (offset round(0.5) = 0) and 3 (round(1.5) = 2)
  const wide = { width: 5, height: 4, channels: 1 as const, data: Uint8Array.from({ length: 20 }, (_, i) => i) };
  assert.deepEqual([...centerCrop(wide, 4).data.subarray(0, 4)], [0, 1, 2, 3]);
  const big = { width: 6, height: 6, channels: 1 as const, data: Uint8Array.from({ length: 36 }, (_, i) => i) };
  assert.deepEqual([...centerCrop(big, 3).data.subarray(0, 3)], [14, 15, 16], "top and left 2");
});
