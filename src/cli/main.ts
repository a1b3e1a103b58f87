#!/usr/bin/env node
// The `cao2` command: dispatches to one module per command (src/cli/<command>.ts), each exporting `run(argv)`, loaded
// only when it runs, so `cao2 --help` loads no command code. Input errors print one line and exit 2; anything else
// is a bug (exit 1).
import { InputError, Interrupted } from "../errors.js";
import { type CommandName, SUMMARIES } from "./commands.js";

export interface Command {
  run(argv: string[]): Promise<number | void>;
}

const COMMANDS: Record<CommandName, () => Promise<Command>> = {
  inspect: () => import("./inspect.js"),
  convert: () => import("./convert.js"),
  baseline: () => import("./baseline.js"),
  evaluate: () => import("./evaluate.js"),
  distill: () => import("./distill.js"),
  sample: () => import("./sample.js"),
  accuracy: () => import("./accuracy.js"),
  figure: () => import("./figure.js"),
  report: () => import("./report.js"),
  train: () => import("./train.js"),
};

function usage(): string {
  const rows = Object.entries(SUMMARIES).map(([c, s]) => `  ${c.padEnd(12)}${s}`);
  return `Usage: cao2 <command> [flags]\n\nCommands:\n${rows.join("\n")}\n\nRun \`cao2 <command> --help\` for a command's flags.\n`;
}

/** System errors caused by the paths a user gave or the storage under them: reported on one line with the path,
 * like other input errors (exit 2), never as a crash. */
const FS_CODES: Record<string, string> = {
  ENOENT: "no such file or folder",
  EACCES: "permission denied",
  EPERM: "operation not permitted",
  EISDIR: "is a folder, expected a file",
  ENOTDIR: "not a folder",
  ENOTEMPTY: "folder not empty",
  ENOSPC: "no space left on the device",
  EDQUOT: "disk quota exceeded",
  EFBIG: "file too large for the file system",
  EROFS: "read-only file system",
  EEXIST: "already exists",
  ELOOP: "too many levels of symbolic links (a link loop?)",
  ENAMETOOLONG: "name too long",
  EMFILE: "too many open files",
  ENFILE: "too many open files in the system",
  EBUSY: "busy (in use by the system)",
  ETXTBSY: "busy (a running program)",
  EIO: "input/output error (a failing disk or network mount?)",
  ENXIO: "no such device (a socket or a device without a driver?)",
  ENODEV: "no such device",
  EXDEV: "on another file system than its destination",
  EMLINK: "too many links",
};

function fsMessage(e: unknown): string | undefined {
  const err = e as NodeJS.ErrnoException;
  if (!err || typeof err.code !== "string" || !(err.code in FS_CODES)) return undefined;
  return `${err.path ?? (err.syscall ? `(${err.syscall})` : "")}: ${FS_CODES[err.code]}`;
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === "--help" || name === "-h" || name === "help") {
    process.stdout.write(usage());
    return name ? 0 : 2;
  }
  const load = Object.hasOwn(COMMANDS, name) ? COMMANDS[name as CommandName] : undefined;
  if (!load) {
    process.stderr.write(`cao2: unknown command '${name}'\n\n${usage()}`);
    return 2;
  }
  try {
    const cmd = await load();
    return (await cmd.run(rest)) ?? 0;
  } catch (e) {
    if (e instanceof Interrupted) {
      process.stderr.write(`cao2 ${name}: ${e.message}\n`);
      return 130;
    }
    const msg = e instanceof InputError ? e.message : fsMessage(e);
    if (msg === undefined) throw e;
    process.stderr.write(`cao2 ${name}: error: ${msg}\n`);
    return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`cao2: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exitCode = 1;
  },
);
