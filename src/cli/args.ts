import { InputError } from "../errors.js";

// A small declarative flag parser shared by every command: typed flags with defaults and help text, `--flag value`
// and `--flag=value`, booleans as `--flag` / `--no-flag`, and usage errors that name the flag (exit code 2).

/** A bad flag or argument. */
export class UsageError extends InputError {}

type Kind = "string" | "number" | "int" | "boolean" | "list" | "ints";

export interface FlagSpec {
  type: Kind;
  help: string;
  default?: string | number | boolean | string[] | number[];
  /** Allowed values for string flags. */
  choices?: readonly string[];
  /** Shown instead of the default in --help (e.g. "from preset"). */
  defaultText?: string;
  /** Smallest accepted value of a number, int or ints flag (inclusive, or exclusive with `exclusiveMin`). */
  min?: number;
  /** The value must be greater than `min` (a learning rate > 0). */
  exclusiveMin?: boolean;
  /** Largest accepted value (inclusive). */
  max?: number;
  /** Checks (and may normalise) a typed string value; throws an InputError naming the flag (given as "--name"). */
  check?: (value: string, flag: string) => string;
}

export type FlagSpecs = Record<string, FlagSpec>;

type ValueOf<S extends FlagSpec> = S["type"] extends "boolean"
  ? boolean
  : S["type"] extends "number" | "int"
    ? number
    : S["type"] extends "list"
      ? string[]
      : S["type"] extends "ints"
        ? number[]
        : string;

type Camel<S extends string> = S extends `${infer A}-${infer B}` ? `${A}${Capitalize<Camel<B>>}` : S;

/** Flags by camelCase name; those with a default are always set. */
export type Parsed<S extends FlagSpecs> = {
  [K in keyof S as Camel<K & string>]: S[K] extends { default: unknown } ? ValueOf<S[K]> : ValueOf<S[K]> | undefined;
} & { _: string[]; given: Set<string> };

const camel = (s: string) => s.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());

/** Parses argv against the specs; positional arguments land in `_`, the flags the user typed in `given`. */
export function parseArgs<S extends FlagSpecs>(argv: readonly string[], specs: S): Parsed<S> {
  const out: Record<string, unknown> = { _: [] as string[], given: new Set<string>() };
  for (const [name, s] of Object.entries(specs)) if (s.default !== undefined) out[camel(name)] = s.default;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--") {
      (out._ as string[]).push(...argv.slice(i + 1));
      break;
    }
    if (!a.startsWith("--")) {
      if (a.startsWith("-") && a.length > 1 && !/^-\d/.test(a))
        throw new UsageError(`unknown flag '${a}' (flags start with --; see --help)`);
      (out._ as string[]).push(a);
      continue;
    }
    let name = a.slice(2);
    let value: string | undefined;
    const eq = name.indexOf("=");
    if (eq >= 0) {
      value = name.slice(eq + 1);
      name = name.slice(0, eq);
    }
    let spec = specs[name];
    if (!spec && name.startsWith("no-") && specs[name.slice(3)]?.type === "boolean" && value === undefined) {
      out[camel(name.slice(3))] = false;
      (out.given as Set<string>).add(name.slice(3));
      continue;
    }
    if (!spec) throw new UsageError(`unknown flag '--${name}'${suggest(name, Object.keys(specs))} (see --help)`);
    (out.given as Set<string>).add(name);
    if (spec.type === "boolean") {
      if (value === undefined) out[camel(name)] = true;
      else if (value === "true" || value === "false") out[camel(name)] = value === "true";
      else throw new UsageError(`--${name} takes no value or true/false, got '${value}'`);
      continue;
    }
    if (value === undefined) {
      if (i + 1 >= argv.length) throw new UsageError(`--${name} needs a value (${spec.help})`);
      // A forgotten value must not swallow the next flag; a value that starts with "--" is written --name=value.
      if (argv[i + 1].startsWith("--"))
        throw new UsageError(
          `--${name} needs a value (${spec.help}), got the flag '${argv[i + 1]}' (write --${name}=${argv[i + 1]} if that is the value)`,
        );
      value = argv[++i];
    }
    out[camel(name)] = convert(name, spec, value);
  }
  return out as Parsed<S>;

  function convert(name: string, s: FlagSpec, v: string): unknown {
    switch (s.type) {
      case "number": {
        const n = Number(v);
        if (v.trim() === "" || !Number.isFinite(n)) throw new UsageError(`--${name} expects a number, got '${v}'`);
        return inRange(name, s, n);
      }
      case "int":
        return inRange(name, s, integer(name, v, "an integer"));
      case "list":
      case "ints": {
        // An empty list is refused: `--classes ''` is a mistake (a forgotten value), never a way to say "all".
        const items = v
          .split(",")
          .map((x) => x.trim())
          .filter((x) => x.length > 0);
        if (items.length === 0) throw new UsageError(`--${name} needs at least one value (${s.help}), got '${v}'`);
        return s.type === "list"
          ? items
          : items.map((x) => inRange(name, s, integer(name, x, "comma-separated integers")));
      }
      default:
        if (s.choices && !s.choices.includes(v))
          throw new UsageError(`--${name} must be one of ${s.choices.join(", ")}; got '${v}'`);
        return s.check ? s.check(v, `--${name}`) : v;
    }
  }
}

