/**
 * A run database read (or changed) directly with better-sqlite3, the way other tools see the file: independent of
 * src/db, so that tests check what our code stored, not what it reads back. The readers take a database directory
 * (its runs.sqlite is opened read-only for the call and closed again) or an open connection (e.g. a RunDatabase's
 * `sqlite`), which is used as it is.
 */
import Database from "better-sqlite3";
import { join } from "node:path";

export type Sqlite = Database.Database;

/** A database directory (holding runs.sqlite) or an open connection. */
export type DbSource = string | Sqlite;

/** `<dbDir>/runs.sqlite`. */
export const runsFile = (dbDir: string): string => join(dbDir, "runs.sqlite");

/** `fn` on a connection to the SQLite file `path` (read-only unless `writable`), closed afterwards. */
export function withSqliteFile<T>(path: string, fn: (db: Sqlite) => T, options: { writable?: boolean } = {}): T {
  const db = new Database(path, { readonly: !options.writable });
  try {
    return fn(db);
  } finally {
    db.close();
  }
}

/** `fn` on a database directory's runs.sqlite (read-only unless `writable`, which also creates a missing file). */
export function withRunsDb<T>(dbDir: string, fn: (db: Sqlite) => T, options: { writable?: boolean } = {}): T {
  return withSqliteFile(runsFile(dbDir), fn, options);
}

function withSource<T>(source: DbSource, fn: (db: Sqlite) => T): T {
  return typeof source === "string" ? withRunsDb(source, fn) : fn(source);
}

/** Change a directory's runs.sqlite as another program would: `sql` (any number of statements) on a writable connection. */
export function execSql(dbDir: string, sql: string): void {
  withRunsDb(dbDir, (db) => db.exec(sql), { writable: true });
}

/** Every row `sql` gives. */
export function queryAll<T = Record<string, unknown>>(source: DbSource, sql: string, ...params: unknown[]): T[] {
  return withSource(source, (db) => db.prepare<unknown[], T>(sql).all(...params));
}

/** The first row `sql` gives, undefined if none. */
export function queryOne<T = Record<string, unknown>>(source: DbSource, sql: string, ...params: unknown[]): T | undefined {
  return withSource(source, (db) => db.prepare<unknown[], T>(sql).get(...params));
}

/** The number of rows of `table` (or of those matching the SQL condition `where`). */
export function countRows(source: DbSource, table: string, where?: string): number {
  return queryOne<{ n: number }>(source, `SELECT count(*) AS n FROM ${table}${where === undefined ? "" : ` WHERE ${where}`}`)!.n;
}

/** A metameta value as stored (number, text...), undefined when the key is not there. */
export function metametaValue(source: DbSource, key: string): unknown {
  return queryOne<{ value: unknown }>(source, "SELECT value FROM metameta WHERE key = ?", key)?.value;
}

/**
 * `PRAGMA integrity_check` ("ok" when the file is sound). A directory's runs.sqlite is opened writable, as the next
 * writer would: a hot journal left by a killed process is rolled back first.
 */
export function integrityCheck(source: DbSource): unknown {
  const check = (db: Sqlite) => db.pragma("integrity_check", { simple: true });
  return typeof source === "string" ? withRunsDb(source, check, { writable: true }) : check(source);
}

/** A run_variables row with SQLite's type of its value. */
export interface RunVariableRow {
  proposal: number;
  run: number;
  name: string;
  version: number;
  value: unknown;
  /** `typeof(value)`: "integer", "real", "text", "blob" or "null" */
  type: string;
  timestamp: number;
  max_diff: number | null;
  provenance: string | null;
  summary_type: string | null;
  summary_method: string | null;
  /** JSON text, as stored */
  attributes: string | null;
}

/** The run_variables rows (of one proposal and/or run if given), ordered by proposal, run, name and version. */
export function runVariableRows(source: DbSource, filter: { proposal?: number; run?: number } = {}): RunVariableRow[] {
  const conditions = Object.entries(filter).filter(([, v]) => v !== undefined);
  const where = conditions.length === 0 ? "" : ` WHERE ${conditions.map(([k]) => `${k} = ?`).join(" AND ")}`;
  return queryAll<RunVariableRow>(
    source,
    `SELECT *, typeof(value) AS type FROM run_variables${where} ORDER BY proposal, run, name, version`,
    ...conditions.map(([, v]) => v),
  );
}

/** A run_info row. */
export interface RunInfoRow {
  proposal: number;
  run: number;
  start_time: number | null;
  added_at: number | null;
}

/** The run_info row of `run` (of `proposal` if given), undefined if there is none. */
export function runInfoRow(source: DbSource, run: number, proposal?: number): RunInfoRow | undefined {
  return proposal === undefined
    ? queryOne<RunInfoRow>(source, "SELECT proposal, run, start_time, added_at FROM run_info WHERE run = ?", run)
    : queryOne<RunInfoRow>(source, "SELECT proposal, run, start_time, added_at FROM run_info WHERE proposal = ? AND run = ?", proposal, run);
}

/** A row of the variables table. */
export interface VariableRow {
  name: string;
  type: string | null;
  title: string | null;
  description: string | null;
  attributes: string | null;
}

/** The variables table, ordered by name. */
export function variableRows(source: DbSource): VariableRow[] {
  return queryAll<VariableRow>(source, "SELECT name, type, title, description, attributes FROM variables ORDER BY name");
}

/** Every (variable, tag name) pair of variable_tags, ordered by variable then tag. */
export function variableTagPairs(source: DbSource): Array<{ name: string; tag: string }> {
  return queryAll(
    source,
    "SELECT v.variable_name AS name, t.name AS tag FROM variable_tags v JOIN tags t ON t.id = v.tag_id ORDER BY v.variable_name, t.name",
  );
}

/** One run's values by variable name (the `value` column of its run_variables rows). */
export function runValues(source: DbSource, run: number): Map<string, unknown> {
  return new Map(runVariableRows(source, { run }).map((r) => [r.name, r.value]));
}

/** The error a run's variable stored (its row's attributes JSON). */
export function runVariableError(source: DbSource, run: number, name: string): { error: string; error_cls: string } {
  const row = runVariableRows(source, { run }).find((r) => r.name === name);
  return JSON.parse(row!.attributes!) as { error: string; error_cls: string };
}
