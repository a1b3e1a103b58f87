// Atomic file writes: write a temporary file beside the target, flush it, rename it over the target. A crash, a
// Ctrl-C or a full disk leaves either the old file or the new one, never a half-written file under the final name.
// An exclusive create links the flushed temporary file to the target instead, which fails when the target exists:
// of several processes (on one machine or sharing a file system) exactly one creates it, with its whole content.
import { closeSync, existsSync, fsyncSync, linkSync, openSync, renameSync, rmSync, writeSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { basename, dirname, join } from "node:path";
import { InputError } from "../errors.js";

/** Writes the data, or the chunks in order (produced lazily, so large files never sit in memory whole). */
export function writeFileAtomic(path: string, data: string | Uint8Array | Iterable<Uint8Array>): void {
  placeAtomic(path, data, renameSync);
}

/** Creates `path` with the data unless it exists; false when another process created it first. */
export function createFileExclusive(path: string, data: string | Uint8Array): boolean {
  try {
    placeAtomic(path, data, (tmp, target) => {
      linkSync(tmp, target);
      rmSync(tmp);
    });
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw e;
  }
}

/** Name of the temporary files of atomic writes (hidden; a crash may leave one behind, never under the final name). */
export const isAtomicTemp = (name: string) => name.startsWith(".") && name.endsWith(".tmp");

function placeAtomic(
  path: string,
  data: string | Uint8Array | Iterable<Uint8Array>,
  place: (tmp: string, path: string) => void,
): void {
  // Unique across processes on several machines that share the folder (their pids may coincide).
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}-${randomBytes(4).toString("hex")}.tmp`);
  const chunks = typeof data === "string" ? [Buffer.from(data, "utf8")] : data instanceof Uint8Array ? [data] : data;
  let fd: number | undefined;
  try {
    fd = openSync(tmp, "w");
    for (const buf of chunks) {
      let done = 0;
      while (done < buf.length) done += writeSync(fd, buf, done, buf.length - done);
    }
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    place(tmp, path);
  } catch (e) {
    if (fd !== undefined) closeSync(fd);
    rmSync(tmp, { force: true });
    if ((e as NodeJS.ErrnoException).code === "EEXIST") throw e;
    // Name the file the user asked for, not the temporary one beside it.
    const err = e as NodeJS.ErrnoException;
    if (err.code === "ENOENT" && !existsSync(dirname(path)))
      throw new InputError(`cannot write ${path}: the folder ${dirname(path)} does not exist`);
    if (err.path === tmp) err.path = path;
    throw withPath(e, path);
  }
}

/** A system error met while writing `path` names it: write and flush errors (a full disk) carry no path of their own. */
export function withPath(e: unknown, path: string): unknown {
  const err = e as NodeJS.ErrnoException;
  if (err instanceof Error && typeof err.code === "string" && err.path === undefined) err.path = path;
  return e;
}

export const writeJsonAtomic = (path: string, value: unknown) =>
  writeFileAtomic(path, JSON.stringify(value, null, 2) + "\n");
