// A safe unpickler: our own implementation of the pickle virtual machine (protocols 0-5, as torch.save writes
// protocol 2) that builds plain JavaScript values and never runs code from the file.
//
// The rule, applied to every opcode that would make Python call something:
// 1. A global (GLOBAL / STACK_GLOBAL) only names something. A global that exists to run code or reach the system
//    (os.system, builtins.eval, builtins.getattr, subprocess.*, ...) is refused: at once when it is called or
//    instantiated, and at the end of the pickle if it was merely named, so it can never be part of a result.
// 2. Calls (REDUCE, INST, OBJ) run only OUR implementation of an allowlisted global: the generic ones below
//    (OrderedDict, set/frozenset, bytes, _codecs.encode, numpy scalars/dtypes/arrays decoded as data, pathlib paths
//    as strings, dates/decimals/complex kept as placeholders with their arguments) and the caller's (the torch tensor
//    rebuilders). A call of any other global is refused with an error that names it ("refusing to load: the
//    checkpoint calls functools.partial, ..."). Nothing is ever looked up or run in the file's terms.
// 3. Instances of classes we do not know, made the protocol-2 way (NEWOBJ / NEWOBJ_EX, i.e. cls.__new__(cls, *args),
//    then BUILD with the instance state), become inert PyObject placeholders that record the class name, the
//    arguments and the state. Python itself runs no user code in cls.__new__ for an ordinary class, and we run none at
//    all; this is what lets a training checkpoint such as {"model": sd, "args": argparse.Namespace(...)} load, with
//    "args" reported as a skipped non-tensor entry. A placeholder is data only: it can never be called (rule 2).
// 4. BUILD on our own values only stores data: placeholders keep the state, our numpy values decode it, and instance
//    attributes of dicts (state_dict()._metadata) are dropped.
// 5. Out-of-band buffers and the copyreg extension registry (EXT1/2/4) are refused: torch.save uses neither.
//
// Bounded work: a pickle is a program, and the memo lets a few bytes refer to a large value again and again (a 1 KB
// pickle can hand one 10,000-item list to 100 calls that each copy it). Every opcode and every item an opcode or one
// of our implementations copies is charged to a budget proportional to the pickle's size (WORK_PER_BYTE), so the
// time and memory of unpickling stay linear in the input; integer literals are limited to 4300 digits as Python's own
// int parser is. What the caller does with the result (checkpoint.ts walking nested dicts) has its own budget.
import { InputError } from "../errors.js";

export class PickleError extends InputError {}

/** The file wanted to call or use a global that we refuse; `global` is its qualified name. */
export class UnsafePickleError extends PickleError {
  constructor(
    readonly global: string,
    msg: string,
  ) {
    super(msg);
  }
}

/** A global the file names without calling it (a class reference or a constant such as torch.float32). */
export class PyGlobal {
  constructor(
    readonly module: string,
    readonly name: string,
  ) {}
  get qualname(): string {
    return `${this.module}.${this.name}`;
  }
}

/** An instance of a class we do not know (rule 3 above): inert data. */
export class PyObject {
  /** The BUILD state: usually the instance __dict__ as a Map. */
  state: unknown = undefined;
  /** Items of a dict or list subclass (SETITEMS / APPENDS on the instance). */
  dictItems?: Map<unknown, unknown>;
  listItems?: unknown[];
  constructor(
    readonly cls: PyGlobal,
    readonly args: unknown[],
  ) {}
}

/** Our own values that take a BUILD state (numpy dtype and arrays). */
export interface Buildable {
  setState(state: unknown): void;
}
const isBuildable = (v: unknown): v is Buildable => typeof (v as Buildable | null)?.setState === "function";

/** What an implementation may ask of the running unpickler. */
export interface PickleVM {
  /** Charges `units` (items copied or walked) to the pickle's work budget; throws PickleError past it. */
  charge(units: number): void;
}

/** Our implementation of one allowlisted global, called with the pickled argument tuple. */
export type Callable = (args: unknown[], vm: PickleVM) => unknown;

