// Loading the checkpoints the PyTorch world has, whatever their extension: safetensors files and torch.save zip
// archives (.pt/.pth/.bin/.ckpt), told apart by their first bytes. A checkpoint opens as an index of tensors (key,
// dtype, shape) without reading tensor data; tensors are then read one at a time, either as new tensors
// (loadStateDict) or straight into a model's existing tensors (loadInto: peak memory = the model + the file pages of
// the one tensor being copied; see tensor-read.ts).
//
// Which tensors form the state dict:
// - unwrap "auto" (default): a top level that holds tensors itself is the state dict; otherwise an "ema" entry that
//   holds tensors (the training checkpoints of DiT and Minimax, {"model", "ema", "opt", "args"}, are sampled from
//   their EMA weights); otherwise the one entry among WRAPPER_KEYS ("model", "state_dict", ...) that holds tensors
//   (several -> an error asking to choose); otherwise everything is flattened. unwrap "<key>" takes that entry
//   ("model" for the raw weights of such a checkpoint), unwrap "none" the whole top level.
// - Nested dicts are flattened with "." ({"encoder": {"w": t}} -> "encoder.w"), as PyTorch names submodules. A whole
//   pickled nn.Module (torch.save(model)) is read as its parameters and persistent buffers.
// - stripPrefix "auto" (default) removes "module." (DataParallel/DDP) or "_orig_mod." (torch.compile) when every key
//   has it; a string removes that prefix where present; "" keeps keys as they are.
// - Non-tensor entries (epoch numbers, optimizer hyper-parameters, argparse.Namespace placeholders, ...) are not
//   loaded; they are listed in `skipped` with a description so callers can report them.
//
// Bounds (docs/security.md): a pickle can share one sub-dict between many paths (a DAG through the memo), so the
// entries that flattening would give are counted first, each container once, and refused past twice the distinct
// entries; every tensor's materialised size is checked when the checkpoint is opened, before any model is built from
// its shapes: each at most maxTensorBytes, all together at most the file's size plus maxTensorBytes (views that
// repeat or share storage can exceed the bytes stored, by that much and no more).
import { closeSync, readSync, statSync } from "node:fs";
import { InputError } from "../errors.js";
import { type DType, isFloating, ITEM_SIZE, type Tensor } from "../torch/index.js";
import { openRegular } from "./files.js";
import { formatBytes, overLimit, readLimits } from "./limits.js";
import { describe, PyObject } from "./pickle.js";
import { SafetensorsFile } from "./safetensors.js";
import { checkStateDict, type LoadReport } from "./state-dict.js";
import { LEGACY_FORMAT_HELP, TensorRef, TorchArchive } from "./torch-checkpoint.js";

export class CheckpointError extends InputError {
  constructor(file: string, msg: string) {
    super(`${file}: ${msg}`);
  }
}

export type CheckpointFormat = "safetensors" | "torch";

/** One tensor of a checkpoint, not read yet. */
export interface TensorEntry {
  readonly key: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly numel: number;
  /** Reads the tensor into a new contiguous CPU tensor. */
  load(): Tensor;
  /** Reads the tensor into an existing tensor of the same shape (converting dtype and device). */
  loadInto(dst: Tensor): void;
}

export interface SkippedEntry {
  key: string;
  /** What it holds, e.g. "int 10", "argparse.Namespace", "dict of 2 entries, 6 tensors inside". */
  kind: string;
}

export interface OpenOptions {
  /** "auto" (default), "none", or the key of the entry that holds the state dict (dots walk into nested dicts). */
  unwrap?: string;
  /** "auto" (default), "" (keep keys), or a prefix to remove where present. */
  stripPrefix?: string;
  /** torch archives: check each storage's CRC-32 before reading it (default false, as torch.load). */
  verifyCrc?: boolean;
  /**
   * Largest materialised tensor in bytes (default: readLimits().maxTensorBytes, i.e. --max-tensor-bytes). Checked when
   * the file is opened; Infinity lists any tensor whose element count is below 2^53 (inspect reads no tensor data).
   */
  maxTensorBytes?: number;
}

