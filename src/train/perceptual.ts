// A perceptual distance for training an autoencoder's decoder: both images go through a frozen classifier (a cao2
// ResNet or ConvNet model file), and the distance sums, over its stages, the squared difference of the channel-wise
// unit-normalised feature maps, averaged over positions (LPIPS, Zhang et al. 2018, with uniform channel weights as
// its untrained variant). Pixel L1 alone keeps shapes but softens texture; this term keeps what a network sees.
import { InputError } from "../errors.js";
import { normalize } from "../io/image.js";
import { loadSavedClassifier } from "../models/saved.js";
import { noGrad, type Tensor, tidy } from "../torch/index.js";

/** Distance between reconstructions and targets, both [N, C, H, W] in [-1, 1]; a scalar, differentiable in the first. */
export type PerceptualDistance = (reconstruction: Tensor, target: Tensor) => Tensor;

/** Channel-wise unit vectors (the small epsilon keeps all-zero positions finite). */
const unit = (f: Tensor) => f.div(f.pow(2).sum(1, true).sqrt().add(1e-10));

/** Loads the network of the distance onto `device`; it must take images of the autoencoder's channels and size. */
export function loadPerceptual(path: string, channels: number, size: number, device = "cpu"): PerceptualDistance {
  const { net, preprocess: pre } = loadSavedClassifier(path, `--perceptual ${path}`, device);
  if (pre.channels !== channels || pre.size !== size) {
    throw new InputError(
      `--perceptual ${path}: the network takes ${pre.channels}x${pre.size}x${pre.size} images; the autoencoder works on ${channels}x${size}x${size}`,
    );
  }
  net.freeze();
  const maps = (x: Tensor) => net.featureMaps(normalize(x.add(1).div(2), pre.mean, pre.std));
  return (reconstruction, target) =>
    tidy(() => {
      const want = noGrad(() => maps(target).map(unit));
      return maps(reconstruction)
        .map((f, i) => unit(f).sub(want[i]).pow(2).sum(1).mean())
        .reduce((a, b) => a.add(b));
    });
}
