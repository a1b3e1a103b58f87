// Mixed precision as torch.autocast does it. Inside `autocast(device, precision, fn)` the dispatcher's Autocast
// kernels run the matmul/conv-class operators (linear, matmul, conv, bmm, ...) in the low-precision dtype and keep the
// operators of libtorch's fp32 list in float32; everything else runs in the dtype of its inputs. Tensors made outside
// keep their dtype: latents being refined stay float32 leaves, and so do their gradients.
import { InputError } from "../errors.js";
import { SCALAR_TYPE } from "./dtype.js";
import { native } from "./native.js";
import { tidy } from "./scope.js";
import type { Tensor } from "./tensor.js";

export const PRECISIONS = ["fp32", "bf16", "fp16"] as const;
/** fp32: no autocast; bf16 / fp16: autocast to bfloat16 / float16. */
export type Precision = (typeof PRECISIONS)[number];

const deviceType = (device: string): "cpu" | "cuda" => (device.startsWith("cuda") ? "cuda" : "cpu");

/** Refuses a precision the device cannot run (libtorch's CPU autocast has bfloat16 only). */
export function checkPrecision(precision: Precision, device: string): void {
  if (precision === "fp16" && deviceType(device) === "cpu")
    throw new InputError(
      "precision fp16 needs a CUDA device: libtorch's CPU autocast supports bfloat16 only (use bf16, or fp32)",
    );
}

/** Runs fn with autocast on for the device's type (`precision` fp32: as it is), restoring the state after. */
export function autocast<T>(device: string, precision: Precision, fn: () => T): T {
  if (precision === "fp32") return fn();
  checkPrecision(precision, device);
  const type = deviceType(device);
  const [wasOn, wasDtype] = native.autocastState(type);
  native.autocastState(type, true, SCALAR_TYPE[precision === "bf16" ? "bfloat16" : "float16"]);
  native.autocastNesting(1);
  try {
    const r = fn();
    if (r instanceof Promise) throw new Error("autocast takes a synchronous function");
    return r;
  } finally {
    native.autocastNesting(-1);
    native.autocastState(type, wasOn, wasDtype);
  }
}

/**
 * fn's tensor computed under autocast and returned in float32, so that what follows a network (guidance, a sampler's
 * or a loss's arithmetic) stays fp32, as autocast's users write `model(x).float()`. fp32: fn as it is.
 */
export function autocastToFloat(device: string, precision: Precision, fn: () => Tensor): Tensor {
  if (precision === "fp32") return fn();
  return tidy(() => autocast(device, precision, fn).float());
}

/** Whether autocast is on for the device's type (in this thread). */
export const isAutocastEnabled = (device = "cpu"): boolean => native.autocastState(deviceType(device))[0];
