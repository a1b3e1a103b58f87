// The tensor library: `import * as torch from "cao2/torch"`.
export { Tensor, type Shape } from "./tensor.js";
export { type DType, ITEM_SIZE, isFloating } from "./dtype.js";
export * from "./creation.js";
export * from "./ops.js";
export * as F from "./functional.js";
export { noGrad, enableGrad, isGradEnabled, grad, backward } from "./autograd.js";
export {
  autocast,
  autocastToFloat,
  isAutocastEnabled,
  checkPrecision,
  PRECISIONS,
  type Precision,
} from "./autocast.js";
export { tidy, keep, disposeAll } from "./scope.js";
export { Generator, manualSeed, defaultGenerator } from "./random.js";
export {
  SGD,
  Adam,
  AdamW,
  Optimizer,
  type OptimizerState,
  type ParamGroup,
  type SGDOptions,
  type AdamOptions,
} from "./optim.js";
export {
  setNumThreads,
  getNumThreads,
  cudaDeviceCount,
  torchVersion,
  parallelInfo,
  checkDevice,
  availableDevices,
  installInterruptHandler,
  stopRequested,
  checkInterrupt,
} from "./runtime.js";
export { call as callOp } from "./dispatch.js";
