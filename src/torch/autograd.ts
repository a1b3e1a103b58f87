// Autograd entry points beyond Tensor.backward: grad-mode scopes and torch.autograd.grad.
import { native } from "./native.js";
import { Tensor } from "./tensor.js";

function withGradMode<T>(on: boolean, fn: () => T): T {
  const prev = native.gradEnabled();
  native.gradEnabled(on);
  try {
    const r = fn();
    if (r instanceof Promise) throw new Error("noGrad/enableGrad take a synchronous function");
    return r;
  } finally {
    native.gradEnabled(prev);
  }
}

/** Runs fn without recording operations for autograd (torch.no_grad). */
export const noGrad = <T>(fn: () => T): T => withGradMode(false, fn);
/** Runs fn with gradient recording on, also inside noGrad (torch.enable_grad). */
export const enableGrad = <T>(fn: () => T): T => withGradMode(true, fn);
export const isGradEnabled = (): boolean => native.gradEnabled();

/** Gradients of outputs with respect to inputs, without touching .grad (torch.autograd.grad). */
export function grad(
  outputs: Tensor | Tensor[],
  inputs: Tensor | Tensor[],
  options: {
    gradOutputs?: (Tensor | null)[];
    retainGraph?: boolean;
    createGraph?: boolean;
    allowUnused?: boolean;
  } = {},
): (Tensor | null)[] {
  const outs = Array.isArray(outputs) ? outputs : [outputs];
  const ins = Array.isArray(inputs) ? inputs : [inputs];
  const gouts = options.gradOutputs ?? outs.map(() => null);
  const res = native.grad(
    outs.map((t) => t.handle),
    ins.map((t) => t.handle),
    gouts.map((t) => (t ? t.handle : null)),
    options.retainGraph ?? options.createGraph ?? false,
    options.createGraph ?? false,
    options.allowUnused ?? false,
  );
  return res.map((h) => (h ? new Tensor(h) : null));
}

/** Backward from several roots at once (torch.autograd.backward). */
export function backward(tensors: Tensor[], grads?: (Tensor | null)[], retainGraph = false): void {
  native.backward(
    tensors.map((t) => t.handle),
    (grads ?? tensors.map(() => null)).map((g) => (g ? g.handle : null)),
    retainGraph,
    false,
  );
}
