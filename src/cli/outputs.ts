// Output targets (--out, --json, ...) are checked when a command starts, before any work, so a run never fails at
// its end for a path it could have refused at once: a folder where a file is written (or a file where a folder is),
// a missing parent, a read-only mount, a folder without write permission, or a virtual file system such as /proc.
import { accessSync, constants, existsSync, statfsSync, statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { UsageError } from "./args.js";

/** statfs magic numbers of kernel file systems that hold no data (linux/magic.h); writing there is never a result. */
const VIRTUAL_FS: Record<number, string> = {
  0x9fa0: "proc",
  0x62656572: "sysfs",
  0x1cd1: "devpts",
  0x27e0eb: "cgroup",
  0x63677270: "cgroup2",
  0x64626720: "debugfs",
  0x74726163: "tracefs",
  0x73636673: "securityfs",
  0xcafe4a11: "bpf",
  0x6165676c: "pstore",
  0x62656570: "configfs",
  0x42494e4d: "binfmt_misc",
};

/** The folder that will hold the output can take new files: it is on real storage, mounted writable, and ours to write. */
function checkWritableFolder(what: string, folder: string): void {
  const fs = VIRTUAL_FS[statfsSync(folder).type];
  if (fs)
    throw new UsageError(
      `${what}: ${folder} is on the kernel's ${fs} file system, which holds no files; choose a folder on a disk`,
    );
  try {
    accessSync(folder, constants.W_OK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "EROFS")
      throw new UsageError(`${what}: ${folder} is on a read-only file system; choose a writable location`);
    if (code === "EACCES" || code === "EPERM") throw new UsageError(`${what}: no permission to write in ${folder}`);
    throw e;
  }
}

/** A file the command writes at the end of its work (atomically, through a temporary file beside it). */
export function checkOutputFile(flag: string, path: string | undefined): void {
  if (path === undefined) return;
  const what = `${flag} ${path}`;
  const full = resolve(path);
  if (existsSync(full)) {
    const st = statSync(full);
    if (st.isDirectory()) throw new UsageError(`${what}: is a folder; give the path of a file to write`);
    if (!st.isFile())
      throw new UsageError(`${what}: not a regular file (a device, pipe or socket); give the path of a file to write`);
  }
  const folder = dirname(full);
  if (!existsSync(folder)) throw new UsageError(`${what}: folder ${folder} does not exist`);
  if (!statSync(folder).isDirectory()) throw new UsageError(`${what}: ${folder} is not a folder`);
  checkWritableFolder(what, folder);
}

/**
 * A folder the command writes into. It may exist (then it must be a folder); if not, its parent must exist, or with
 * `createParents` the nearest existing ancestor, which must be a writable folder.
 */
export function checkOutputFolder(flag: string, path: string, options: { createParents?: boolean } = {}): void {
  const what = `${flag} ${path}`;
  let folder = resolve(path);
  if (existsSync(folder)) {
    if (!statSync(folder).isDirectory()) throw new UsageError(`${what}: exists and is not a folder`);
  } else {
    const parent = dirname(folder);
    if (!options.createParents && !existsSync(parent)) throw new UsageError(`${what}: folder ${parent} does not exist`);
    folder = parent;
    while (!existsSync(folder)) folder = dirname(folder);
    if (!statSync(folder).isDirectory()) throw new UsageError(`${what}: ${folder} is not a folder`);
  }
  checkWritableFolder(what, folder);
}