/** Work units allowed per byte of pickle, plus a fixed allowance for tiny pickles (see the file comment). */
const WORK_PER_BYTE = 64;
const WORK_BASE = 1_000_000;
/** Longest decimal integer literal, as Python's default int_max_str_digits. */
const MAX_INT_DIGITS = 4300;

/** The shallow size of a value: what copying it costs. */
const sizeOf = (v: unknown): number =>
  Array.isArray(v) || v instanceof Uint8Array ? v.length : v instanceof Map || v instanceof Set ? v.size : typeof v === "string" ? v.length : 1;

export interface UnpickleOptions {
  /** Extra allowlisted callables by qualified name ("module.name"), on top of the generic ones below. */
  callables?: Record<string, Callable>;
  /** Resolves persistent ids (torch: storages). Without it, a persistent id is an error. */
  persistentLoad?: (pid: unknown) => unknown;
  /** Names the source in error messages (a file path). */
  source?: string;
}

// ---------------------------------------------------------------------------------------------------------------
// Generic allowlisted globals: plain containers, bytes, numpy scalars and arrays (decoded, not constructed)
// ---------------------------------------------------------------------------------------------------------------

/** numpy dtype, enough to decode scalars and arrays of numbers: kind string ("f8", "i4", ...) and byte order. */
export class NumpyDType implements Buildable {
  byteorder = "<";
  constructor(readonly kind: string) {}
  setState(state: unknown): void {
    if (Array.isArray(state) && typeof state[1] === "string") this.byteorder = state[1];
  }
  get size(): number {
    return Number(this.kind.slice(1));
  }
  /** Reads `count` values from raw bytes; null when the kind is not a plain number type. */
  decode(bytes: Uint8Array, count: number): (number | bigint | boolean)[] | null {
    const size = this.size;
    if (!/^[fiub][1248]$/.test(this.kind) || bytes.length < size * count) return null;
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const le = this.byteorder !== ">";
    const out: (number | bigint | boolean)[] = [];
    for (let i = 0; i < count; i++) {
      const at = i * size;
      const v = readNumber(dv, at, this.kind, le);
      if (v === null) return null;
      out.push(v);
    }
    return out;
  }
}

function readNumber(dv: DataView, at: number, kind: string, le: boolean): number | bigint | boolean | null {
  switch (kind) {
    case "f8":
      return dv.getFloat64(at, le);
    case "f4":
      return dv.getFloat32(at, le);
    case "f2":
      return halfToNumber(dv.getUint16(at, le));
    case "i1":
      return dv.getInt8(at);
    case "i2":
      return dv.getInt16(at, le);
    case "i4":
      return dv.getInt32(at, le);
    case "i8":
      return safeInt(dv.getBigInt64(at, le));
    case "u1":
      return dv.getUint8(at);
    case "u2":
      return dv.getUint16(at, le);
    case "u4":
      return dv.getUint32(at, le);
    case "u8":
      return safeInt(dv.getBigUint64(at, le));
    case "b1":
      return dv.getUint8(at) !== 0;
    default:
      return null;
  }
}

function halfToNumber(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * f * 2 ** -24;
  if (e === 31) return f ? NaN : s * Infinity;
  return s * (1 + f / 1024) * 2 ** (e - 15);
}

const safeInt = (v: bigint) => (v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v);

/** A numpy array as data: dtype, shape and the raw bytes (or the object list of an object array). */
export class NumpyArray implements Buildable {
  dtype: NumpyDType | null = null;
  shape: number[] = [];
  data: Uint8Array | unknown[] | null = null;
  setState(state: unknown): void {
    // ndarray.__reduce__ state: (version, shape, dtype, is_fortran, rawdata)
    if (!Array.isArray(state) || state.length < 5) throw new PickleError("numpy array with an unexpected state");
    const [, shape, dtype, , raw] = state as [unknown, unknown, unknown, unknown, unknown];
    if (Array.isArray(shape) && shape.length > 64) throw new PickleError(`numpy array with ${shape.length} dimensions`);
    this.shape = Array.isArray(shape) ? shape.map(Number) : [];
    this.dtype = dtype instanceof NumpyDType ? dtype : null;
    this.data = raw instanceof Uint8Array || Array.isArray(raw) ? raw : null;
  }
  /** The values as numbers when the dtype is numeric, else null. */
  values(): (number | bigint | boolean)[] | null {
    if (!this.dtype || !(this.data instanceof Uint8Array)) return null;
    return this.dtype.decode(this.data, this.shape.reduce((a, b) => a * b, 1));
  }
}

