/**
 * Opening files in directories other users can write (process_logs/, a database's .tmp/) without being tricked: a
 * symlink is never followed (O_NOFOLLOW), the file opened must be a regular file with one link (no hard link to
 * someone else's file), and only a file we have just created is given a mode. A planted file is a DamnitError
 * with code UNSAFE_FILE, and the file it points to is not touched.
 */
import { chmodSync, closeSync, constants, fchmodSync, fstatSync, lstatSync, mkdirSync, openSync, readFileSync } from "node:fs";
import { DamnitError } from "./errors.js";
import { isNodeError } from "./node-errors.js";

const { O_RDONLY, O_WRONLY, O_APPEND, O_CREAT, O_EXCL, O_NOFOLLOW } = constants;

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

/**
 * Read a file that must be our own and no one else's to change (an array job's task file): not a symlink, a regular
 * file with one link, owned by us, not writable by group or others. Anything else (a file put in its place by
 * someone who could rename the directories above it) is UNSAFE_FILE.
 */
export function readPrivateFile(path: string): string {
  let fd: number;
  try {
    fd = openSync(path, O_RDONLY | O_NOFOLLOW);
  } catch (err) {
    if (isNodeError(err, "ELOOP")) throw unsafe(path, "is a symbolic link", err, "read");
    throw err;
  }
  try {
    checkRegular(fd, path, "read");
    const stat = fstatSync(fd);
    const uid = process.getuid?.();
    if (uid !== undefined && stat.uid !== uid) throw unsafe(path, `belongs to uid ${stat.uid}, not to us (uid ${uid})`, undefined, "read");
    if ((stat.mode & 0o022) !== 0) throw unsafe(path, `is writable by others (mode ${(stat.mode & 0o777).toString(8)})`, undefined, "read");
    return readFileSync(fd, "utf8");
  } finally {
    closeSync(fd);
  }
}

/**
 * A directory shared with the team inside a proposal's directory (process_logs/, extracted_data/, .tmp/): made when
 * missing, refused when something else (a symlink to a directory elsewhere) stands in its place, and given `mode`
 * only when it is ours (someone else's keeps theirs, even for root).
 */
export function sharedDirectory(dir: string, mode: number): string {
  mkdirSync(dir, { recursive: true });
  const stat = lstatSync(dir);
  if (stat.isSymbolicLink()) throw unsafe(dir, "is a symbolic link", undefined, "use directory");
  if (!stat.isDirectory()) throw unsafe(dir, "is not a directory", undefined, "use directory");
  if (stat.uid === process.getuid?.() && (stat.mode & 0o7777) !== mode) chmodSync(dir, mode);
  return dir;
}

function checkRegular(fd: number, path: string, verb = "write"): void {
  const stat = fstatSync(fd);
  if (!stat.isFile()) throw unsafe(path, "is not a regular file", undefined, verb);
  if (stat.nlink !== 1) throw unsafe(path, `has ${stat.nlink} hard links`, undefined, verb);
}

function unsafe(path: string, what: string, cause?: unknown, verb = "write"): DamnitError {
  return new DamnitError("UNSAFE_FILE", `refusing to ${verb} ${path}: it ${what} (planted by someone else?)`, cause === undefined ? undefined : { cause });
}
