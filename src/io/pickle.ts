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
  Array.isArray(v) || v instanceof Uint8Array
    ? v.length
    : v instanceof Map || v instanceof Set
      ? v.size
      : typeof v === "string"
        ? v.length
        : 1;

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

const safeInt = (v: bigint) =>
  v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;

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
    return this.dtype.decode(
      this.data,
      this.shape.reduce((a, b) => a * b, 1),
    );
  }
}

function bytesOf(v: unknown, what: string, vm: PickleVM): Uint8Array {
  if (v === undefined) return new Uint8Array(0);
  vm.charge(sizeOf(v));
  if (v instanceof Uint8Array) return new Uint8Array(v);
  if (Array.isArray(v) && v.every((x) => Number.isInteger(x) && x >= 0 && x < 256))
    return Uint8Array.from(v as number[]);
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
  if (!(dtype instanceof NumpyDType) || !(raw instanceof Uint8Array))
    throw new PickleError("numpy scalar with unexpected arguments");
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
  "datetime.datetime",
  "datetime.date",
  "datetime.time",
  "datetime.timedelta",
  "datetime.timezone",
  "decimal.Decimal",
  "fractions.Fraction",
  "builtins.complex",
  "builtins.slice",
  "builtins.range",
];
const PATHS = [
  "pathlib.Path",
  "pathlib.PosixPath",
  "pathlib.WindowsPath",
  "pathlib.PurePosixPath",
  "pathlib.PureWindowsPath",
];

/** A pickled path (its parts as arguments) as a string. */
function pathString(a: unknown[], vm: PickleVM): string {
  vm.charge(a.reduce<number>((n, x) => n + sizeOf(x), 0));
  return a
    .map((x) => (typeof x === "string" ? x : describe(x)))
    .join("/")
    .replace(/\/\/+/g, "/");
}

const GENERIC: Record<string, Callable> = {
  ...Object.fromEntries(
    INERT.map((q) => [
      q,
      (a: unknown[]) => new PyObject(new PyGlobal(q.slice(0, q.lastIndexOf(".")), q.slice(q.lastIndexOf(".") + 1)), a),
    ]),
  ),
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
      throw new UnsafePickleError(
        "copyreg._reconstructor",
        "refusing to load: copyreg._reconstructor with a base other than object",
      );
    }
    return new PyObject(cls, []);
  },
};

