/**
 * A read-only look at a proposal's `runs.sqlite` that never creates, upgrades or locks it for writing: for the
 * listener, which must not change a database's format (that is a job's business, done by RunDatabase.open) and must
 * not be stopped by one database that cannot be read. Every function answers "nothing" when the file is missing,
 * not SQLite, or lacks the table asked about.
 */
import Database from "better-sqlite3";
import { join } from "node:path";
import { DB_FILE_NAME } from "./format.js";
import type { KnownSetting } from "./defaults.js";

function peek<T>(dbDir: string, look: (db: Database.Database) => T, otherwise: T): T {
  let db: Database.Database;
  try {
    db = new Database(join(dbDir, DB_FILE_NAME), { readonly: true, fileMustExist: true });
  } catch {
    return otherwise;
  }
  try {
    return look(db);
  } catch {
    return otherwise;
  } finally {
    db.close();
  }
}

/** A `metameta` setting as stored, as text; undefined when absent (or the database cannot be read). */
export function peekSetting(dbDir: string, key: KnownSetting): string | undefined {
  return peek(
    dbDir,
    (db) => {
      const row = db.prepare("SELECT value FROM metameta WHERE key = ?").get(key) as { value: unknown } | undefined;
      return row?.value === undefined || row.value === null ? undefined : String(row.value);
    },
    undefined,
  );
}

/** Whether the database has this run in `run_info` (false when it cannot be read). */
export function peekHasRun(dbDir: string, proposal: number, run: number): boolean {
  return peek(dbDir, (db) => db.prepare("SELECT 1 FROM run_info WHERE proposal = ? AND run = ?").get(proposal, run) !== undefined, false);
}
