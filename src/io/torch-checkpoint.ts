// PyTorch's torch.save files (.pt, .pth, .bin) in the zip format (the default since PyTorch 1.6):
//   <prefix>/data.pkl      the pickled object (protocol 2), with tensors as persistent ids
//                          ('storage', torch.FloatStorage, key, location, numel) rebuilt by _rebuild_tensor_v2
//                          (storage, storage_offset, size, stride, requires_grad, backward_hooks)
//   <prefix>/data/<key>    each storage's raw bytes, stored uncompressed
//   <prefix>/byteorder     "little" or "big" (PyTorch >= 2.1; absent means little)
// The pickle goes through our safe unpickler (pickle.ts) with the tensor globals below as the only torch calls, so
// nothing from the file is ever run. Tensors come back as lazy TensorRefs: their metadata is known after opening, and
// each one's bytes are read from the archive when it is loaded. Views of a storage (shared storages, offsets,
// non-contiguous strides) become independent contiguous tensors with the values torch would show.
import { InputError } from "../errors.js";
import { callOp, type DType, ITEM_SIZE, noGrad, type Tensor } from "../torch/index.js";
import { checkedNumel } from "./limits.js";
import {
  type Callable,
  describe,
  PickleError,
  PyGlobal,
  type PickleVM,
  unpickle,
  UnsafePickleError,
} from "./pickle.js";
import { type ByteSource, readInto, readTensor, viewBytes } from "./tensor-read.js";
import { ZipError, ZipReader } from "./zip.js";

export class TorchCheckpointError extends InputError {
  constructor(file: string, msg: string) {
    super(`${file}: ${msg}`);
  }
}

/** The message for a file in the pre-1.6 (non-zip) torch.save format, which needs pickle-level torch internals. */
export const LEGACY_FORMAT_HELP =
  "this is a legacy (non-zip) torch.save file, which cao2 does not read; convert it with a recent PyTorch: " +
  "`torch.save(torch.load(path, map_location='cpu'), new_path)` (zip format) or save the state dict as safetensors " +
  "(only load files you trust in PyTorch: torch.load runs code from the file)";

/** Storage classes named in persistent ids, and the dtype of their elements. */
const STORAGE_DTYPES: Record<string, DType> = {
  DoubleStorage: "float64",
  FloatStorage: "float32",
  HalfStorage: "float16",
  BFloat16Storage: "bfloat16",
  LongStorage: "int64",
  IntStorage: "int32",
  ShortStorage: "int16",
  CharStorage: "int8",
  ByteStorage: "uint8",
  BoolStorage: "bool",
  UntypedStorage: "uint8",
};

/** A storage of the archive: its key, the entry holding its bytes, and its element type and count. */
export class StorageRef {
  constructor(
    readonly key: string,
    readonly entry: string,
    readonly dtype: DType,
    readonly numel: number,
  ) {}
}

/** A tensor in the archive, not yet read: a strided view of a storage. */
export class TensorRef {
  /** Element count, exact (rebuildTensor refuses shapes whose count is not below 2^53). */
  readonly numel: number;
  /** Elements from the first to the last one the view touches (0 when empty), exact as a BigInt. */
  private readonly extent: bigint;

  constructor(
    readonly storage: StorageRef,
    readonly offset: number,
    readonly shape: number[],
    readonly stride: number[],
    readonly requiresGrad: boolean,
  ) {
    const n = checkedNumel(shape);
    if ("problem" in n) throw new PickleError(`tensor of shape ${brief(shape)}: ${n.problem}`);
    this.numel = n.numel;
    // Strides are counts too (no negative strides in torch); 0 repeats an element (a broadcast view).
    this.extent = n.numel === 0 ? 0n : 1n + shape.reduce((a, d, i) => a + BigInt(d - 1) * BigInt(stride[i]), 0n);
  }