function bytesOf(v: unknown, what: string, vm: PickleVM): Uint8Array {
  if (v === undefined) return new Uint8Array(0);
  vm.charge(sizeOf(v));
  if (v instanceof Uint8Array) return new Uint8Array(v);
  if (Array.isArray(v) && v.every((x) => Number.isInteger(x) && x >= 0 && x < 256)) return Uint8Array.from(v as number[]);
  throw new PickleError(`${what}() with an argument that is not bytes`);
}

function pairsToMap(args: unknown[], vm: PickleVM): Map<unknown, unknown> {
  const m = new Map<unknown, unknown>();
  const src = args[0];
  if (src === undefined) return m;
  vm.charge(sizeOf(src));
  if (src instanceof Map) return new Map(src);
  if (!Array.isArray(src)) throw new PickleError("OrderedDict() with an argument that is not a list of pairs");
  for (const p of src) {
    if (!Array.isArray(p) || p.length !== 2) throw new PickleError("OrderedDict() with an item that is not a pair");
    m.set(p[0], p[1]);
  }
  return m;
}

function toSet(args: unknown[], vm: PickleVM): Set<unknown> {
  const src = args[0];
  if (src === undefined) return new Set();
  if (!Array.isArray(src) && !(src instanceof Set)) throw new PickleError(`set() of a ${describe(src)}`);
  vm.charge(sizeOf(src));
  return new Set(src);
}

function numpyScalar(args: unknown[]): unknown {
  const [dtype, raw] = args;
  if (!(dtype instanceof NumpyDType) || !(raw instanceof Uint8Array)) throw new PickleError("numpy scalar with unexpected arguments");
  const v = dtype.decode(raw, 1);
  if (!v) throw new PickleError(`numpy scalar of dtype '${dtype.kind}' is not a plain number`);
  return v[0];
}

function numpyDType(args: unknown[]): NumpyDType {
  if (typeof args[0] !== "string") throw new PickleError("numpy dtype with an unexpected argument");
  return new NumpyDType(args[0]);
}

function encode(args: unknown[], vm: PickleVM): Uint8Array {
  const [s, enc] = args;
  if (typeof s !== "string") throw new PickleError("_codecs.encode() of something that is not a string");
  vm.charge(s.length);
  if (enc === "latin1" || enc === "latin-1") return Uint8Array.from(s, (c) => c.charCodeAt(0) & 0xff);
  if (enc === undefined || enc === "utf-8" || enc === "utf8") return new Uint8Array(Buffer.from(s, "utf8"));
  throw new PickleError(`_codecs.encode() with encoding ${JSON.stringify(enc)}`);
}

/** Values whose construction is pure data (dates, paths, ...): kept as inert placeholders without calling anything. */
const INERT = [
  "datetime.datetime", "datetime.date", "datetime.time", "datetime.timedelta", "datetime.timezone", "decimal.Decimal",
  "fractions.Fraction", "builtins.complex", "builtins.slice", "builtins.range",
];
const PATHS = ["pathlib.Path", "pathlib.PosixPath", "pathlib.WindowsPath", "pathlib.PurePosixPath", "pathlib.PureWindowsPath"];

/** A pickled path (its parts as arguments) as a string. */
function pathString(a: unknown[], vm: PickleVM): string {
  vm.charge(a.reduce<number>((n, x) => n + sizeOf(x), 0));
  return a.map((x) => (typeof x === "string" ? x : describe(x))).join("/").replace(/\/\/+/g, "/");
}

