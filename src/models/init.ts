// Weight initialisations with torch.nn.init's formulas. Each returns an Init that fills a tensor in place.
import { normalInto, uniformInto } from "../torch/index.js";
import type { Init } from "./module.js";

/** fan_in and fan_out as torch.nn.init computes them: dims 0/1 times the receptive field. */
export function fans(shape: readonly number[]): { fanIn: number; fanOut: number } {
  const receptive = shape.slice(2).reduce((a, b) => a * b, 1);
  return { fanIn: (shape[1] ?? 1) * receptive, fanOut: shape[0] * receptive };
}

export const uniform =
  (low: number, high: number): Init =>
  (t, g) =>
    uniformInto(t, low, high, g);
export const normal =
  (mean: number, std: number): Init =>
  (t, g) =>
    normalInto(t, mean, std, g);
export const constant =
  (v: number): Init =>
  (t) =>
    void t.fill_(v);
export const zero: Init = constant(0);
export const one: Init = constant(1);

/** nn.Linear / nn.Conv2d default: kaiming_uniform(a=sqrt(5)), i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in)). */
export const defaultWeight: Init = (t, g) => {
  const b = 1 / Math.sqrt(fans(t.shape).fanIn);
  uniformInto(t, -b, b, g);
};
/** nn.Linear / nn.Conv2d default bias: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) of the layer's weight. */
export const defaultBias = (fanIn: number): Init => uniform(-1 / Math.sqrt(fanIn), 1 / Math.sqrt(fanIn));

export const xavierUniform =
  (gain = 1): Init =>
  (t, g) => {
    const { fanIn, fanOut } = fans(t.shape);
    const a = gain * Math.sqrt(6 / (fanIn + fanOut));
    uniformInto(t, -a, a, g);
  };

/** kaiming_normal(mode="fan_out", nonlinearity="relu"), torchvision's ResNet convolution init. */
export const kaimingNormalFanOut: Init = (t, g) => normalInto(t, 0, Math.sqrt(2 / fans(t.shape).fanOut), g);
