// Exponential moving average of a model's weights (the EMA weights DiT samples with):
//   ema <- decay * ema + (1 - decay) * param after every step; buffers are copied.
import type { Model } from "../models/module.js";
import { noGrad } from "../torch/index.js";

export function updateEma(ema: Model, model: Model, decay: number): void {
  const src = model.store;
  noGrad(() => {
    for (const [k, p] of ema.store.params) {
      p.mul_(decay).add_(src.params.get(k)!, 1 - decay);
    }
    for (const [k, b] of ema.store.buffers) b.copy_(src.buffers.get(k)!);
  });
}

/** Makes the EMA start equal to the model (as the DiT recipe does before training). */
export function copyWeights(dst: Model, src: Model): void {
  dst.loadStateDict(src.stateDict());
}