export interface Checkpoint {
  readonly path: string;
  readonly format: CheckpointFormat;
  /** Tensors by final key (after unwrapping and prefix stripping), in file order. */
  readonly tensors: Map<string, TensorEntry>;
  readonly skipped: SkippedEntry[];
  /** The entry the state dict was taken from, or null for the top level. */
  readonly unwrapped: string | null;
  /** The prefix removed from the keys (chosen automatically: from every key), or null. */
  readonly strippedPrefix: string | null;
  /** safetensors __metadata__ (empty for torch archives). */
  readonly metadata: Record<string, string>;
  close(): void;
}

/** Entries that training scripts wrap a state dict in (DiT, timm, Lightning-style, DeepSpeed, tutorials). */
export const WRAPPER_KEYS = ["model", "state_dict", "ema", "model_ema", "state_dict_ema", "model_state_dict", "module"];
const AUTO_PREFIXES = ["module.", "_orig_mod."];

/** Tells the format from the first bytes (never the extension). Legacy torch files get an error saying how to convert. */
export function detectFormat(path: string): CheckpointFormat {
  const { fd, size } = openRegular(path);
  let head: Buffer;
  try {
    head = Buffer.alloc(Math.min(size, 9));
    readSync(fd, head, 0, head.length, 0);
  } finally {
    closeSync(fd);
  }
  if (size === 0) throw new CheckpointError(path, "the file is empty");
  if (head.length >= 4 && head.readUInt32LE(0) === 0x04034b50) return "torch";
  if (head[0] === 0x80 && head.length >= 2 && head[1] >= 2 && head[1] <= 5)
    throw new CheckpointError(path, LEGACY_FORMAT_HELP);
  if (head.length === 9 && head[8] === 0x7b) return "safetensors";
  throw new CheckpointError(
    path,
    "not a checkpoint format cao2 reads (expected safetensors or a torch.save zip archive: .pt/.pth/.bin/.ckpt)",
  );
}

/** Opens a checkpoint as an index of its state-dict tensors; nothing is read until a tensor is loaded. Close it. */
export function openCheckpoint(path: string, opts: OpenOptions = {}): Checkpoint {
  const ck = detectFormat(path) === "safetensors" ? openSafetensors(path, opts) : openTorch(path, opts);
  try {
    checkSizes(ck, opts.maxTensorBytes ?? readLimits().maxTensorBytes);
  } catch (e) {
    ck.close();
    throw e;
  }
  return ck;
}

/** Each tensor's materialised size within the limit, and all of them within the file's size plus the limit. */
function checkSizes(ck: Checkpoint, limit: number): void {
  if (limit === Infinity) return;
  let total = 0n;
  for (const e of ck.tensors.values()) {
    const bytes = BigInt(e.numel) * BigInt(ITEM_SIZE[e.dtype]);
    if (bytes > BigInt(limit))
      throw new CheckpointError(ck.path, overLimit(`tensor '${e.key}' (${e.dtype} [${e.shape}])`, bytes, limit));
    total += bytes;
  }
  const fileSize = BigInt(statSync(ck.path).size);
  if (total > fileSize + BigInt(limit)) {
    throw new CheckpointError(
      ck.path,
      `its tensors would take ${formatBytes(total)} in memory from ${formatBytes(fileSize)} of file (views repeating stored values), more than the file plus the ${formatBytes(limit)} limit (--max-tensor-bytes)`,
    );
  }
}

export interface LoadOptions extends OpenOptions {
  /** Convert floating-point tensors to this dtype (integer and bool buffers keep theirs). */
  dtype?: DType;
  /** Move tensors to this device ("cpu" default, "cuda:0", ...). */
  device?: string;
}

/** Reads a checkpoint's state dict into new tensors, by key. */
export function loadStateDict(path: string, opts: LoadOptions = {}): Map<string, Tensor> {
  const ck = openCheckpoint(path, opts);
  const out = new Map<string, Tensor>();
  try {
    for (const [k, e] of ck.tensors) {
      let t = e.load();
      if (opts.dtype && opts.dtype !== t.dtype && isFloating(t.dtype) && isFloating(opts.dtype))
        t = replace(t, t.to(opts.dtype));
      if (opts.device && opts.device !== t.device) t = replace(t, t.to(opts.device));
      out.set(k, t);
    }
  } catch (e) {
    for (const t of out.values()) t.dispose();
    throw e;
  } finally {
    ck.close();
  }
  return out;
}

const replace = (old: Tensor, t: Tensor) => (old.dispose(), t);

export interface LoadIntoOptions extends OpenOptions {
  /** Missing and unexpected keys are errors (default true); wrong shapes always are. */
  strict?: boolean;
  /** Names the model in errors. */
  modelName?: string;
}

