// Data-set names resolve the same way in every command (src/io/datasets/spec.ts): `fashion-mnist` is read from
// FASHION_MNIST_DIR when it is set, else from Debian's copy. `evaluate` and `baseline` once ignored the variable and
// read the Debian copy silently (issue 24); here a tiny made-up Fashion-MNIST (2 training and 1 test image per
// class) in FASHION_MNIST_DIR must be what they read, and an empty folder there must be an error naming it.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { cao2 } from "../helpers/cli.js";

const dir = mkdtempSync(join(tmpdir(), "cao2-cli-data-env-"));
after(() => rmSync(dir, { recursive: true, force: true }));

/** An idx file of unsigned bytes with the given dimensions. */
function idx(dims: number[], data: Uint8Array): Buffer {
  const header = Buffer.alloc(4 + 4 * dims.length);
  header[2] = 0x08;
  header[3] = dims.length;
  dims.forEach((d, i) => header.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([header, data]);
}

/** `perClass` 28x28 images of each of the 10 classes, image i filled with the value 10 * i + 1 (all distinct). */
function writeTinyFashionMnist(root: string, prefix: "train" | "t10k", perClass: number): void {
  const n = 10 * perClass;
  const labels = Uint8Array.from({ length: n }, (_, i) => i % 10);
  const images = new Uint8Array(n * 28 * 28);
  for (let i = 0; i < n; i++) images.fill((10 * i + 1) % 256, i * 784, (i + 1) * 784);
  writeFileSync(join(root, `${prefix}-images-idx3-ubyte`), idx([n, 28, 28], images));
  writeFileSync(join(root, `${prefix}-labels-idx1-ubyte`), idx([n], labels));
}

const tiny = join(dir, "tiny");
mkdirSync(tiny);
writeTinyFashionMnist(tiny, "train", 2);
writeTinyFashionMnist(tiny, "t10k", 1);
const empty = join(dir, "empty");
mkdirSync(empty);

test("baseline reads fashion-mnist from FASHION_MNIST_DIR", async () => {
  const out = join(dir, "rr");
  const r = await cao2(["baseline", "random-real", "--data", "fashion-mnist", "--ipc", "2", "--out", out], {
    env: { FASHION_MNIST_DIR: tiny },
  });
  assert.equal(r.status, 0, r.stderr);
  const manifest = JSON.parse(readFileSync(join(out, "manifest.json"), "utf8")) as {
    source: { path: string };
    images: { sourceIndex: number }[];
  };
  assert.equal(manifest.source.path, tiny);
  assert.deepEqual(
    manifest.images.map((i) => i.sourceIndex).sort((a, b) => a - b),
    Array.from({ length: 20 }, (_, i) => i),
    "every image of the tiny set, none of Debian's 60,000",
  );
  const more = await cao2(
    ["baseline", "random-real", "--data", "fashion-mnist", "--ipc", "3", "--out", join(dir, "rr3")],
    { env: { FASHION_MNIST_DIR: tiny } },
  );
  assert.equal(more.status, 2, "the tiny set has 2 images per class");
  const none = await cao2(
    ["baseline", "random-real", "--data", "fashion-mnist", "--ipc", "1", "--out", join(dir, "rr0")],
    { env: { FASHION_MNIST_DIR: empty } },
  );
  assert.equal(none.status, 2);
  assert.match(none.stderr, new RegExp(`^cao2 baseline: error: .*${empty}`));
});

test("evaluate reads its fashion-mnist test set (and a fashion-mnist training set) from FASHION_MNIST_DIR", async () => {
  const json = join(dir, "record.json");
  const args = [
    "evaluate",
    "--data",
    "fashion-mnist",
    "--test",
    "fashion-mnist",
    "--epochs",
    "1",
    "--batch-size",
    "10",
    "--repeats",
    "1",
    "--threads",
    "1",
    "--json",
    json,
  ];
  const r = await cao2(args, { env: { FASHION_MNIST_DIR: tiny } });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /on fashion-mnist: 20 images, 10 classes, .*; test fashion-mnist \(10 images\)/);
  const record = JSON.parse(readFileSync(json, "utf8")) as Record<string, unknown>;
  assert.match(JSON.stringify(record), new RegExp(`"${tiny}`), "the record names the folder read");
  const none = await cao2(args, { env: { FASHION_MNIST_DIR: empty } });
  assert.equal(none.status, 2);
  assert.match(none.stderr, new RegExp(`^cao2 evaluate: error: .*${empty}`));
});

test("train dit's default --autoencoder is the shipped file, whatever the working folder", async () => {
  const out = join(dir, "dit");
  const r = await cao2(
    [
      "train",
      "dit",
      "--out",
      out,
      "--val-per-class",
      "1",
      "--batch-size",
      "2",
      "--steps",
      "1",
      "--total-steps",
      "1",
      "--depth",
      "1",
      "--hidden",
      "16",
      "--heads",
      "1",
      "--threads",
      "1",
    ],
    { cwd: dir, env: { FASHION_MNIST_DIR: tiny } },
  );
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`model: ${join(out, "model.safetensors")}`));
});
