// Images between files and tensors: HWC uint8 <-> CHW float in [0, 1] as torchvision's ToTensor / save_image, batch
// resizing, and the per-channel normalisation every classifier input gets. Decoding and channel conversion (plain
// JavaScript) are in decode.ts, re-exported here.
import { InputError } from "../errors.js";
import * as torch from "../torch/index.js";
import type { Tensor } from "../torch/index.js";
import { convertChannels } from "./decode.js";
import { encodePng, type RawImage } from "./png.js";

export { convertChannels, decodeImage, type RawImage } from "./decode.js";

// ---------------------------------------------------------------------------------------------------------------
// Tensors
// ---------------------------------------------------------------------------------------------------------------

/** HWC uint8 -> [C, H, W] uint8 tensor, converting channels first when `channels` is given. */
export function imageToUint8Tensor(img: RawImage, channels?: 1 | 3): Tensor {
  const im = channels ? convertChannels(img, channels) : img;
  return torch.tidy(() => torch.fromArray(im.data, [im.height, im.width, im.channels]).permute(2, 0, 1).contiguous());
}

/** HWC uint8 -> [C, H, W] float32 in [0, 1] (x / 255, as ToTensor), converting channels first when asked. */
export function imageToTensor(img: RawImage, channels?: 1 | 3): Tensor {
  return torch.tidy(() => imageToUint8Tensor(img, channels).to("float32").div(255));
}

/**
 * [C, H, W] float in [0, 1] -> HWC uint8 image, quantised as torchvision's save_image: x*255 + 0.5, clamped to
 * [0, 255], truncated. C must be 1 or 3.
 */
export function tensorToImage(t: Tensor): RawImage {
  if (t.ndim !== 3 || (t.size(0) !== 1 && t.size(0) !== 3))
    throw new Error(`tensorToImage: expected [1|3, H, W], got [${t.shape}]`);
  const [c, h, w] = t.shape;
  const data = torch.tidy(() =>
    t.to("float32").mul(255).add(0.5).clamp(0, 255).to("uint8").permute(1, 2, 0).contiguous().toBytes(),
  );
  return { width: w, height: h, channels: c as 1 | 3, data };
}

/**
 * [C, H, W] in [0, 1] -> PNG bytes (8-bit grey for C = 1, RGB for C = 3). torchvision's save_image writes a 1-channel
 * tensor as RGB with three equal channels; the grey PNG here holds the same values.
 */
export function tensorToPng(t: Tensor): Uint8Array {
  return encodePng(tensorToImage(t));
}

/** Uint8 images (0..255) become float32 in [0, 1]; float images are returned as float32 unchanged in value. */
export function toUnitFloat(images: Tensor): Tensor {
  return images.dtype === "uint8" ? torch.tidy(() => images.to("float32").div(255)) : images.to("float32");
}

export interface ResizeOptions {
  /**
   * Low-pass filter when shrinking (aten _upsample_bilinear2d_aa, torchvision's antialias=True), closer to PIL's
   * resize; false = plain F.interpolate(mode="bilinear"). Default true.
   */
  antialias?: boolean;
}

/**
 * Bilinear resize of [N, C, H, W] to [h, w] (align_corners = false). Float input stays float; uint8 input is resized
 * in float and rounded back, as torchvision's tensor Resize does.
 */
export function resizeImages(x: Tensor, size: readonly [number, number], options: ResizeOptions = {}): Tensor {
  return torch.tidy(() => {
    const f = x.dtype === "uint8" ? x.to("float32") : x;
    const y =
      (options.antialias ?? true)
        ? torch.callOp("_upsample_bilinear2d_aa.vec", f, size, false, null)
        : torch.F.interpolate(f, { size: [size[0], size[1]], mode: "bilinear", alignCorners: false });
    return x.dtype === "uint8" ? torch.round(y).clamp(0, 255).to("uint8") : y;
  });
}

/** Float images [N, C, H, W] to `channels` (1 or 3): grey is repeated into RGB; RGB becomes ITU-R 601-2 luma. */
export function convertChannelsTensor(x: Tensor, channels: number): Tensor {
  const c = x.size(1);
  if (c === channels) return x;
  if (c === 1 && channels === 3) return x.expand(x.size(0), 3, x.size(2), x.size(3));
  if (c === 3 && channels === 1) {
    return torch.tidy(() =>
      torch.sum(x.mul(torch.tensor([0.299, 0.587, 0.114], { device: x.device }).view(1, 3, 1, 1)), 1, true),
    );
  }
  throw new InputError(`cannot convert ${c}-channel images to ${channels} channels`);
}

/** (x - mean[c]) / std[c] per channel of a [N, C, H, W] batch, as torchvision's Normalize. */
export function normalize(x: Tensor, mean: readonly number[], std: readonly number[]): Tensor {
  if (x.ndim !== 4) throw new Error(`normalize: expected a [N, C, H, W] batch, got [${x.shape}]`);
  const c = x.size(1);
  if (mean.length !== c || std.length !== c)
    throw new Error(`normalize: ${c} channels but ${mean.length} means and ${std.length} stds`);
  return torch.tidy(() => {
    const m = torch
      .tensor([...mean])
      .reshape(1, c, 1, 1)
      .to(x.device);
    const s = torch
      .tensor([...std])
      .reshape(1, c, 1, 1)
      .to(x.device);
    return x.sub(m).div(s);
  });
}