const GENERIC: Record<string, Callable> = {
  ...Object.fromEntries(INERT.map((q) => [q, (a: unknown[]) => new PyObject(new PyGlobal(q.slice(0, q.lastIndexOf(".")), q.slice(q.lastIndexOf(".") + 1)), a)])),
  ...Object.fromEntries(PATHS.map((q) => [q, pathString])),
  "collections.OrderedDict": pairsToMap,
  "builtins.set": toSet,
  "builtins.frozenset": toSet,
  "__builtin__.set": toSet,
  "__builtin__.frozenset": toSet,
  "builtins.bytes": (a, vm) => bytesOf(a[0], "bytes", vm),
  "builtins.bytearray": (a, vm) => bytesOf(a[0], "bytearray", vm),
  "_codecs.encode": encode,
  "numpy.core.multiarray.scalar": numpyScalar,
  "numpy._core.multiarray.scalar": numpyScalar,
  "numpy.dtype": numpyDType,
  "numpy.core.multiarray._reconstruct": () => new NumpyArray(),
  "numpy._core.multiarray._reconstruct": () => new NumpyArray(),
  // Protocol 0/1 object creation: object.__new__(cls), the same inert instance as NEWOBJ makes.
  "copyreg._reconstructor": (a) => {
    const [cls, base] = a;
    if (!(cls instanceof PyGlobal) || !(base instanceof PyGlobal) || base.qualname !== "builtins.object") {
      throw new UnsafePickleError("copyreg._reconstructor", "refusing to load: copyreg._reconstructor with a base other than object");
    }
    return new PyObject(cls, []);
  },
};

// Modules and builtins that exist to run code, open files or reach the system: even naming one is refused.
const DANGEROUS_MODULES = new Set([
  "os", "posix", "nt", "subprocess", "sys", "shutil", "socket", "importlib", "runpy", "pickle", "_pickle", "marshal",
  "ctypes", "pty", "webbrowser", "code", "codeop", "multiprocessing", "signal", "tempfile", "io", "_io", "commands",
  "popen2", "platform", "asyncio",
]);
const DANGEROUS_BUILTINS = new Set([
  "eval", "exec", "execfile", "compile", "open", "getattr", "setattr", "delattr", "__import__", "globals", "locals",
  "vars", "input", "breakpoint", "apply", "file", "memoryview", "help", "exit", "quit",
]);
const ALIAS: Record<string, string> = { posix: "os", nt: "os", __builtin__: "builtins" };

function displayName(module: string, name: string): string {
  const alias = ALIAS[module];
  return alias ? `${module}.${name} (${alias}.${name})` : `${module}.${name}`;
}

function isDangerous(module: string, name: string): boolean {
  const top = module.split(".")[0];
  if (DANGEROUS_MODULES.has(top)) return true;
  return (module === "builtins" || module === "__builtin__") && DANGEROUS_BUILTINS.has(name);
}

// ---------------------------------------------------------------------------------------------------------------
// The virtual machine
// ---------------------------------------------------------------------------------------------------------------

const decoder = new TextDecoder("utf-8");

