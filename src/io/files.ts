// Opening the files a user names as inputs: regular files only. A FIFO would block the open (or the read) until a
// writer comes, and a character device such as /dev/zero never ends; both are refused from fstat on the opened
// descriptor (opened non-blocking, so a FIFO cannot hang the open itself, and checked on the descriptor, so a file
// swapped after a listing cannot slip through).
import { createHash } from "node:crypto";
import { closeSync, constants, fstatSync, openSync, readSync } from "node:fs";
import { InputError } from "../errors.js";
import { formatBytes } from "./limits.js";

/** Opens a regular file for reading; anything else (FIFO, device, socket, folder) is an InputError. Close the fd. */
export function openRegular(path: string): { fd: number; size: number } {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const st = fstatSync(fd);
    if (!st.isFile())
      throw new InputError(
        `${path}: not a regular file (${st.isDirectory() ? "a folder" : st.isFIFO() ? "a named pipe" : st.isCharacterDevice() || st.isBlockDevice() ? "a device" : "a special file"})`,
      );
    return { fd, size: st.size };
  } catch (e) {
    closeSync(fd);
    throw e;
  }
}

/** A regular file's bytes, refused from its size when over `maxBytes` (`limit` names the flag that raises it). */
export function readRegularFile(path: string, maxBytes: number, limit: string): Buffer {
  const { fd, size } = openRegular(path);
  try {
    if (size > maxBytes)
      throw new InputError(`${path}: ${formatBytes(size)}, over the ${formatBytes(maxBytes)} limit (${limit})`);
    // A file that shrank while being read gives what is there; the format reader checks it.
    const buf = Buffer.alloc(size);
    return buf.subarray(0, readAt(fd, buf, 0));
  } finally {
    closeSync(fd);
  }
}

/**
 * Fills `buf` with the file's bytes from `position` on (readSync may return fewer bytes than asked); returns how many
 * it read, fewer than buf.length only where the file ends first.
 */
export function readAt(fd: number, buf: Uint8Array, position: number): number {
  let done = 0;
  while (done < buf.length) {
    const n = readSync(fd, buf, done, buf.length - done, position + done);
    if (n === 0) break;
    done += n;
  }
  return done;
}

/** SHA-256 of a file's bytes, read in 1 MiB pieces (checkpoints can be large). */
export function sha256File(path: string): string {
  const hash = createHash("sha256");
  const fd = openSync(path, "r");
  try {
    const buf = Buffer.alloc(1 << 20);
    for (let pos = 0, n; (n = readAt(fd, buf, pos)) > 0; pos += n) hash.update(buf.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  return hash.digest("hex");
}