  get dtype(): DType {
    return this.storage.dtype;
  }
  /** The view's extent in storage elements (checked against the storage before any read). */
  get span(): number {
    return Number(this.extent);
  }
  /** Row-major and dense: its values are one run of the storage. */
  get contiguous(): boolean {
    let expect = 1;
    for (let i = this.shape.length - 1; i >= 0; i--) {
      if (this.shape[i] !== 1 && this.stride[i] !== expect) return false;
      expect *= this.shape[i];
    }
    return true;
  }
  /** Why the view does not fit its storage, or null. */
  problem(): string | null {
    if (BigInt(this.offset) + this.extent > BigInt(this.storage.numel)) {
      return `view (offset ${this.offset}, shape ${brief(this.shape)}, stride ${brief(this.stride)}) reaches past the end of storage '${this.storage.key}' (${this.storage.numel} values)`;
    }
    return null;
  }
}

/** A shape or stride for messages, shortened when long. */
const brief = (v: readonly number[]) =>
  `[${v.slice(0, 8).join(", ")}${v.length > 8 ? `, ... (${v.length} dimensions)` : ""}]`;

/** Sizes, strides and offsets: non-negative integers that a double holds exactly. */
const isCount = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
const countList = (v: unknown): v is number[] => Array.isArray(v) && v.every(isCount);
/** More dimensions than any real tensor has (libtorch's CUDA kernels stop at 25). */
const MAX_DIMS = 64;

function rebuildTensor(args: unknown[], vm: PickleVM): TensorRef {
  const [storage, offset, size, stride, requiresGrad] = args;
  if (Array.isArray(size) && Array.isArray(stride)) vm.charge(size.length + stride.length);
  if (
    !(storage instanceof StorageRef) ||
    !isCount(offset) ||
    !countList(size) ||
    !countList(stride) ||
    size.length !== stride.length
  ) {
    throw new PickleError("torch._utils._rebuild_tensor_v2 with malformed arguments");
  }
  if (size.length > MAX_DIMS) throw new PickleError(`a tensor with ${size.length} dimensions (at most ${MAX_DIMS})`);
  return new TensorRef(storage, offset, [...size], [...stride], requiresGrad === true);
}

function parameter(args: unknown[]): TensorRef {
  if (!(args[0] instanceof TensorRef))
    throw new PickleError("torch._utils._rebuild_parameter of something that is not a tensor");
  return args[0];
}

const unsupported =
  (what: string): Callable =>
  () => {
    throw new PickleError(`the checkpoint holds ${what}, which cao2 does not load`);
  };

const REBUILDERS = [
  "torch._utils._rebuild_tensor_v2",
  "torch._utils._rebuild_tensor",
  "torch._utils._rebuild_parameter",
  "torch._utils._rebuild_parameter_with_state",
];

/** Our implementations of the torch globals a state dict uses; everything else is refused by the unpickler. */
const TORCH_CALLABLES: Record<string, Callable> = {
  "torch._utils._rebuild_tensor_v2": rebuildTensor,
  "torch._utils._rebuild_tensor": rebuildTensor,
  "torch._utils._rebuild_parameter": parameter,
  "torch._utils._rebuild_parameter_with_state": parameter,
  // PyTorch 2 wraps some tensors as _rebuild_from_type_v2(func, type, args, state): allowed for plain tensors only.
  "torch._tensor._rebuild_from_type_v2": ([func, type, args], vm) => {
    const cls = type instanceof PyGlobal ? type.qualname : describe(type);
    if (cls !== "torch.Tensor" && cls !== "torch.nn.parameter.Parameter")
      throw new PickleError(`the checkpoint holds a tensor subclass ${cls}, which cao2 does not load`);
    if (!(func instanceof PyGlobal) || !REBUILDERS.includes(func.qualname)) {
      const name = func instanceof PyGlobal ? func.qualname : describe(func);
      throw new UnsafePickleError(
        name,
        `refusing to load: a tensor is rebuilt by ${name}, which is not a torch tensor rebuilder`,
      );
    }
    if (!Array.isArray(args)) throw new PickleError(`${func.qualname} with arguments that are not a tuple`);
    return TORCH_CALLABLES[func.qualname](args, vm);
  },
  "torch.Size": ([dims], vm) => {
    if (Array.isArray(dims)) vm.charge(dims.length);
    if (!countList(dims)) throw new PickleError("torch.Size of something that is not a list of sizes");
    return [...dims];
  },
  "torch.device": ([type, index]) => {
    const name = typeof type === "string" ? type : describe(type);
    return index === undefined || index === null
      ? name
      : `${name}:${typeof index === "number" ? index : describe(index)}`;
  },
  "torch.storage._load_from_bytes": () => {
    throw new UnsafePickleError(
      "torch.storage._load_from_bytes",
      "refusing to load: the checkpoint calls torch.storage._load_from_bytes (a storage pickled in the legacy format, which torch.load would unpickle recursively with its unsafe loader)",
    );
  },
  "torch._utils._rebuild_qtensor": unsupported("a quantized tensor"),
  "torch._utils._rebuild_sparse_tensor": unsupported("a sparse tensor"),
  "torch._utils._rebuild_sparse_csr_tensor": unsupported("a sparse tensor"),
  "torch._utils._rebuild_nested_tensor": unsupported("a nested tensor"),
  "torch._utils._rebuild_meta_tensor_no_storage": unsupported("a meta tensor (no data)"),
  "torch._utils._rebuild_wrapper_subclass": unsupported("a tensor subclass"),
  "torch._utils._rebuild_device_tensor_from_numpy": unsupported("a device tensor stored as numpy"),
};