// Modules and builtins that exist to run code, open files or reach the system: even naming one is refused.
const DANGEROUS_MODULES = new Set([
  "os",
  "posix",
  "nt",
  "subprocess",
  "sys",
  "shutil",
  "socket",
  "importlib",
  "runpy",
  "pickle",
  "_pickle",
  "marshal",
  "ctypes",
  "pty",
  "webbrowser",
  "code",
  "codeop",
  "multiprocessing",
  "signal",
  "tempfile",
  "io",
  "_io",
  "commands",
  "popen2",
  "platform",
  "asyncio",
]);
const DANGEROUS_BUILTINS = new Set([
  "eval",
  "exec",
  "execfile",
  "compile",
  "open",
  "getattr",
  "setattr",
  "delattr",
  "__import__",
  "globals",
  "locals",
  "vars",
  "input",
  "breakpoint",
  "apply",
  "file",
  "memoryview",
  "help",
  "exit",
  "quit",
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
// The virtual machine: a Machine holds the input, the stack with its marks, the memo, the work budget and the
// globals policy; each opcode group below is one function that returns its opcodes' handlers, and OPCODES, the
// table of all of them, drives the loop in unpickle().
// ---------------------------------------------------------------------------------------------------------------

const decoder = new TextDecoder("utf-8");

class Machine implements PickleVM {
  pos = 0;
  readonly stack: unknown[] = [];
  readonly marks: number[] = [];
  readonly memo = new Map<number, unknown>();
  /** Set by STOP. */
  result?: { value: unknown };
  private readonly dv: DataView;
  private readonly budget: number;
  private work = 0;
  // Dangerous globals are refused when used; one that is only named is refused at STOP, so none ever escapes.
  private named: PyGlobal | null = null;
  private readonly dangerous = new WeakSet<PyGlobal>();
  private readonly callables: Record<string, Callable>;
  /** The source prefix of error messages. */
  readonly where: string;

  constructor(
    readonly data: Uint8Array,
    private readonly opts: UnpickleOptions,
  ) {
    this.dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
    this.budget = WORK_BASE + WORK_PER_BYTE * data.length;
    this.callables = { ...GENERIC, ...opts.callables };
    this.where = opts.source ? `${opts.source}: ` : "";
  }

  fail(msg: string): never {
    throw new PickleError(`${this.where}${msg}`);
  }

  charge(units: number): void {
    this.work += units;
    if (this.work > this.budget) {
      this.fail(
        `unpickling takes more than ${this.budget} steps for ${this.data.length} bytes of pickle (values reused through the memo again and again); refusing`,
      );
    }
  }

  // ----- reading the input -----
  need(n: number): void {
    if (n < 0 || this.pos + n > this.data.length)
      this.fail(`pickle data is truncated (needs ${n} more bytes at offset ${this.pos})`);
  }
  u8(): number {
    this.need(1);
    return this.data[this.pos++];
  }
  u16(): number {
    this.need(2);
    return this.dv.getUint16((this.pos += 2) - 2, true);
  }
  u32(): number {
    this.need(4);
    return this.dv.getUint32((this.pos += 4) - 4, true);
  }
  i32(): number {
    this.need(4);
    return this.dv.getInt32((this.pos += 4) - 4, true);
  }
  u64(): number {
    this.need(8);
    const v = this.dv.getBigUint64(this.pos, true);
    this.pos += 8;
    if (v > BigInt(this.data.length)) this.fail(`pickle length ${v} exceeds the data`);
    return Number(v);
  }
  f64be(): number {
    this.need(8);
    return this.dv.getFloat64((this.pos += 8) - 8, false);
  }
  bytes(n: number): Uint8Array {
    this.need(n);
    return this.data.subarray((this.pos += n) - n, this.pos);
  }
  text(n: number): string {
    return decoder.decode(this.bytes(n));
  }
  line(): string {
    const end = this.data.indexOf(0x0a, this.pos);
    if (end < 0) this.fail("pickle data is truncated (missing end of line)");
    const s = decoder.decode(this.data.subarray(this.pos, end));
    this.pos = end + 1;
    return s;
  }

  // ----- the stack and the memo -----
  push(v: unknown): void {
    this.stack.push(v);
  }
  pop(): unknown {
    const { stack, marks } = this;
    if (stack.length === 0 || (marks.length && stack.length <= marks[marks.length - 1]))
      this.fail("pickle stack underflow");
    return stack.pop();
  }
  top(): unknown {
    if (this.stack.length === 0) this.fail("pickle stack underflow");
    return this.stack[this.stack.length - 1];
  }
  /** The items above the last MARK, removed from the stack with the mark. */
  popMark(): unknown[] {
    const m = this.marks.pop();
    if (m === undefined) this.fail("pickle MARK missing");
    this.charge(this.stack.length - m);
    return this.stack.splice(m);
  }
  memoGet(k: number): unknown {
    if (!this.memo.has(k)) this.fail(`pickle memo has no entry ${k}`);
    return this.memo.get(k);
  }

  // ----- globals, calls and objects (the rules of the file comment) -----
  globalRef(module: string, name: string): PyGlobal {
    const g = new PyGlobal(module, name);
    if (isDangerous(module, name)) {
      this.dangerous.add(g);
      this.named ??= g;
    }
    return g;
  }
  refuse(g: PyGlobal, verb: string, why: string): never {
    throw new UnsafePickleError(
      g.qualname,
      `${this.where}refusing to load: the checkpoint ${verb} ${displayName(g.module, g.name)}, ${why}`,
    );
  }
  /** At STOP: a dangerous global that was only named is refused too. */
  refuseNamed(): void {
    if (this.named) this.refuse(this.named, "references", RUNS_CODE);
  }
  call(fn: unknown, args: unknown[]): unknown {
    if (!(fn instanceof PyGlobal)) this.fail(`the pickle calls a value (${describe(fn)}) that is not a global`);
    if (this.dangerous.has(fn)) this.refuse(fn, "calls", RUNS_CODE);
    const impl = Object.hasOwn(this.callables, fn.qualname) ? this.callables[fn.qualname] : undefined;
    if (!impl)
      this.refuse(
        fn,
        "calls",
        "which is not one of the functions a state dict needs (cao2 never runs code from a checkpoint)",
      );
    this.charge(args.length);
    return this.withSource(() => impl(args, this));
  }
  newObj(cls: unknown, args: unknown[]): unknown {
    if (!(cls instanceof PyGlobal))
      this.fail(`the pickle instantiates a value (${describe(cls)}) that is not a global`);
    if (this.dangerous.has(cls)) this.refuse(cls, "instantiates", RUNS_CODE);
    // A class we implement (OrderedDict, set, ...) is built by our code; any other becomes an inert placeholder.
    this.charge(args.length);
    const impl = Object.hasOwn(this.callables, cls.qualname) ? this.callables[cls.qualname] : undefined;
    return impl ? this.withSource(() => impl(args, this)) : new PyObject(cls, args);
  }
  persistent(pid: unknown): unknown {
    const load = this.opts.persistentLoad;
    if (!load) this.fail("the pickle refers to external data (a persistent id) that this reader does not provide");
    return this.withSource(() => load(pid));
  }
  /** Errors from our global implementations get the source prefix too. */
  private withSource<T>(fn: () => T): T {
    try {
      return fn();
    } catch (e) {
      if (!(e instanceof PickleError) || e.message.startsWith(this.where)) throw e;
      throw e instanceof UnsafePickleError
        ? new UnsafePickleError(e.global, this.where + e.message)
        : new PickleError(this.where + e.message);
    }
  }

  // ----- filling containers -----
  setItems(target: unknown, items: unknown[]): void {
    this.charge(items.length);
    if (items.length % 2) this.fail("SETITEMS with an odd number of items");
    let m: Map<unknown, unknown>;
    if (target instanceof Map) m = target;
    else if (target instanceof PyObject) m = target.dictItems ??= new Map();
    else return this.fail(`SETITEM on a ${describe(target)}`);
    for (let i = 0; i < items.length; i += 2) m.set(items[i], items[i + 1]);
  }
  appendItems(target: unknown, items: unknown[]): void {
    this.charge(items.length);
    const list =
      Array.isArray(target) && !Object.isFrozen(target)
        ? target
        : target instanceof PyObject
          ? (target.listItems ??= [])
          : null;
    if (!list) return this.fail(`APPEND on a ${describe(target)}`);
    for (const x of items) list.push(x);
  }
  addItems(target: unknown, items: unknown[]): void {
    this.charge(items.length);
    if (!(target instanceof Set)) this.fail(`ADDITEMS on a ${describe(target)}`);
    for (const x of items) target.add(x);
  }

  // ----- literals -----
  intText(s: string): number | bigint {
    const t = s.trim().replace(/L$/, "");
    if (t.length > MAX_INT_DIGITS + 1)
      this.fail(`integer literal of ${t.length} digits in pickle (at most ${MAX_INT_DIGITS})`);
    if (!/^[-+]?\d+$/.test(t)) this.fail(`bad integer literal '${s.slice(0, 40)}' in pickle`);
    return safeInt(BigInt(t));
  }
  /** A length field that must not be negative. */
  length(n: number, what: string): number {
    if (n < 0) this.fail(`negative ${what} length`);
    return n;
  }
}

const RUNS_CODE = "which can run code; loading a checkpoint never runs code from the file";

/** Two's complement little-endian, read through a hex string (linear time; a byte-wise BigInt loop is quadratic). */
function longLE(b: Uint8Array): number | bigint {
  if (b.length === 0) return 0;
  let v = BigInt(`0x${Buffer.from(b).reverse().toString("hex")}`);
  if (b[b.length - 1] & 0x80) v -= 1n << BigInt(8 * b.length);
  return safeInt(v);
}

const tuple = (items: unknown[]) => Object.freeze(items);

/** What one opcode does to the machine (its argument bytes, if any, are read by the handler). */
type Op = (m: Machine) => void;
type OpGroup = Record<number, Op>;

/** Protocol framing, STOP and the stack's own operations. */
function controlOps(): OpGroup {
  return {
    0x80: (m) => void (m.u8() > 5 && m.fail("pickle protocol newer than 5")), // PROTO
    0x95: (m) => void m.bytes(8), // FRAME (length only; the data follows inline)
    0x2e: (m) => {
      // STOP
      if (m.stack.length === 0) m.fail("pickle STOP with an empty stack");
      m.refuseNamed();
      m.result = { value: m.stack[m.stack.length - 1] };
    },
    0x28: (m) => void m.marks.push(m.stack.length), // MARK
    0x30: (m) => {
      // POP (of an item, or of a MARK with nothing above it)
      if (m.marks.length && m.marks[m.marks.length - 1] === m.stack.length) m.marks.pop();
      else m.pop();
    },
    0x31: (m) => void m.popMark(), // POP_MARK
    0x32: (m) => m.push(m.top()), // DUP
  };
}

/** None, booleans, integers and floats. */
function numberOps(): OpGroup {
  return {
    0x4e: (m) => m.push(null), // NONE
    0x88: (m) => m.push(true), // NEWTRUE
    0x89: (m) => m.push(false), // NEWFALSE
    0x49: (m) => {
      // INT (protocol 0; "01"/"00" are True/False)
      const s = m.line();
      m.push(s === "01" ? true : s === "00" ? false : m.intText(s));
    },
    0x4a: (m) => m.push(m.i32()), // BININT
    0x4b: (m) => m.push(m.u8()), // BININT1
    0x4d: (m) => m.push(m.u16()), // BININT2
    0x4c: (m) => m.push(m.intText(m.line())), // LONG
    0x8a: (m) => m.push(longLE(m.bytes(m.u8()))), // LONG1
    0x8b: (m) => m.push(longLE(m.bytes(m.length(m.i32(), "LONG4")))), // LONG4
    0x46: (m) => {
      // FLOAT
      const s = m.line().trim();
      const v = Number(s);
      if (Number.isNaN(v) && !/^[-+]?nan$/i.test(s)) m.fail(`bad float literal '${s}' in pickle`);
      m.push(v);
    },
    0x47: (m) => m.push(m.f64be()), // BINFLOAT (big-endian)
  };
}

/** Text and bytes. Python 2 str (BINSTRING, SHORT_BINSTRING) is decoded as UTF-8 text, as torch.load does. */
function stringOps(): OpGroup {
  return {
    0x58: (m) => m.push(m.text(m.u32())), // BINUNICODE
    0x8c: (m) => m.push(m.text(m.u8())), // SHORT_BINUNICODE
    0x8d: (m) => m.push(m.text(m.u64())), // BINUNICODE8
    0x56: (m) => {
      // UNICODE (raw-unicode-escape)
      const escaped = /\\u([0-9a-fA-F]{4})|\\U([0-9a-fA-F]{8})/g;
      m.push(
        m.line().replace(escaped, (_, a: string, b: string) => {
          const c = parseInt(a ?? b, 16);
          return c <= 0x10ffff ? String.fromCodePoint(c) : m.fail(`bad escape \\U${b} in a pickled string`);
        }),
      );
    },
    0x54: (m) => m.push(m.text(m.length(m.i32(), "BINSTRING"))), // BINSTRING
    0x55: (m) => m.push(m.text(m.u8())), // SHORT_BINSTRING
    0x53: (m) => {
      // STRING: a quoted literal; escapes other than none are not supported
      const s = m.line().trim();
      const q = s[0];
      if (s.length < 2 || (q !== "'" && q !== '"') || s[s.length - 1] !== q || s.includes("\\"))
        m.fail(`unsupported STRING literal in pickle`);
      m.push(s.slice(1, -1));
    },
    0x42: (m) => m.push(new Uint8Array(m.bytes(m.u32()))), // BINBYTES
    0x43: (m) => m.push(new Uint8Array(m.bytes(m.u8()))), // SHORT_BINBYTES
    0x8e: (m) => m.push(new Uint8Array(m.bytes(m.u64()))), // BINBYTES8
    0x96: (m) => m.push(new Uint8Array(m.bytes(m.u64()))), // BYTEARRAY8
  };
}

/** Lists, tuples, dicts and sets. */
function containerOps(): OpGroup {
  return {
    0x5d: (m) => m.push([]), // EMPTY_LIST
    0x6c: (m) => m.push(m.popMark()), // LIST
    0x61: (m) => {
      // APPEND
      const v = m.pop();
      m.appendItems(m.top(), [v]);
    },
    0x65: (m) => {
      // APPENDS
      const items = m.popMark();
      m.appendItems(m.top(), items);
    },
    0x29: (m) => m.push(tuple([])), // EMPTY_TUPLE
    0x74: (m) => m.push(tuple(m.popMark())), // TUPLE
    0x85: (m) => m.push(tuple([m.pop()])), // TUPLE1
    0x86: (m) => {
      // TUPLE2
      const b = m.pop();
      m.push(tuple([m.pop(), b]));
    },
    0x87: (m) => {
      // TUPLE3
      const c = m.pop();
      const b = m.pop();
      m.push(tuple([m.pop(), b, c]));
    },
    0x7d: (m) => m.push(new Map()), // EMPTY_DICT
    0x64: (m) => {
      // DICT
      const d = new Map();
      m.setItems(d, m.popMark());
      m.push(d);
    },
    0x73: (m) => {
      // SETITEM
      const v = m.pop();
      const k = m.pop();
      m.setItems(m.top(), [k, v]);
    },
    0x75: (m) => {
      // SETITEMS
      const items = m.popMark();
      m.setItems(m.top(), items);
    },
    0x8f: (m) => m.push(new Set()), // EMPTY_SET
    0x90: (m) => {
      // ADDITEMS
      const items = m.popMark();
      m.addItems(m.top(), items);
    },
    0x91: (m) => m.push(new Set(m.popMark())), // FROZENSET
  };
}

/** The memo: values kept by index for later reuse. */
function memoOps(): OpGroup {
  const get = (m: Machine, k: number) => m.push(m.memoGet(k));
  return {
    0x70: (m) => void m.memo.set(Number(m.intText(m.line())), m.top()), // PUT
    0x71: (m) => void m.memo.set(m.u8(), m.top()), // BINPUT
    0x72: (m) => void m.memo.set(m.u32(), m.top()), // LONG_BINPUT
    0x94: (m) => void m.memo.set(m.memo.size, m.top()), // MEMOIZE
    0x67: (m) => get(m, Number(m.intText(m.line()))), // GET
    0x68: (m) => get(m, m.u8()), // BINGET
    0x6a: (m) => get(m, m.u32()), // LONG_BINGET
  };
}

/** Globals, calls, instances, BUILD and persistent ids: every opcode that would make Python run something. */
function objectOps(): OpGroup {
  const args = (m: Machine): unknown[] => {
    const v = m.pop();
    return Array.isArray(v) ? v : m.fail("pickle call arguments are not a tuple");
  };
  return {
    0x63: (m) => m.push(m.globalRef(m.line(), m.line())), // GLOBAL
    0x93: (m) => {
      // STACK_GLOBAL
      const name = m.pop();
      const module = m.pop();
      if (typeof module !== "string" || typeof name !== "string") return m.fail("STACK_GLOBAL with non-string names");
      m.push(m.globalRef(module, name));
    },
    0x52: (m) => {
      // REDUCE
      const a = args(m);
      m.push(m.call(m.pop(), a));
    },
    0x81: (m) => {
      // NEWOBJ
      const a = args(m);
      m.push(m.newObj(m.pop(), a));
    },
    0x92: (m) => {
      // NEWOBJ_EX (keyword arguments are kept with the placeholder's arguments)
      const kwargs = m.pop();
      const a = args(m);
      const cls = m.pop();
      m.charge(a.length);
      m.push(m.newObj(cls, kwargs instanceof Map && kwargs.size ? [...a, kwargs] : a));
    },
    0x69: (m) => {
      // INST: a call of module.name with the marked arguments
      const g = m.globalRef(m.line(), m.line());
      m.push(m.call(g, m.popMark()));
    },
    0x6f: (m) => {
      // OBJ: a call of the first marked item with the rest
      const items = m.popMark();
      if (items.length === 0) m.fail("OBJ without a class");
      m.push(m.call(items[0], items.slice(1)));
    },
    0x62: (m) => {
      // BUILD
      const state = m.pop();
      const obj = m.top();
      if (obj instanceof PyObject) obj.state = state;
      else if (isBuildable(obj)) obj.setState(state);
      else if (!(obj instanceof Map)) m.fail(`BUILD on a ${describe(obj)}`);
    },
    0x50: (m) => m.push(m.persistent(m.line())), // PERSID
    0x51: (m) => m.push(m.persistent(m.pop())), // BINPERSID
  };
}

/** Opcodes torch.save never writes and that would reach outside the pickle. */
function refusedOps(): OpGroup {
  const extension = (m: Machine) => {
    throw new UnsafePickleError(
      "copyreg extension",
      `${m.where}refusing to load: the pickle uses the copyreg extension registry (EXT opcodes)`,
    );
  };
  const buffers = (m: Machine) => m.fail("the pickle uses out-of-band buffers, which torch.save never writes");
  return { 0x82: extension, 0x83: extension, 0x84: extension, 0x97: buffers, 0x98: buffers };
}

/** Every opcode of protocols 0-5 by its byte. */
const OPCODES: readonly (Op | undefined)[] = (() => {
  const table: (Op | undefined)[] = new Array(256);
  for (const group of [controlOps(), numberOps(), stringOps(), containerOps(), memoOps(), objectOps(), refusedOps()]) {
    for (const [op, run] of Object.entries(group)) table[Number(op)] = run;
  }
  return table;
})();

/** Runs a pickle and returns the value it builds. Throws PickleError (or UnsafePickleError) on anything refused. */
export function unpickle(data: Uint8Array, opts: UnpickleOptions = {}): unknown {
  const m: Machine = new Machine(data, opts);
  while (!m.result) {
    const op = m.u8();
    m.charge(1);
    const run = OPCODES[op];
    if (!run)
      m.fail(`unknown pickle opcode 0x${op.toString(16).padStart(2, "0")} at offset ${m.pos - 1} (corrupted data?)`);
    run(m);
  }
  return m.result.value;
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
