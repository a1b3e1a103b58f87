#!/usr/bin/env node
// Investigation: a training set passed through the autoencoder (encode -> posterior mean -> decode), written as an
// ImageFolder with the same class folders. Evaluating it beside the original tells how much of a generated set's gap
// to real images the autoencoder alone explains (the generator can be no sharper than the decoder).
//
//   node tools/results/reconstruct.mjs --data .runs/val/rr10 --out .runs/val/rr10-recon [--autoencoder <file>]
import { mkdirSync, writeFileSync, copyFileSync, existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const { parseArgs } = await import(join(ROOT, "dist/src/cli/args.js"));
const { loadAutoencoder } = await import(join(ROOT, "dist/src/distill/models.js"));
const { loadImageFolder, batch } = await import(join(ROOT, "dist/src/io/datasets/index.js"));
const { resizeImages, tensorToImage } = await import(join(ROOT, "dist/src/io/image.js"));
const { encodePng } = await import(join(ROOT, "dist/src/io/png.js"));
const { noGrad, tidy } = await import(join(ROOT, "dist/src/torch/index.js"));

const args = parseArgs(process.argv.slice(2), {
  data: { type: "string", help: "ImageFolder to reconstruct" },
  out: { type: "string", help: "Output ImageFolder (new)" },
  autoencoder: {
    type: "string",
    help: "Autoencoder",
    default: join(ROOT, "assets/fashion-mnist/autoencoder.safetensors"),
  },
});
const { autoencoder } = loadAutoencoder(args.autoencoder, { device: "cpu" });
autoencoder.eval();
const ds = loadImageFolder(args.data, { channels: 1 });
const size = autoencoder.config.sampleSize ?? 32;
mkdirSync(args.out);
ds.classes.forEach((c) => mkdirSync(join(args.out, c)));
const counts = ds.classes.map(() => 0);
for (let i = 0; i < ds.labels.length; i++) {
  const img = noGrad(() =>
    tidy(() => {
      let x = batch(ds, [i]).x;
      if (x.size(2) !== size) x = resizeImages(x, [size, size], { antialias: true });
      const y = autoencoder
        .decode(autoencoder.encode(x.mul(2).sub(1)).mean)
        .add(1)
        .div(2)
        .clamp(0, 1);
      return tensorToImage(y.select(0, 0));
    }),
  );
  const label = ds.labels[i];
  writeFileSync(join(args.out, ds.classes[label], `${counts[label]++}.png`), encodePng(img));
}
if (existsSync(join(args.data, "classes.txt")))
  copyFileSync(join(args.data, "classes.txt"), join(args.out, "classes.txt"));
console.log(`wrote ${ds.labels.length} reconstructions to ${args.out}`);