/** Runs a pickle and returns the value it builds. Throws PickleError (or UnsafePickleError) on anything refused. */
export function unpickle(data: Uint8Array, opts: UnpickleOptions = {}): unknown {
  const where = opts.source ? `${opts.source}: ` : "";
  const callables: Record<string, Callable> = { ...GENERIC, ...opts.callables };
  const fail = (msg: string): never => {
    throw new PickleError(`${where}${msg}`);
  };
  // Errors from our global implementations get the source prefix too.
  const withSource = <T>(fn: () => T): T => {
    try {
      return fn();
    } catch (e) {
      if (!(e instanceof PickleError) || e.message.startsWith(where)) throw e;
      throw e instanceof UnsafePickleError ? new UnsafePickleError(e.global, where + e.message) : new PickleError(where + e.message);
    }
  };
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  let pos = 0;
  const budget = WORK_BASE + WORK_PER_BYTE * data.length;
  let work = 0;
  const vm: PickleVM = {
    charge(units: number) {
      work += units;
      if (work > budget) fail(`unpickling takes more than ${budget} steps for ${data.length} bytes of pickle (values reused through the memo again and again); refusing`);
    },
  };
  const need = (n: number) => {
    if (n < 0 || pos + n > data.length) fail(`pickle data is truncated (needs ${n} more bytes at offset ${pos})`);
  };
  const u8 = () => (need(1), data[pos++]);
  const u16 = () => (need(2), (pos += 2), dv.getUint16(pos - 2, true));
  const u32 = () => (need(4), (pos += 4), dv.getUint32(pos - 4, true));
  const i32 = () => (need(4), (pos += 4), dv.getInt32(pos - 4, true));
  const u64 = () => {
    need(8);
    const v = dv.getBigUint64(pos, true);
    pos += 8;
    if (v > BigInt(data.length)) fail(`pickle length ${v} exceeds the data`);
    return Number(v);
  };
  const bytes = (n: number) => (need(n), (pos += n), data.subarray(pos - n, pos));
  const line = () => {
    const end = data.indexOf(0x0a, pos);
    if (end < 0) fail("pickle data is truncated (missing end of line)");
    const s = decoder.decode(data.subarray(pos, end));
    pos = end + 1;
    return s;
  };

  const stack: unknown[] = [];
  const marks: number[] = [];
  const memo = new Map<number, unknown>();
  const pop = () => {
    if (stack.length === 0 || (marks.length && stack.length <= marks[marks.length - 1])) fail("pickle stack underflow");
    return stack.pop();
  };
  const top = () => {
    if (stack.length === 0) fail("pickle stack underflow");
    return stack[stack.length - 1];
  };
  const popMark = () => {
    const m = marks.pop();
    if (m === undefined) fail("pickle MARK missing");
    vm.charge(stack.length - (m as number));
    return stack.splice(m as number);
  };

  // Dangerous globals are refused when used; one that is only named is refused at STOP, so none ever escapes.
  let named: PyGlobal | null = null;
  const dangerous = new WeakSet<PyGlobal>();
  const refuse = (g: PyGlobal, verb: string, why: string): never => {
    throw new UnsafePickleError(g.qualname, `${where}refusing to load: the checkpoint ${verb} ${displayName(g.module, g.name)}, ${why}`);
  };
  const globalRef = (module: string, name: string): PyGlobal => {
    const g = new PyGlobal(module, name);
    if (isDangerous(module, name)) {
      dangerous.add(g);
      named ??= g;
    }
    return g;
  };

  const call = (fn: unknown, args: unknown[]): unknown => {
    if (!(fn instanceof PyGlobal)) fail(`the pickle calls a value (${describe(fn)}) that is not a global`);
    const g = fn as PyGlobal;
    if (dangerous.has(g)) refuse(g, "calls", "which can run code; loading a checkpoint never runs code from the file");
    const impl = Object.hasOwn(callables, g.qualname) ? callables[g.qualname] : undefined;
    if (!impl) refuse(g, "calls", "which is not one of the functions a state dict needs (cao2 never runs code from a checkpoint)");
    vm.charge(args.length);
    return withSource(() => impl!(args, vm));
  };

  const newObj = (cls: unknown, args: unknown[]): unknown => {
    if (!(cls instanceof PyGlobal)) fail(`the pickle instantiates a value (${describe(cls)}) that is not a global`);
    const g = cls as PyGlobal;
    if (dangerous.has(g)) refuse(g, "instantiates", "which can run code; loading a checkpoint never runs code from the file");
    // A class we implement (OrderedDict, set, ...) is built by our code; any other becomes an inert placeholder.
    vm.charge(args.length);
    return Object.hasOwn(callables, g.qualname) ? withSource(() => callables[g.qualname](args, vm)) : new PyObject(g, args);
  };

  const asArgs = (v: unknown): unknown[] => {
    if (!Array.isArray(v)) fail("pickle call arguments are not a tuple");
    return v as unknown[];
  };
  const setItems = (target: unknown, items: unknown[]) => {
    vm.charge(items.length);
    if (items.length % 2) fail("SETITEMS with an odd number of items");
    let m: Map<unknown, unknown>;
    if (target instanceof Map) m = target;
    else if (target instanceof PyObject) m = target.dictItems ??= new Map();
    else return fail(`SETITEM on a ${describe(target)}`);
    for (let i = 0; i < items.length; i += 2) m.set(items[i], items[i + 1]);
  };
  const appendItems = (target: unknown, items: unknown[]) => {
    vm.charge(items.length);
    const list = Array.isArray(target) && !Object.isFrozen(target) ? target : target instanceof PyObject ? (target.listItems ??= []) : null;
    if (!list) return fail(`APPEND on a ${describe(target)}`);
    for (const x of items) list.push(x);
  };
  const addItems = (target: unknown, items: unknown[]) => {
    vm.charge(items.length);
    if (!(target instanceof Set)) fail(`ADDITEMS on a ${describe(target)}`);
    for (const x of items) (target as Set<unknown>).add(x);
  };
  const tuple = (items: unknown[]) => Object.freeze(items);
  const persistent = (pid: unknown) => {
    if (!opts.persistentLoad) fail("the pickle refers to external data (a persistent id) that this reader does not provide");
    return withSource(() => opts.persistentLoad!(pid));
  };
  const parseIntText = (s: string): number | bigint | boolean => {
    const t = s.trim().replace(/L$/, "");
    if (t.length > MAX_INT_DIGITS + 1) fail(`integer literal of ${t.length} digits in pickle (at most ${MAX_INT_DIGITS})`);
    if (!/^[-+]?\d+$/.test(t)) fail(`bad integer literal '${s.slice(0, 40)}' in pickle`);
    return safeInt(BigInt(t));
  };
  // Two's complement little-endian, read through a hex string (linear time; a byte-wise BigInt loop is quadratic).
  const longLE = (b: Uint8Array): number | bigint => {
    if (b.length === 0) return 0;
    let v = BigInt(`0x${Buffer.from(b).reverse().toString("hex")}`);
    if (b[b.length - 1] & 0x80) v -= 1n << BigInt(8 * b.length);
    return safeInt(v);
  };

  for (;;) {
    const op = u8();
    vm.charge(1);
    switch (op) {
      case 0x80: // PROTO
        if (u8() > 5) fail("pickle protocol newer than 5");
        break;
      case 0x95: // FRAME (length only; the data follows inline)
        need(8);
        pos += 8;
        break;
      case 0x2e: // STOP
        if (stack.length === 0) fail("pickle STOP with an empty stack");
        if (named) refuse(named, "references", "which can run code; loading a checkpoint never runs code from the file");
        return stack[stack.length - 1];
      case 0x28: // MARK
        marks.push(stack.length);
        break;
      case 0x30: // POP
        if (marks.length && marks[marks.length - 1] === stack.length) marks.pop();
        else pop();
        break;
      case 0x31: // POP_MARK
        popMark();
        break;
      case 0x32: // DUP
        stack.push(top());
        break;
      // ----- numbers and constants -----
      case 0x4e: // NONE
        stack.push(null);
        break;
      case 0x88: // NEWTRUE
        stack.push(true);
        break;
      case 0x89: // NEWFALSE
        stack.push(false);
        break;
      case 0x49: {
        // INT (protocol 0; "01"/"00" are True/False)
        const s = line();
        stack.push(s === "01" ? true : s === "00" ? false : parseIntText(s));
        break;
      }
      case 0x4a: // BININT
        stack.push(i32());
        break;
      case 0x4b: // BININT1
        stack.push(u8());
        break;
      case 0x4d: // BININT2
        stack.push(u16());
        break;
      case 0x4c: // LONG
        stack.push(parseIntText(line()));
        break;
      case 0x8a: // LONG1
        stack.push(longLE(bytes(u8())));
        break;
      case 0x8b: {
        // LONG4
        const n = i32();
        if (n < 0) fail("negative LONG4 length");
        stack.push(longLE(bytes(n)));
        break;
      }
      case 0x46: {
        // FLOAT
        const s = line().trim();
        const v = Number(s);
        if (Number.isNaN(v) && !/^[-+]?nan$/i.test(s)) fail(`bad float literal '${s}' in pickle`);
        stack.push(v);
        break;
      }
      case 0x47: // BINFLOAT (big-endian)
        need(8);
        stack.push(dv.getFloat64(pos, false));
        pos += 8;
        break;
      // ----- strings and bytes -----
      case 0x58: // BINUNICODE
        stack.push(decoder.decode(bytes(u32())));
        break;
      case 0x8c: // SHORT_BINUNICODE
        stack.push(decoder.decode(bytes(u8())));
        break;
      case 0x8d: // BINUNICODE8
        stack.push(decoder.decode(bytes(u64())));
        break;
      case 0x56: // UNICODE (raw-unicode-escape)
        stack.push(
          line().replace(/\\u([0-9a-fA-F]{4})|\\U([0-9a-fA-F]{8})/g, (_, a: string, b: string) => {
            const c = parseInt(a ?? b, 16);
            return c <= 0x10ffff ? String.fromCodePoint(c) : fail(`bad escape \\U${b} in a pickled string`);
          }),
        );
        break;
      case 0x54: {
        // BINSTRING (Python 2 str): decoded as UTF-8 text, as torch.load does by default
        const n = i32();
        if (n < 0) fail("negative BINSTRING length");
        stack.push(decoder.decode(bytes(n)));
        break;
      }
      case 0x55: // SHORT_BINSTRING
        stack.push(decoder.decode(bytes(u8())));
        break;
      case 0x53: {
        // STRING: a quoted literal; escapes other than none are not supported
        const s = line().trim();
        const q = s[0];
        if (s.length < 2 || (q !== "'" && q !== '"') || s[s.length - 1] !== q || s.includes("\\")) fail(`unsupported STRING literal in pickle`);
        stack.push(s.slice(1, -1));
        break;
      }
      case 0x42: // BINBYTES
        stack.push(new Uint8Array(bytes(u32())));
        break;
      case 0x43: // SHORT_BINBYTES
        stack.push(new Uint8Array(bytes(u8())));
        break;
      case 0x8e: // BINBYTES8
        stack.push(new Uint8Array(bytes(u64())));
        break;
      case 0x96: // BYTEARRAY8
        stack.push(new Uint8Array(bytes(u64())));
        break;
      // ----- containers -----
      case 0x5d: // EMPTY_LIST
        stack.push([]);
        break;
      case 0x6c: // LIST
        stack.push(popMark());
        break;
      case 0x61: {
        // APPEND
        const v = pop();
        appendItems(top(), [v]);
        break;
      }
      case 0x65: {
        // APPENDS
        const items = popMark();
        appendItems(top(), items);
        break;
      }
      case 0x29: // EMPTY_TUPLE
        stack.push(tuple([]));
        break;
      case 0x74: // TUPLE
        stack.push(tuple(popMark()));
        break;
      case 0x85: // TUPLE1
        stack.push(tuple([pop()]));
        break;
      case 0x86: {
        // TUPLE2
        const b = pop();
        const a = pop();
        stack.push(tuple([a, b]));
        break;
      }
      case 0x87: {
        // TUPLE3
        const c = pop();
        const b = pop();
        const a = pop();
        stack.push(tuple([a, b, c]));
        break;
      }
      case 0x7d: // EMPTY_DICT
        stack.push(new Map());
        break;
      case 0x64: {
        // DICT
        const m = new Map();
        setItems(m, popMark());
        stack.push(m);
        break;
      }
      case 0x73: {
        // SETITEM
        const v = pop();
        const k = pop();
        setItems(top(), [k, v]);
        break;
      }
      case 0x75: {
        // SETITEMS
        const items = popMark();
        setItems(top(), items);
        break;
      }
      case 0x8f: // EMPTY_SET
        stack.push(new Set());
        break;
      case 0x90: {
        // ADDITEMS
        const items = popMark();
        addItems(top(), items);
        break;
      }
      case 0x91: // FROZENSET
        stack.push(new Set(popMark()));
        break;
      // ----- memo -----
      case 0x70: // PUT
        memo.set(Number(parseIntText(line())), top());
        break;
      case 0x71: // BINPUT
        memo.set(u8(), top());
        break;
      case 0x72: // LONG_BINPUT
        memo.set(u32(), top());
        break;
      case 0x94: // MEMOIZE
        memo.set(memo.size, top());
        break;
      case 0x67: // GET
      case 0x68: // BINGET
      case 0x6a: {
        // LONG_BINGET
        const k = op === 0x67 ? Number(parseIntText(line())) : op === 0x68 ? u8() : u32();
        if (!memo.has(k)) fail(`pickle memo has no entry ${k}`);
        stack.push(memo.get(k));
        break;
      }
      // ----- globals, calls and objects -----
      case 0x63: {
        // GLOBAL
        const module = line();
        const name = line();
        stack.push(globalRef(module, name));
        break;
      }
      case 0x93: {
        // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== "string" || typeof name !== "string") fail("STACK_GLOBAL with non-string names");
        stack.push(globalRef(module as string, name as string));
        break;
      }
      case 0x52: {
        // REDUCE
        const args = asArgs(pop());
        const fn = pop();
        stack.push(call(fn, args));
        break;
      }
      case 0x81: {
        // NEWOBJ
        const args = asArgs(pop());
        const cls = pop();
        stack.push(newObj(cls, args));
        break;
      }
      case 0x92: {
        // NEWOBJ_EX (keyword arguments are kept with the placeholder's arguments)
        const kwargs = pop();
        const args = asArgs(pop());
        const cls = pop();
        vm.charge(args.length);
        stack.push(newObj(cls, kwargs instanceof Map && kwargs.size ? [...args, kwargs] : args));
        break;
      }
      case 0x69: {
        // INST: a call of module.name with the marked arguments
        const module = line();
        const name = line();
        const args = popMark();
        stack.push(call(globalRef(module, name), args));
        break;
      }
      case 0x6f: {
        // OBJ: a call of the first marked item with the rest
        const items = popMark();
        if (items.length === 0) fail("OBJ without a class");
        stack.push(call(items[0], items.slice(1)));
        break;
      }
      case 0x62: {
        // BUILD
        const state = pop();
        const obj = top();
        if (obj instanceof PyObject) obj.state = state;
        else if (isBuildable(obj)) obj.setState(state);
        else if (!(obj instanceof Map)) fail(`BUILD on a ${describe(obj)}`);
        break;
      }
      case 0x50: // PERSID
        stack.push(persistent(line()));
        break;
      case 0x51: // BINPERSID
        stack.push(persistent(pop()));
        break;
      case 0x82:
      case 0x83:
      case 0x84:
        throw new UnsafePickleError("copyreg extension", `${where}refusing to load: the pickle uses the copyreg extension registry (EXT opcodes)`);
      case 0x97:
      case 0x98:
        fail("the pickle uses out-of-band buffers, which torch.save never writes");
        break;
      default:
        fail(`unknown pickle opcode 0x${op.toString(16).padStart(2, "0")} at offset ${pos - 1} (corrupted data?)`);
    }
  }
}

/** A short description of a value for messages ("int 3", "argparse.Namespace", "list of 4 items"). */
export function describe(v: unknown): string {
  if (v === null || v === undefined) return "None";
  if (typeof v === "boolean") return `bool ${v ? "True" : "False"}`;
  if (typeof v === "number") return Number.isInteger(v) ? `int ${v}` : `float ${v}`;
  if (typeof v === "bigint") return `int ${v}`;
  if (typeof v === "string") return `str ${JSON.stringify(v.length > 40 ? v.slice(0, 37) + "..." : v)}`;
  if (v instanceof Uint8Array) return `bytes of ${v.length}`;
  if (v instanceof PyObject) return v.cls.qualname;
  if (v instanceof PyGlobal) return v.qualname;
  if (v instanceof NumpyArray) return `numpy array [${v.shape}]`;
  if (v instanceof NumpyDType) return `numpy dtype ${v.kind}`;
  if (v instanceof Map) return `dict of ${v.size} entries`;
  if (v instanceof Set) return `set of ${v.size} items`;
  if (Array.isArray(v)) return `${Object.isFrozen(v) ? "tuple" : "list"} of ${v.length} items`;
  return (v as object).constructor?.name ?? typeof v;
}