export interface TorchOpenOptions {
  /**
   * Check each storage's CRC-32 before its first tensor is read (default false: an extra pass over the data, which
   * torch.load does not make either; data.pkl is always checked). A recorded CRC of 0 means the writer computed none
   * (torch.save with CRC computation off) and passes.
   */
  verifyCrc?: boolean;
}

/** An open torch.save archive: the unpickled object (tensors as TensorRefs) and on-demand tensor reads. */
export class TorchArchive {
  readonly path: string;
  /** The unpickled top-level object: Maps for dicts, arrays for lists and tuples, TensorRef for tensors. */
  readonly root: unknown;
  readonly bigEndian: boolean;
  private readonly zip: ZipReader;
  private readonly verifyCrc: boolean;
  private readonly verified = new Set<string>();

  private constructor(path: string, zip: ZipReader, root: unknown, bigEndian: boolean, verifyCrc: boolean) {
    this.path = path;
    this.zip = zip;
    this.root = root;
    this.bigEndian = bigEndian;
    this.verifyCrc = verifyCrc;
  }

  static open(path: string, opts: TorchOpenOptions = {}): TorchArchive {
    const zip = ZipReader.open(path);
    try {
      const fail = (msg: string): never => {
        throw new TorchCheckpointError(path, msg);
      };
      const pkls = [...zip.entries.keys()].filter((n) => /^[^/]+\/data\.pkl$/.test(n));
      if (pkls.length !== 1)
        fail(
          pkls.length
            ? "zip archive with several data.pkl records"
            : "zip archive without <name>/data.pkl: not a torch.save checkpoint",
        );
      const prefix = pkls[0].slice(0, -"/data.pkl".length);
      if (
        zip.entries.has(`${prefix}/constants.pkl`) ||
        [...zip.entries.keys()].some((n) => n.startsWith(`${prefix}/code/`))
      ) {
        fail(
          "this is a TorchScript archive (torch.jit.save), not a torch.save checkpoint; in PyTorch, save its state_dict() instead",
        );
      }
      let bigEndian = false;
      if (zip.entries.has(`${prefix}/byteorder`)) {
        const order = Buffer.from(zip.read(`${prefix}/byteorder`))
          .toString("utf8")
          .trim();
        if (order !== "little" && order !== "big") fail(`unknown byteorder record '${order}'`);
        bigEndian = order === "big";
      }
      const storages = new Map<string, StorageRef>();
      const persistentLoad = (pid: unknown): StorageRef => {
        if (!Array.isArray(pid) || pid[0] !== "storage" || pid.length < 5)
          return fail(`unknown persistent id in data.pkl (${describe(pid)})`);
        const [, type, key, , numel] = pid as [string, unknown, unknown, unknown, unknown];
        if (typeof key !== "string" || !isCount(numel)) return fail("malformed storage reference in data.pkl");
        const cls = type instanceof PyGlobal && /^torch(\.cuda)?$/.test(type.module) ? type.name : null;
        const dtype = cls !== null && Object.hasOwn(STORAGE_DTYPES, cls) ? STORAGE_DTYPES[cls] : null;
        if (!dtype)
          return fail(
            `storage '${key}' has an unsupported type ${type instanceof PyGlobal ? type.qualname : String(type)}`,
          );
        const known = storages.get(key);
        if (known) {
          if (known.dtype !== dtype || known.numel !== numel)
            fail(`storage '${key}' is declared twice with different types or sizes`);
          return known;
        }
        const entry = `${prefix}/data/${key}`;
        if (!zip.entries.has(entry))
          fail(`storage '${key}' is missing from the archive (no entry ${entry}; truncated or damaged file?)`);
        const bytes = zip.entries.get(entry)!.size;
        if (BigInt(bytes) !== BigInt(numel) * BigInt(ITEM_SIZE[dtype]))
          fail(`storage '${key}' holds ${bytes} bytes but the checkpoint declares ${numel} ${dtype} values`);
        const ref = new StorageRef(key, entry, dtype, numel);
        storages.set(key, ref);
        return ref;
      };
      const root = unpickle(zip.read(`${prefix}/data.pkl`), {
        callables: TORCH_CALLABLES,
        persistentLoad,
        source: path,
      });
      return new TorchArchive(path, zip, root, bigEndian, opts.verifyCrc ?? false);
    } catch (e) {
      zip.close();
      throw e;
    }
  }