function integer(name: string, v: string, what: string): number {
  const n = Number(v);
  if (!/^-?\d+$/.test(v.trim()) || !Number.isSafeInteger(n))
    throw new UsageError(`--${name} expects ${what}, got '${v}'`);
  return n;
}

/** The accepted range of a number flag in words ("1..10000", "> 0", ">= 1"), or undefined when it has none. */
export function rangeText(s: FlagSpec): string | undefined {
  const { min, max } = s;
  if (min !== undefined && max !== undefined && !s.exclusiveMin) return `${min}..${max}`;
  const parts = [
    min !== undefined ? `${s.exclusiveMin ? ">" : ">="} ${min}` : "",
    max !== undefined ? `<= ${max}` : "",
  ].filter(Boolean);
  return parts.length ? parts.join(" and ") : undefined;
}

function inRange(name: string, s: FlagSpec, n: number): number {
  const low = s.min !== undefined && (s.exclusiveMin ? n <= s.min : n < s.min);
  const high = s.max !== undefined && n > s.max;
  if (low || high)
    throw new UsageError(
      `--${name} must be ${s.min !== undefined && s.max !== undefined && !s.exclusiveMin ? "in " : ""}${rangeText(s)}, got ${n}`,
    );
  return n;
}

function suggest(name: string, known: string[]): string {
  const close = known.filter((k) => k.includes(name) || name.includes(k) || editDistance(k, name) <= 2);
  return close.length ? ` (did you mean --${close[0]}?)` : "";
}

function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++)
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
  }
  return d[a.length][b.length];
}

/** A command's flags, or undefined once its help is printed for --help. Up to `positionals` arguments besides the
 * flags are accepted (in `_`); one more is an error, so a mistyped value never passes silently. */
export function parseCommand<S extends FlagSpecs>(
  argv: readonly string[],
  usage: string,
  description: string,
  specs: S,
  positionals = 0,
): Parsed<S> | undefined {
  const end = argv.indexOf("--");
  if ((end < 0 ? argv : argv.slice(0, end)).includes("--help")) {
    process.stdout.write(formatHelp(usage, description, specs));
    return undefined;
  }
  const a = parseArgs(argv, specs);
  if (a._.length > positionals) throw new UsageError(`unexpected argument '${a._[positionals]}' (see --help)`);
  return a;
}

/** Help text: usage line, description, then every flag with its type and default. */
export function formatHelp(usage: string, description: string, specs: FlagSpecs): string {
  const rows = Object.entries(specs).map(([name, s]) => {
    const arg = s.type === "boolean" ? "" : ` <${s.choices ? s.choices.join("|") : s.type}>`;
    const def =
      s.defaultText ??
      (s.default === undefined ? "" : Array.isArray(s.default) ? s.default.join(",") : String(s.default));
    const range = rangeText(s);
    return [`  --${name}${arg}`, `${s.help}${range ? ` [${range}]` : ""}${def ? ` [default: ${def}]` : ""}`];
  });
  const w = Math.min(40, Math.max(...rows.map((r) => r[0].length)) + 2);
  const lines = rows.map(([l, r]) => (l.length + 2 > w ? `${l}\n${" ".repeat(w)}${r}` : l.padEnd(w) + r));
  return `Usage: ${usage}\n\n${description}\n\nFlags:\n${lines.join("\n")}\n  --help${" ".repeat(Math.max(2, w - 8))}Show this help\n`;
}
