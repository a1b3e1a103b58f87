// Locates libtorch for the addon build: $LIBTORCH (pytorch.org zip layout, CPU or CUDA) or Debian's libtorch-dev.
// Prints one field (include|libdir|libs|cflags) for binding.gyp, or throws a message saying how to install it.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";

export function locateLibtorch(env = process.env) {
  if (env.LIBTORCH) {
    const root = env.LIBTORCH;
    const libdir = join(root, "lib");
    const hasTorch = ["libtorch.so", "libtorch_cpu.so", "libtorch.dylib"].some((f) => existsSync(join(libdir, f)));
    if (!existsSync(join(root, "include", "ATen", "ATen.h")) || !hasTorch) {
      throw new Error(
        `LIBTORCH=${root} does not look like a libtorch distribution (expected include/ATen/ATen.h and lib/libtorch*.so). ` +
          "Unzip the C++ libtorch archive from pytorch.org and point LIBTORCH at its top folder.",
      );
    }
    const libs = ["torch", "torch_cpu", "c10"];
    // A CUDA build registers its kernels from libtorch_cuda; link it even though no symbol is used directly.
    if (existsSync(join(libdir, "libtorch_cuda.so"))) libs.push("torch_cuda", "c10_cuda");
    return {
      include: [join(root, "include"), join(root, "include", "torch", "csrc", "api", "include")],
      libdir,
      libs,
      cxx11abi: abiFromConfig(join(root, "share", "cmake", "Torch", "TorchConfig.cmake")) ?? 1,
    };
  }
  const debianLib = "/usr/lib/x86_64-linux-gnu";
  const multiarch = [debianLib, "/usr/lib/aarch64-linux-gnu", "/usr/lib"].find((d) =>
    existsSync(join(d, "libtorch_cpu.so")),
  );
  if (existsSync("/usr/include/ATen/ATen.h") && multiarch) {
    return {
      include: ["/usr/include", "/usr/include/torch/csrc/api/include"],
      libdir: multiarch,
      libs: ["torch", "torch_cpu", "c10"],
      cxx11abi: abiFromConfig(join(multiarch, "cmake", "Torch", "TorchConfig.cmake")) ?? 1,
    };
  }
  throw new Error(
    "libtorch was not found. On Debian/Ubuntu: `sudo apt-get install libtorch-dev libopenblas-dev`. " +
      "Elsewhere: download the C++ libtorch zip (CPU or CUDA) from pytorch.org, unzip it and set LIBTORCH=/path/to/libtorch " +
      "before `npm install`.",
  );
}

function abiFromConfig(file) {
  if (!existsSync(file)) return undefined;
  const m = /_GLIBCXX_USE_CXX11_ABI=([01])/.exec(readFileSync(file, "utf8"));
  return m ? Number(m[1]) : undefined;
}

if (process.argv[1] && process.argv[1].endsWith("libtorch.mjs") && process.argv[2]) {
  const lt = locateLibtorch();
  const field = process.argv[2];
  if (field === "include") console.log(lt.include.join(" "));
  else if (field === "libdir") console.log(lt.libdir);
  else if (field === "libs") console.log(lt.libs.map((l) => `-l${l}`).join(" "));
  else if (field === "cflags") console.log(`-D_GLIBCXX_USE_CXX11_ABI=${lt.cxx11abi}`);
  else throw new Error(`unknown field ${field}`);
}
