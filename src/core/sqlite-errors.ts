/**
 * A type guard for better-sqlite3's `SqliteError`, whose `code` is SQLite's (extended) result code (`SQLITE_BUSY`,
 * `SQLITE_READONLY_DBMOVED`, …): callers compare codes through it instead of casting.
 */
import Database from "better-sqlite3";

export type SqliteError = InstanceType<typeof Database.SqliteError>;

/** An error from SQLite, optionally with exactly this result code. */
export function isSqliteError(err: unknown, code?: string): err is SqliteError {
  return err instanceof Database.SqliteError && (code === undefined || err.code === code);
}
