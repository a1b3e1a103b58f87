// Atomic file writes: write a temporary file beside the target, flush it, rename it over the target. A crash, a
// Ctrl-C or a full disk leaves either the old file or the new one, never a half-written file under the final name.
import { closeSync, existsSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { InputError } from "../errors.js";

/** Writes the data, or the chunks in order (produced lazily, so large files never sit in memory whole). */
export function writeFileAtomic(path: string, data: string | Uint8Array | Iterable<Uint8Array>): void {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
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
    renameSync(tmp, path);
  } catch (e) {
    if (fd !== undefined) closeSync(fd);
    rmSync(tmp, { force: true });
    // Name the file the user asked for, not the temporary one beside it.
    const err = e as NodeJS.ErrnoException;
    if (err.code === "ENOENT" && !existsSync(dirname(path))) throw new InputError(`cannot write ${path}: the folder ${dirname(path)} does not exist`);
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

export const writeJsonAtomic = (path: string, value: unknown) => writeFileAtomic(path, JSON.stringify(value, null, 2) + "\n");
