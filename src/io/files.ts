// Opening the files a user names as inputs: regular files only. A FIFO would block the open (or the read) until a
// writer comes, and a character device such as /dev/zero never ends; both are refused from fstat on the opened
// descriptor (opened non-blocking, so a FIFO cannot hang the open itself, and checked on the descriptor, so a file
// swapped after a listing cannot slip through).
import { closeSync, constants, fstatSync, openSync, readSync } from "node:fs";
import { InputError } from "../errors.js";
import { formatBytes } from "./limits.js";

/** Opens a regular file for reading; anything else (FIFO, device, socket, folder) is an InputError. Close the fd. */
export function openRegular(path: string): { fd: number; size: number } {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new InputError(`${path}: not a regular file (${st.isDirectory() ? "a folder" : st.isFIFO() ? "a named pipe" : st.isCharacterDevice() || st.isBlockDevice() ? "a device" : "a special file"})`);
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
    if (size > maxBytes) throw new InputError(`${path}: ${formatBytes(size)}, over the ${formatBytes(maxBytes)} limit (${limit})`);
    const buf = Buffer.alloc(size);
    let done = 0;
    while (done < size) {
      const n = readSync(fd, buf, done, size - done, done);
      if (n === 0) break; // shrank while being read: what is there is checked by the format reader
      done += n;
    }
    return buf.subarray(0, done);
  } finally {
    closeSync(fd);
  }
}