/**
 * Reads a checkpoint straight into existing tensors (a model's stateDict(): live parameters and buffers), one
 * tensor at a time, converting dtype and device as copy_ does. Keys and shapes are checked before anything is read.
 */
export function loadInto(
  target: ReadonlyMap<string, Tensor>,
  path: string,
  opts: LoadIntoOptions = {},
): LoadReport & { skipped: SkippedEntry[] } {
  const ck = openCheckpoint(path, opts);
  try {
    const report = checkStateDict(target, ck.tensors, opts.strict ?? true, opts.modelName ?? "the model");
    for (const [k, dst] of target) ck.tensors.get(k)?.loadInto(dst);
    return { ...report, skipped: ck.skipped };
  } finally {
    ck.close();
  }
}

// ---------------------------------------------------------------------------------------------------------------

function openSafetensors(path: string, opts: OpenOptions): Checkpoint {
  const f = SafetensorsFile.open(path);
  try {
    let names = f.keys();
    let unwrapped: string | null = null;
    const skipped: SkippedEntry[] = [];
    const unwrap = opts.unwrap ?? "auto";
    if (unwrap !== "auto" && unwrap !== "none") {
      // A flat file: an entry is the set of keys under "<unwrap>.".
      const p = `${unwrap}.`;
      const inside = names.filter((n) => n.startsWith(p));
      if (!inside.length) {
        const have = [...new Set(names.map((n) => `'${n.split(".")[0]}'`))];
        const listed =
          have.length > 8 ? `${have.slice(0, 8).join(", ")}, ... (${have.length} in all)` : have.join(", ") || "none";
        throw new CheckpointError(
          path,
          `no entry '${unwrap}' to take the state dict from (no key starts with '${p}'; top-level names: ${listed})`,
        );
      }
      for (const n of names) if (!n.startsWith(p)) skipped.push({ key: n, kind: "tensor outside the chosen entry" });
      names = inside;
      unwrapped = unwrap;
    }
    const entries = new Map<string, TensorEntry>();
    const strip = choosePrefix(unwrapped ? names.map((n) => n.slice(unwrapped!.length + 1)) : names, opts.stripPrefix);
    for (const name of names) {
      const info = f.info(name);
      const key = finalKey(unwrapped ? name.slice(unwrapped.length + 1) : name, strip);
      addEntry(path, entries, {
        key,
        dtype: info.dtype,
        shape: info.shape,
        numel: info.numel,
        load: () => f.get(name),
        loadInto: (dst) => f.getInto(name, dst),
      });
    }
    return {
      path,
      format: "safetensors",
      tensors: entries,
      skipped,
      unwrapped,
      strippedPrefix: strip || null,
      metadata: f.metadata,
      close: () => f.close(),
    };
  } catch (e) {
    f.close();
    throw e;
  }
}

function openTorch(path: string, opts: OpenOptions): Checkpoint {
  const a = TorchArchive.open(path, { verifyCrc: opts.verifyCrc });
  try {
    const root = a.root;
    if (root instanceof TensorRef) throw new CheckpointError(path, "the file holds a single tensor, not a state dict");
    if (!isContainer(root)) throw new CheckpointError(path, `the file holds a ${describe(root)}, not a state dict`);
    const skipped: SkippedEntry[] = [];
    const { base, name } = chooseBase(path, root, opts.unwrap ?? "auto");
    const counts = new Map<unknown, Count>();
    if (name !== null) {
      // Report what sits beside the chosen entry (epoch, optimizer, args, ...).
      for (const [k, v] of children(root))
        if (String(k) !== name.split(".")[0]) skipped.push({ key: String(k), kind: summarize(v, counts) });
    }
    const walk = count(base, counts, new Set());
    const distinct = distinctEntries(base);
    const budget = { left: 2 * distinct + 10_000 };
    if (walk.entries > budget.left) throw new CheckpointError(path, flattenTooLarge(walk.entries, distinct));
    const refs = new Map<string, TensorRef>();
    flatten({ path, out: refs, skipped, onPath: new Set(), budget, distinct, counts }, base, "");
    const strip = choosePrefix([...refs.keys()], opts.stripPrefix);
    const entries = new Map<string, TensorEntry>();
    for (const [k, ref] of refs) {
      const p = ref.problem();
      if (p) throw new CheckpointError(path, `tensor '${k}': ${p}`);
      const key = finalKey(k, strip);
      addEntry(path, entries, {
        key,
        dtype: ref.dtype,
        shape: ref.shape,
        numel: ref.numel,
        load: () => a.load(ref, k),
        loadInto: (dst) => a.loadInto(ref, k, dst),
      });
    }
    return {
      path,
      format: "torch",
      tensors: entries,
      skipped,
      unwrapped: name,
      strippedPrefix: strip || null,
      metadata: {},
      close: () => a.close(),
    };
  } catch (e) {
    a.close();
    throw e;
  }
}

