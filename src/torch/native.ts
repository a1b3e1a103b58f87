// Loads the libtorch addon, on first use: commands that never compute (`cao2 --help`, `cao2 <command> --help`) run
// without libtorch. OpenBLAS reads OPENBLAS_CORETYPE once, when the library is loaded, so the choice of kernels has
// to be made here, before the addon (and with it libtorch and OpenBLAS) is loaded.
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { availableParallelism } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** The raw binding; only src/torch uses it directly. */
export interface NativeBinding {
  GeneratorHandle: new () => object;
  op(name: string, overload: string): [number, [string, string, boolean, boolean][], number];
  call(id: number, args: unknown[], discard?: boolean): unknown;
  fromBuffer(data: ArrayBufferView | ArrayBuffer, shape: readonly number[], dtype: number): object;
  toBuffer(t: object): ArrayBuffer;
  meta(t: object): [number[], number, string, boolean, boolean];
  strides(t: object): number[];
  item(t: object): number | boolean;
  dispose(t: object): void;
  isDisposed(t: object): boolean;
  sameStorage(a: object, b: object): boolean;
  backward(tensors: object[], grads: (object | null)[], retainGraph: boolean, createGraph: boolean): void;
  grad(
    outputs: object[],
    inputs: object[],
    gradOutputs: (object | null)[],
    retain: boolean,
    create: boolean,
    allowUnused: boolean,
  ): (object | null)[];
  getGrad(t: object): object | null;
  setGrad(t: object, g: object | null): void;
  setRequiresGrad(t: object, on: boolean): void;
  gradEnabled(set?: boolean): boolean;
  autocastState(deviceType: "cpu" | "cuda", enabled?: boolean, dtype?: number): [boolean, number];
  autocastNesting(delta: 1 | -1): number;
  manualSeed(seed: number | bigint): void;
  newGenerator(seed: number | bigint): object;
  defaultGenerator(): object;
  generatorSeed(g: object, seed?: number | bigint): bigint;
  generatorGetState(g: object): object;
  generatorSetState(g: object, state: object): void;
  numThreads(n?: number): number;
  cudaDeviceCount(): number;
  version(): string;
  parallelInfo(): string;
  watchSignals(): void;
  signalsReceived(): number;
}

/** Debian's OpenBLAS 0.3.21 does not know newer AVX-512 CPUs and would fall back to slow Prescott kernels. */
export function chooseOpenblasCore(env: NodeJS.ProcessEnv = process.env, cpuinfo?: string): string | undefined {
  if (env.OPENBLAS_CORETYPE) return undefined;
  let info = cpuinfo;
  if (info === undefined) {
    try {
      info = readFileSync("/proc/cpuinfo", "utf8");
    } catch {
      return undefined;
    }
  }
  const flags = /^flags\s*:(.*)$/m.exec(info)?.[1].split(/\s+/) ?? [];
  return flags.includes("avx512f") ? "SkylakeX" : undefined;
}

function addonPath(): string {
  if (process.env.CAO2_NATIVE) return process.env.CAO2_NATIVE;
  // dist/src/torch/native.js and src/torch/native.ts both sit three levels below the package root.
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const p = join(dir, "native", "build", "Release", "cao2_torch.node");
    if (existsSync(p)) return p;
    dir = dirname(dir);
  }
  throw new Error(
    "cao2: the libtorch addon is not built (native/build/Release/cao2_torch.node is missing). " +
      "Run `npm install` (it compiles the addon; set LIBTORCH=/path/to/libtorch if libtorch is not installed system-wide).",
  );
}

function load(): NativeBinding {
  const core = chooseOpenblasCore();
  if (core) process.env.OPENBLAS_CORETYPE = core;
  // libgomp reads this once too, when libtorch loads it. Its default (active) policy keeps idle OpenMP workers
  // spinning after every parallel region; OpenBLAS's own worker threads and other processes then wait for a core,
  // and on a busy machine matrix products run 2 to 15 times slower (docs/benchmarks.md). Passive workers sleep.
  process.env.OMP_WAIT_POLICY ??= "PASSIVE";
  const addon = createRequire(import.meta.url)(addonPath()) as NativeBinding;
  // libtorch starts with one intra-op thread here; use every core unless the user said otherwise.
  const requested = Number(process.env.CAO2_THREADS ?? "");
  addon.numThreads(Number.isInteger(requested) && requested > 0 ? requested : availableParallelism());
  return addon;
}

/**
 * The addon. Until the first use this is a stand-in that loads it and then puts the addon itself in its place
 * (importers see the new binding), so every later call goes straight to the addon.
 */
export let native: NativeBinding = new Proxy({} as NativeBinding, {
  get(_, key) {
    native = load();
    return native[key as keyof NativeBinding];
  },
});
