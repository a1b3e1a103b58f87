// Decoding latents to images and asking the selector what it sees (Algorithm 1, line 3: P = softmax(s(c | X))).
import { convertChannelsTensor, resizeImages } from "../io/image.js";
import { normalize } from "../evaluate/augment.js";
import type { Preprocess } from "../models/saved.js";
import { cat, F, noGrad, type Tensor, tidy } from "../torch/index.js";
import type { LoadedModels } from "./models.js";

/** Latents (scaled, as the diffusion model sees them) to images in [0, 1], in batches. */
export function decodeLatents(m: Pick<LoadedModels, "autoencoder" | "scalingFactor">, latents: Tensor, batchSize = 64): Tensor {
  return noGrad(() =>
    tidy(() => {
      const parts: Tensor[] = [];
      for (let lo = 0; lo < latents.size(0); lo += batchSize) {
        const z = latents.narrow(0, lo, Math.min(batchSize, latents.size(0) - lo));
        parts.push(m.autoencoder.decode(z.div(m.scalingFactor)).add(1).div(2).clamp(0, 1));
      }
      return cat(parts, 0);
    }),
  );
}

/**
 * The selector's input: images resized to its size, channels converted, then normalised with its mean and std. The
 * released code feeds the raw decoder output resized to 224 without normalisation (`normalize` false).
 */
export function selectorInput(images: Tensor, pre: Preprocess, normalise = true): Tensor {
  return tidy(() => {
    let x = convertChannelsTensor(images, pre.channels);
    if (x.size(2) !== pre.size || x.size(3) !== pre.size) x = resizeImages(x, [pre.size, pre.size], { antialias: true });
    return normalise ? normalize(x, pre.mean, pre.std) : x;
  });
}

/** The selector's softmax class probabilities [n, classes] for images in [0, 1], fed as a run feeds it. */
export function classifyImages(m: Pick<LoadedModels, "selector" | "selectorPreprocess">, images: Tensor, o: { compat: "paper" | "authors" }): Tensor {
  return tidy(() => {
    const pre = o.compat === "authors" ? { ...m.selectorPreprocess, size: 224 } : m.selectorPreprocess;
    return F.softmax(m.selector.forward(selectorInput(images, pre, o.compat !== "authors")), 1);
  });
}

/** Softmax class probabilities of the selector for latents, row-major [n x classes]. */
export function scoreImages(m: Pick<LoadedModels, "autoencoder" | "scalingFactor" | "selector" | "selectorPreprocess">, latents: Tensor, o: { batchSize: number; compat: "paper" | "authors" }): Float32Array {
  return noGrad(() =>
    tidy(() => {
      const parts: Tensor[] = [];
      for (let lo = 0; lo < latents.size(0); lo += o.batchSize) {
        const z = latents.narrow(0, lo, Math.min(o.batchSize, latents.size(0) - lo));
        parts.push(classifyImages(m, decodeLatents(m, z), o));
      }
      return cat(parts, 0).toFloat32Array();
    }),
  );
}