/** A dict, or a whole pickled nn.Module (an inert placeholder whose state holds _parameters/_buffers/_modules). */
function isContainer(v: unknown): v is Map<unknown, unknown> | PyObject {
  return v instanceof Map || isModule(v);
}

function isModule(v: unknown): v is PyObject {
  return (
    v instanceof PyObject &&
    v.state instanceof Map &&
    v.state.get("_parameters") instanceof Map &&
    v.state.get("_modules") instanceof Map
  );
}

/** A container's entries: a dict's items, or a module's parameters, persistent buffers and submodules. */
function children(v: Map<unknown, unknown> | PyObject): [unknown, unknown][] {
  if (v instanceof Map) return [...v];
  const st = v.state as Map<string, unknown>;
  const nonPersistent = st.get("_non_persistent_buffers_set");
  const buffers = [...((st.get("_buffers") as Map<unknown, unknown> | undefined) ?? [])].filter(
    ([k]) => !(nonPersistent instanceof Set && nonPersistent.has(k)),
  );
  return [
    ...(st.get("_parameters") as Map<unknown, unknown>),
    ...buffers,
    ...(st.get("_modules") as Map<unknown, unknown>),
  ].filter(([, x]) => x !== null);
}

/** State dicts nest a few levels; a pickle nested deeper than this is refused rather than walked. */
const MAX_DEPTH = 64;

function holdsTensors(v: unknown, seen = new Set<unknown>(), depth = 0): boolean {
  if (v instanceof TensorRef) return true;
  if (!isContainer(v) || seen.has(v) || depth > MAX_DEPTH) return false;
  seen.add(v);
  return children(v).some(([, x]) => holdsTensors(x, seen, depth + 1));
}

function chooseBase(
  path: string,
  root: Map<unknown, unknown> | PyObject,
  unwrap: string,
): { base: unknown; name: string | null } {
  if (unwrap === "none") return { base: root, name: null };
  if (unwrap === "auto") {
    if (isModule(root) || children(root).some(([, v]) => v instanceof TensorRef)) return { base: root, name: null };
    const found = WRAPPER_KEYS.filter((k) => root instanceof Map && holdsTensors(root.get(k)));
    if (found.includes("ema")) return { base: (root as Map<unknown, unknown>).get("ema"), name: "ema" };
    if (found.length > 1) {
      throw new CheckpointError(
        path,
        `the file holds several state dicts (${found.map((k) => `'${k}'`).join(", ")}); choose one with the unwrap option (e.g. --unwrap ${found.includes("ema") ? "ema" : found[0]})`,
      );
    }
    return found.length
      ? { base: (root as Map<unknown, unknown>).get(found[0]), name: found[0] }
      : { base: root, name: null };
  }
  // An explicit key, possibly a dotted path into nested dicts.
  let v: unknown = root;
  for (const part of unwrap.split(".")) {
    const next = isContainer(v) ? children(v).find(([k]) => String(k) === part) : undefined;
    if (!next) {
      const keys = isContainer(root) ? children(root).map(([k]) => `'${String(k)}'`) : [];
      const have = keys.slice(0, 12).join(", ") + (keys.length > 12 ? `, ... (${keys.length} in all)` : "");
      throw new CheckpointError(
        path,
        `no entry '${unwrap}' to take the state dict from (top-level entries: ${have || "none"})`,
      );
    }
    v = next[1];
  }
  if (!holdsTensors(v)) throw new CheckpointError(path, `entry '${unwrap}' holds no tensors (${describe(v)})`);
  return { base: v, name: unwrap };
}

/** Tensors and leaves (all entries) that flattening a value gives, a shared container counted once per path. */
interface Count {
  tensors: number;
  entries: number;
}

