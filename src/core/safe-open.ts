/**
 * Opening files in directories other users can write (process_logs/, a database's .tmp/) without being tricked: a
 * symlink is never followed (O_NOFOLLOW), the file opened must be a regular file with one link (no hard link to
 * someone else's file), and only a file we have just created is given a mode. A planted file is a DamnitError
 * with code UNSAFE_FILE, and the file it points to is not touched.
 */
import { closeSync, constants, fchmodSync, fstatSync, openSync } from "node:fs";
import { DamnitError } from "./errors.js";
import { isNodeError } from "./node-errors.js";

const { O_WRONLY, O_APPEND, O_CREAT, O_EXCL, O_NOFOLLOW } = constants;

/**
 * Open `path` for appending, creating it with `mode` (exactly, whatever the umask) when missing. An existing file
 * keeps its mode. Returns the file descriptor.
 */
export function openForAppend(path: string, mode: number): number {
  let fd: number;
  let created = true;
  try {
    fd = openSync(path, O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_NOFOLLOW, mode);
  } catch (err) {
    if (!isNodeError(err, "EEXIST")) throw err;
    created = false;
    try {
      fd = openSync(path, O_WRONLY | O_APPEND | O_NOFOLLOW);
    } catch (err2) {
      if (isNodeError(err2, "ELOOP")) throw unsafe(path, "is a symbolic link", err2);
      throw err2;
    }
  }
  try {
    checkRegular(fd, path);
    if (created) fchmodSync(fd, mode);
  } catch (err) {
    closeSync(fd);
    throw err;
  }
  return fd;
}

/** Create `path` fresh (it must not exist; a symlink there is not followed) with `mode`, for writing. */
export function createFresh(path: string, mode: number): number {
  let fd: number;
  try {
    fd = openSync(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode);
  } catch (err) {
    if (isNodeError(err, "EEXIST")) throw unsafe(path, "exists already", err);
    throw err;
  }
  try {
    fchmodSync(fd, mode);
  } catch (err) {
    closeSync(fd);
    throw err;
  }
  return fd;
}

function checkRegular(fd: number, path: string): void {
  const stat = fstatSync(fd);
  if (!stat.isFile()) throw unsafe(path, "is not a regular file");
  if (stat.nlink !== 1) throw unsafe(path, `has ${stat.nlink} hard links`);
}

function unsafe(path: string, what: string, cause?: unknown): DamnitError {
  return new DamnitError("UNSAFE_FILE", `refusing to write ${path}: it ${what} (planted by someone else?)`, cause === undefined ? undefined : { cause });
}
