// Synthetic image folders for the loader and ImageNet-format tests: smooth pictures of a given size written as JPEG
// (jpeg-js, any quality) or PNG, plus the greyscale and CMYK JPEGs that PIL wrote for the transform fixtures.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import jpeg from "jpeg-js";
import { encodePng } from "../../src/io/png.js";
import { fixture } from "./fixtures.js";

/** RGB pixels varying smoothly with position and `seed` (so classes and images differ). */
export function picture(width: number, height: number, seed: number): Uint8Array {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      data[i] = (128 + 100 * Math.sin((x + seed * 7) / (5 + (seed % 5)))) | 0;
      data[i + 1] = ((255 * (x + y)) / (width + height)) | 0;
      data[i + 2] = (seed * 37 + ((x >> 4) + (y >> 4)) * 40) & 255;
    }
  return data;
}

/** Writes a JPEG (quality 90) of `picture(width, height, seed)`. */
export function writeJpeg(path: string, width: number, height: number, seed: number): void {
  const rgb = picture(width, height, seed);
  const rgba = new Uint8Array(width * height * 4).fill(255);
  for (let i = 0; i < width * height; i++) rgba.set(rgb.subarray(i * 3, i * 3 + 3), i * 4);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, jpeg.encode({ width, height, data: rgba }, 90).data);
}

export function writePng(path: string, width: number, height: number, seed: number): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, encodePng({ width, height, channels: 3, data: picture(width, height, seed) }));
}

/** PIL-written JPEGs of the other colour spaces: greyscale (233x317 ... see the fixtures) and CMYK (Adobe). */
export function copyFixtureJpeg(kind: "gray" | "cmyk", path: string): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(
    path,
    readFileSync(
      kind === "gray" ? fixture("data", "jpeg", "gray.jpg") : fixture("data", "transform", "cmyk_320x240.jpg"),
    ),
  );
}