/**
 * count() of a value in time linear in the distinct containers: each container's count is memoised, so a DAG of
 * shared sub-dicts 40 levels deep is counted in 40 steps, not 2^40 (the counts are doubles: far past 2^53 they are
 * approximate, which only matters for saying how far over a budget they are).
 */
function count(v: unknown, memo: Map<unknown, Count>, onPath: Set<unknown>): Count {
  if (v instanceof TensorRef) return { tensors: 1, entries: 1 };
  if (!isContainer(v) || onPath.has(v) || onPath.size >= MAX_DEPTH) return { tensors: 0, entries: 1 };
  const known = memo.get(v);
  if (known) return known;
  onPath.add(v);
  const c = { tensors: 0, entries: 0 };
  for (const [, x] of children(v)) {
    const cx = count(x, memo, onPath);
    c.tensors += cx.tensors;
    c.entries += cx.entries;
  }
  onPath.delete(v);
  memo.set(v, c);
  return c;
}

/** The entries of the distinct containers reachable from v (each container once, however often it is shared). */
function distinctEntries(v: unknown): number {
  const seen = new Set<unknown>();
  const stack = [v];
  let n = 0;
  while (stack.length) {
    const x = stack.pop();
    if (!isContainer(x) || seen.has(x)) continue;
    seen.add(x);
    const kids = children(x);
    n += kids.length;
    for (const [, y] of kids) stack.push(y);
  }
  return n;
}

const flattenTooLarge = (entries: number, distinct: number) =>
  `its nested containers would flatten to ${entries > 1e15 ? entries.toExponential(2) : entries} entries from ${distinct} distinct ones (the same sub-dicts reached through many paths); refusing to expand more than twice the distinct entries`;

interface FlattenState {
  path: string;
  out: Map<string, TensorRef>;
  skipped: SkippedEntry[];
  onPath: Set<unknown>;
  /** Values left to visit (count() checked the total first; this guards the walk itself). */
  budget: { left: number };
  distinct: number;
  counts: Map<unknown, Count>;
}

function flatten(st: FlattenState, v: unknown, key: string): void {
  const { path, out, skipped, onPath } = st;
  if (--st.budget.left < 0) throw new CheckpointError(path, flattenTooLarge(out.size + skipped.length, st.distinct));
  if (v instanceof TensorRef) {
    if (out.has(key)) throw new CheckpointError(path, `key '${key}' appears twice (once nested, once with dots)`);
    out.set(key, v);
    return;
  }
  if (!isContainer(v)) {
    skipped.push({ key: key || "(top level)", kind: describe(v) });
    return;
  }
  if (onPath.has(v)) {
    skipped.push({ key, kind: "a reference to an enclosing container" });
    return;
  }
  if (onPath.size >= MAX_DEPTH)
    throw new CheckpointError(path, `entry '${key}' is nested more than ${MAX_DEPTH} levels deep`);
  onPath.add(v);
  for (const [k, x] of children(v)) {
    if (typeof k !== "string" && typeof k !== "number") {
      skipped.push({ key: `${key}[${describe(k)}]`, kind: summarize(x, st.counts) });
      continue;
    }
    flatten(st, x, key ? `${key}.${k}` : String(k));
  }
  onPath.delete(v);
}

/** describe(), plus a tensor count for containers (memoised across calls: entries may share sub-dicts). */
function summarize(v: unknown, memo: Map<unknown, Count>): string {
  if (v instanceof TensorRef) return `tensor ${v.dtype} [${v.shape}]`;
  if (!isContainer(v)) return describe(v);
  const n = count(v, memo, new Set()).tensors;
  return `${describe(v)}${n ? `, ${n} tensors inside` : ""}`;
}

function choosePrefix(keys: string[], opt: string | undefined): string {
  if (opt === undefined || opt === "auto")
    return AUTO_PREFIXES.find((p) => keys.length > 0 && keys.every((k) => k.startsWith(p))) ?? "";
  return opt;
}

/** Adds an entry under its final key; two keys that become one after stripping are an error. */
function addEntry(path: string, entries: Map<string, TensorEntry>, e: TensorEntry): void {
  if (entries.has(e.key)) throw new CheckpointError(path, `two tensors become '${e.key}' after removing the prefix`);
  entries.set(e.key, e);
}

const finalKey = (k: string, strip: string) => (strip && k.startsWith(strip) ? k.slice(strip.length) : k);
