/**
 * The compiled form of context files, kept on disk per content (issue 13: a job should not start esbuild to
 * compile a context file that has not changed since the last job). An entry is the compiler's output for one
 * source file, named by the SHA-256 of the compiler's version, the loader, the file's path and its text, so any
 * change to any of them misses. Entries live in `<database dir>/.damnit-cache/compiled-<uid>/`: a directory of the
 * running user's own (0700), since whoever could write an entry would decide what the next job runs; an entry is
 * read only when it is a regular file of ours, and written fresh and renamed into place, so a job killed while
 * writing leaves nothing half-written. Any problem with the cache (unwritable directory, a directory someone else
 * made) costs a compile, never a failure.
 */
import { createHash, randomBytes } from "node:crypto";
import { closeSync, constants, fstatSync, lstatSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { isNodeError } from "../core/node-errors.js";
import { sharedDirectory } from "../core/safe-open.js";

const { O_RDONLY, O_NOFOLLOW, O_WRONLY, O_CREAT, O_EXCL } = constants;

/** The esbuild version installed (read from its package.json, without loading esbuild), or undefined. */
export function compilerVersion(): string | undefined {
  try {
    const pkg = new URL("../../../node_modules/esbuild/package.json", import.meta.url);
    return (JSON.parse(readFileSync(pkg, "utf8")) as { version?: string }).version;
  } catch {
    return undefined;
  }
}

/** The cache directory for database directory `dbDir`, for the running user. */
export function compileCacheDir(dbDir: string): string {
  return join(dbDir, ".damnit-cache", `compiled-${process.getuid?.() ?? "user"}`);
}

/**
 * Where compiled entries rewritten for direct import live (direct-import.ts), for the running user: beside the
 * compiled ones, as they depend on the installation too.
 */
export function directCacheDir(dbDir: string): string {
  return join(dbDir, ".damnit-cache", `direct-${process.getuid?.() ?? "user"}`);
}

export function cacheKey(parts: readonly string[]): string {
  const hash = createHash("sha256");
  for (const part of parts) hash.update(part).update("\0");
  return hash.digest("hex");
}

/** The cached output for `key`, or undefined (missing, or not a private regular file of ours). */
export function readCached(dir: string, key: string): string | undefined {
  let fd: number;
  try {
    fd = openSync(join(dir, `${key}.mjs`), O_RDONLY | O_NOFOLLOW);
  } catch {
    return undefined;
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile() || stat.nlink !== 1 || (process.getuid && stat.uid !== process.getuid()) || (stat.mode & 0o022) !== 0) return undefined;
    return readFileSync(fd, "utf8");
  } finally {
    closeSync(fd);
  }
}

/** A directory of our own for the cache, or undefined when there cannot be one (then nothing is cached). */
function ownDirectory(dir: string): boolean {
  try {
    // .damnit-cache/ is the team's (sticky: nobody removes another's entries), each user's compiled-<uid>/ its own.
    sharedDirectory(dirname(dir), 0o1777);
    mkdirSync(dir, { mode: 0o700 });
  } catch (err) {
    if (!isNodeError(err, "EEXIST")) return false;
  }
  try {
    const stat = lstatSync(dir);
    return stat.isDirectory() && (!process.getuid || stat.uid === process.getuid()) && (stat.mode & 0o077) === 0;
  } catch {
    return false;
  }
}

/** Keep `code` as the output for `key` (best effort: a cache that cannot be written is no error). */
export function writeCached(dir: string, key: string, code: string): void {
  if (!ownDirectory(dir)) return;
  const tmp = join(dir, `.${key}.${randomBytes(4).toString("hex")}.tmp`);
  try {
    const fd = openSync(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
    try {
      writeFileSync(fd, code);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, join(dir, `${key}.mjs`));
  } catch {
    rmSync(tmp, { force: true });
  }
}