  /** Reads one tensor (a new contiguous CPU tensor with the values of the view). `key` names it in errors. */
  load(ref: TensorRef, key: string): Tensor {
    if (ref.contiguous) return readTensor(this.source(ref, key), ref.dtype, ref.shape, { bigEndian: this.bigEndian });
    return this.strided(ref, key, (v) => v.contiguous());
  }

  /** Copies one tensor into an existing tensor of the same shape (copy_ converts dtype and device). */
  loadInto(ref: TensorRef, key: string, dst: Tensor): void {
    if (dst.shape.join() !== ref.shape.join())
      throw new TorchCheckpointError(
        this.path,
        `tensor '${key}' has shape [${ref.shape}], the destination [${dst.shape}]`,
      );
    if (ref.contiguous)
      return readInto(dst, this.source(ref, key), ref.dtype, ref.shape, { bigEndian: this.bigEndian });
    this.strided(ref, key, (v) => noGrad(() => dst.copy_(v)));
  }

  close(): void {
    this.zip.close();
  }

  /** A strided view (shared storage, transposed, expanded): the storage span it covers, viewed as torch would. */
  private strided<T>(ref: TensorRef, key: string, fn: (view: Tensor) => T): T {
    return viewBytes(this.source(ref, key), ref.dtype, [ref.span], { bigEndian: this.bigEndian }, (span) => {
      const v = callOp("as_strided", span, ref.shape, ref.stride, null);
      try {
        return fn(v);
      } finally {
        v.dispose();
      }
    });
  }

  /** Where the tensor's first value is, after checking that the view fits its storage (and the CRC-32 if asked). */
  private source(ref: TensorRef, key: string): ByteSource {
    const p = ref.problem();
    if (p) throw new TorchCheckpointError(this.path, `tensor '${key}': ${p}`);
    const entry = ref.storage.entry;
    if (this.verifyCrc && !this.verified.has(entry)) {
      try {
        this.zip.verify(entry);
      } catch (e) {
        throw e instanceof ZipError
          ? new TorchCheckpointError(
              this.path,
              `tensor '${key}': storage '${ref.storage.key}' is corrupted (CRC-32 mismatch)`,
            )
          : e;
      }
      this.verified.add(entry);
    }
    const start = ref.offset * ITEM_SIZE[ref.dtype];
    if (this.zip.entry(entry).method !== 0) return { bytes: this.zip.read(entry).subarray(start) };
    return { path: this.path, fileSize: this.zip.size, offset: this.zip.dataOffset(entry) + start };
  }
}
