/** How the CLI reports failures: one line for anything a user can act on, a stack trace only for our own bugs. */
import { isDamnitError } from "../core/errors.js";
import { isSqliteError } from "../core/sqlite-errors.js";

export const EXIT_USER_ERROR = 1;
export const EXIT_USAGE = 2;
export const EXIT_BUG = 70;

/** SQLite failures caused by the environment (locks, permissions, disks), not by us: hints for each. */
const SQLITE_HINTS: Record<string, string> = {
  SQLITE_BUSY: "the database stayed locked by another process for the whole 30 s busy timeout; try again",
  SQLITE_LOCKED: "the database is locked; try again",
  SQLITE_READONLY: "the database is read-only for you",
  SQLITE_CANTOPEN: "the database file cannot be opened",
  SQLITE_FULL: "the disk is full",
  SQLITE_IOERR: "the file system reported an I/O error",
  SQLITE_CORRUPT: "the database file is damaged",
  SQLITE_NOTADB: "the file is not an SQLite database",
};

function sqliteHint(err: unknown): string | undefined {
  if (!isSqliteError(err)) return undefined;
  const code = err.code;
  return SQLITE_HINTS[code] ?? SQLITE_HINTS[code.split("_").slice(0, 2).join("_")];
}

export function reportError(err: unknown, debug: boolean): number {
  const hint = sqliteHint(err);
  if (hint !== undefined) {
    process.stderr.write(`damnit: ${hint} (${(err as Error).message})\n`);
    if (debug) process.stderr.write(`${(err as Error).stack ?? ""}\n`);
    return EXIT_USER_ERROR;
  }
  if (isDamnitError(err)) {
    process.stderr.write(`damnit: ${err.message}\n`);
    if (debug && err.cause) process.stderr.write(`${String((err.cause as Error).stack ?? err.cause)}\n`);
    return EXIT_USER_ERROR;
  }
  const e = err as Error;
  process.stderr.write(`damnit: unexpected error: ${e?.message ?? String(err)}\n`);
  if (debug) process.stderr.write(`${e?.stack ?? ""}\n`);
  else process.stderr.write("damnit: this is a bug; run again with --debug for details and report it\n");
  return EXIT_BUG;
}
