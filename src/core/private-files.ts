/**
 * Modes for the files that decide what the service runs (the listener directory's listener.sqlite, supervisord.conf,
 * damnit.log, ...): the owner's alone. 0600 by default; 0640 (and the directory's group) when the operator gave the
 * directory a group other than their own primary group, so that colleagues in it can read status and credentials
 * (to restart the listener) but never write. An existing file we own is brought to that mode; someone else's is left.
 */
import { chmodSync, chownSync, lstatSync, statSync } from "node:fs";
import { isNodeError } from "./node-errors.js";

export interface PrivateFileMode {
  /** 0o600, or 0o640 when `gid` is the colleagues' group */
  readonly mode: number;
  /** the group the files get: the directory's when it is a colleagues' group, else undefined (left as created) */
  readonly gid: number | undefined;
}

/** The mode and group for the owner's files in `dir` (see the file comment). */
export function privateFileMode(dir: string): PrivateFileMode {
  const ownGid = process.getgid?.();
  let dirGid: number | undefined;
  try {
    dirGid = statSync(dir).gid;
  } catch (err) {
    if (!isNodeError(err, "ENOENT")) throw err;
  }
  if (ownGid === undefined || dirGid === undefined || dirGid === ownGid) return { mode: 0o600, gid: undefined };
  return { mode: 0o640, gid: dirGid };
}

/**
 * Bring `path` to `privateFileMode(dir of path)` when it is a regular file we own (not a symlink: lstat); a missing
 * file or someone else's is left alone. A failed chgrp (not in the group) leaves the group as it is.
 */
export function makePrivate(path: string, wanted: PrivateFileMode): void {
  let stat;
  try {
    stat = lstatSync(path);
  } catch (err) {
    if (isNodeError(err, "ENOENT")) return;
    throw err;
  }
  const uid = process.getuid?.();
  if (!stat.isFile() || (uid !== undefined && stat.uid !== uid)) return;
  if (wanted.gid !== undefined && stat.gid !== wanted.gid) {
    try {
      chownSync(path, -1, wanted.gid);
    } catch (err) {
      if (!isNodeError(err, "EPERM")) throw err;
    }
  }
  if ((stat.mode & 0o7777) !== wanted.mode) chmodSync(path, wanted.mode);
}
