// Decoding latents to images and asking the selector what it sees (Algorithm 1, line 3: P = softmax(s(c | X))).
import { convertChannelsTensor, resizeImages } from "../io/image.js";
import { normalize } from "../io/image.js";
import type { Preprocess } from "../models/saved.js";
import { cat, F, noGrad, type Tensor, tidy } from "../torch/index.js";
import type { LoadedModels } from "./models.js";

/** The autoencoder's output for latents (scaled, as the diffusion model sees them), in batches: `finish` maps each. */
function decodeBatches(
  m: Pick<LoadedModels, "autoencoder" | "scalingFactor">,
  latents: Tensor,
  batchSize: number,
  finish: (x: Tensor) => Tensor,
): Tensor {
  return noGrad(() =>
    tidy(() => {
      const parts: Tensor[] = [];
      for (let lo = 0; lo < latents.size(0); lo += batchSize) {
        const z = latents.narrow(0, lo, Math.min(batchSize, latents.size(0) - lo));
        parts.push(finish(m.autoencoder.decode(z.div(m.scalingFactor))));
      }
      return cat(parts, 0);
    }),
  );
}

/** The decoder's output (about [-1, 1]) as images in [0, 1]. */
const toUnit = (x: Tensor) => x.add(1).div(2).clamp(0, 1);

/** Latents (scaled, as the diffusion model sees them) to images in [0, 1], in batches. */
export function decodeLatents(
  models: Pick<LoadedModels, "autoencoder" | "scalingFactor">,
  latents: Tensor,
  batchSize = 64,
): Tensor {
  return decodeBatches(models, latents, batchSize, toUnit);
}

/**
 * The selector's input: images resized to its size (or `size`), channels converted, then normalised with its mean
 * and std. The released code feeds the raw decoder output resized to the selector's input without normalisation
 * (`normalise` false; the caller passes the decoder output as it is).
 */
export function selectorInput(images: Tensor, pre: Preprocess, normalise = true, size = pre.size): Tensor {
  return tidy(() => {
    let x = convertChannelsTensor(images, pre.channels);
    if (x.size(2) !== size || x.size(3) !== size) x = resizeImages(x, [size, size], { antialias: true });
    return normalise ? normalize(x, pre.mean, pre.std) : x;
  });
}

/** L2-normalised penultimate features of the selector for images in [0, 1] (the representative strategy's space). */
export function imageFeatures(models: Pick<LoadedModels, "selector" | "selectorPreprocess">, images: Tensor): Tensor {
  return noGrad(() =>
    tidy(() => {
      const f = models.selector.features(selectorInput(images, models.selectorPreprocess));
      return f.div(f.norm(2, 1, true).clamp(1e-12));
    }),
  );
}

/** Largest side of the pixel space the mmd strategy compares in (memory and time stay bounded at ImageNet sizes). */
const PIXEL_SPACE_MAX_SIZE = 64;

/** The side of the mmd strategy's pixel space: the selector's input size, at most PIXEL_SPACE_MAX_SIZE. */
export const pixelSpaceSize = (pre: Preprocess) => Math.min(pre.size, PIXEL_SPACE_MAX_SIZE);

/** Images in [0, 1] as the mmd strategy compares them: the selector's input at pixelSpaceSize, flattened to [n, dim]. */
export function pixelFeatures(models: Pick<LoadedModels, "selectorPreprocess">, images: Tensor): Tensor {
  return tidy(() =>
    selectorInput(images, models.selectorPreprocess, true, pixelSpaceSize(models.selectorPreprocess)).flatten(1),
  );
}

/** Features (imageFeatures or pixelFeatures) of the decoded latents, in batches, row-major [n x dim]. */
export function latentFeatures(
  models: Pick<LoadedModels, "autoencoder" | "scalingFactor">,
  latents: Tensor,
  batchSize: number,
  features: (images: Tensor) => Tensor,
): { data: Float32Array; dim: number } {
  const data = noGrad(() => decodeBatches(models, latents, batchSize, (x) => features(toUnit(x))).toFloat32Array());
  return { data, dim: data.length / latents.size(0) };
}

/**
 * The selector's softmax class probabilities [n, classes] for images as a run shows them to it. Paper mode: images
 * in [0, 1], normalised as the selector was trained. `--compat authors`: the raw decoder output (about [-1, 1],
 * unclamped) resized, as the released code's `model_teacher(Resize(224)(vae.decode(z / 0.18215).sample))`.
 */
export function classifyImages(
  models: Pick<LoadedModels, "selector" | "selectorPreprocess">,
  images: Tensor,
  options: { compat: "paper" | "authors" },
): Tensor {
  return tidy(() =>
    F.softmax(
      models.selector.forward(selectorInput(images, models.selectorPreprocess, options.compat !== "authors")),
      1,
    ),
  );
}

/** Softmax class probabilities of the selector for latents (decoded as `classifyImages` takes them), row-major [n x classes]. */
export function scoreImages(
  models: Pick<LoadedModels, "autoencoder" | "scalingFactor" | "selector" | "selectorPreprocess">,
  latents: Tensor,
  options: { batchSize: number; compat: "paper" | "authors" },
): Float32Array {
  return noGrad(() =>
    tidy(() => {
      const parts: Tensor[] = [];
      for (let lo = 0; lo < latents.size(0); lo += options.batchSize) {
        const z = latents.narrow(0, lo, Math.min(options.batchSize, latents.size(0) - lo));
        const images =
          options.compat === "authors"
            ? decodeBatches(models, z, options.batchSize, (x) => x)
            : decodeLatents(models, z);
        parts.push(classifyImages(models, images, options));
      }
      return cat(parts, 0).toFloat32Array();
    }),
  );
}
