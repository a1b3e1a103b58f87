// Random number generation. Our generators are libtorch CPU generators, so manualSeed(s) followed by randn gives the
// same stream as PyTorch's CPU generator. Draws for other devices are made on the CPU and moved, which keeps runs
// identical across devices.
import { native } from "./native.js";
import { Tensor } from "./tensor.js";

export class Generator {
  /** @internal */
  readonly handle: object;
  constructor(seed: number | bigint = 67280421310721n, handle?: object) {
    this.handle = handle ?? native.newGenerator(seed);
  }
  manualSeed(seed: number | bigint): this {
    native.generatorSeed(this.handle, seed);
    return this;
  }
  get initialSeed(): bigint {
    return native.generatorSeed(this.handle);
  }
  /** The full state (a uint8 tensor, as torch.Generator.get_state) for checkpoints. */
  getState(): Tensor {
    return new Tensor(native.generatorGetState(this.handle));
  }
  setState(state: Tensor): void {
    native.generatorSetState(this.handle, state.handle);
  }
}

/** Seeds the default generators (CPU and, when present, CUDA), as torch.manual_seed. */
export function manualSeed(seed: number | bigint): void {
  native.manualSeed(seed);
}

let defaultGen: Generator | undefined;
/** The default CPU generator shared with libtorch. */
export function defaultGenerator(): Generator {
  defaultGen ??= new Generator(0, native.defaultGenerator());
  return defaultGen;
}
