/**
 * Opening a proposal's `runs.sqlite`: refuse what is not ours (with a message naming the file and what to do), take
 * read-only files read-only, upgrade older formats, create new databases with DAMNIT's exact v4 schema.
 */
import { parseSetting, storedDefault } from "../core/settings.js";
import { METAMETA_SETTINGS } from "./defaults.js";
import Database from "better-sqlite3";
import { randomBytes } from "node:crypto";
import { accessSync, chmodSync, constants, existsSync, mkdirSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { DamnitError } from "../core/errors.js";
import { isSqliteError } from "../core/sqlite-errors.js";
import { DB_FILE_NAME, DEFAULT_BUSY_TIMEOUT_MS, LATEST_FORMAT_VERSION } from "./format.js";
import { getSetting, setDefaultSetting, type SettingValue } from "./metameta.js";
import { readFormatVersion, upgradeSchema, type UpgradeReport } from "./migrate.js";
import { addReadCompatibility } from "./read-compat.js";

export type JournalMode = "delete" | "wal";

export interface OpenOptions {
  /** Database file name inside the directory; default `runs.sqlite`. */
  fileName?: string;
  /** Create the database (and its directory, one level) if missing. Default false. */
  create?: boolean;
  /** Never write, even if the file is writable. */
  readonly?: boolean;
  /** Overrides the database's `journal_mode` setting. */
  journal?: JournalMode;
  busyTimeoutMs?: number;
  /** Settings written (in the creating transaction) when the database is new, e.g. the proposal. */
  initialSettings?: Record<string, SettingValue>;
  /** Called with what the schema upgrade did, when it did something. */
  onUpgrade?: (report: UpgradeReport) => void;
}

export interface OpenedDatabase {
  readonly db: Database.Database;
  readonly dir: string;
  readonly path: string;
  readonly readonly: boolean;
  readonly created: boolean;
  readonly upgrade: UpgradeReport | null;
}

function isWritable(path: string): boolean {
  try {
    accessSync(path, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/** DAMNIT's databases are deliberately shared by a whole group: world-writable, changed only by the owner. */
function ownerChmod(path: string, mode: number): void {
  try {
    const stat = statSync(path);
    if (stat.uid === process.getuid?.() && (stat.mode & 0o777) !== mode) chmodSync(path, mode);
  } catch {
    // Not ours or gone: leave it.
  }
}

function checkDirectory(dir: string, create: boolean): void {
  if (existsSync(dir)) {
    if (!statSync(dir).isDirectory()) throw new DamnitError("NO_DIRECTORY", `${dir} is not a directory`);
    return;
  }
  if (!create) throw new DamnitError("NO_DIRECTORY", `${dir}: no such directory`);
  try {
    mkdirSync(dir, { mode: 0o777 });
  } catch (err) {
    throw new DamnitError("NO_DIRECTORY", `cannot create directory ${dir}: ${(err as Error).message}`, { cause: err });
  }
  ownerChmod(dir, 0o777);
}

function tableNames(db: Database.Database, path: string): Set<string> {
  try {
    const rows = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[];
    return new Set(rows.map((r) => r.name));
  } catch (err) {
    throw explainOpenError(err, path);
  }
}

/** SQLite's errors on opening, as one line that names the file and says what to do. */
function explainOpenError(err: unknown, path: string): unknown {
  if (!isSqliteError(err)) return err;
  const { code, message } = err;
  if (code === "SQLITE_NOTADB" || code === "SQLITE_CORRUPT") {
    return new DamnitError("NOT_SQLITE", `${path} is not an SQLite database (${message}); it was not changed`, { cause: err });
  }
  if (code.startsWith("SQLITE_READONLY") || code === "SQLITE_CANTOPEN") {
    return new DamnitError(
      "READ_ONLY",
      `cannot open ${path} (${message}); a database in WAL mode needs write access to its directory even for reading`,
      { cause: err },
    );
  }
  if (code === "SQLITE_BUSY") {
    return new DamnitError("BUSY", `${path} stayed locked by another process for the whole busy timeout; try again`, { cause: err });
  }
  return err;
}

function configureConnection(db: Database.Database, busyTimeoutMs: number): void {
  db.pragma(`busy_timeout = ${Math.max(0, Math.floor(busyTimeoutMs))}`);
  db.pragma("foreign_keys = ON");
}

/**
 * Switch the journal mode when the setting asks for another one. Switching needs the database to itself; while other
 * processes have it open the switch is left for a later open rather than failing this one.
 */
function applyJournalMode(db: Database.Database, wanted: JournalMode): void {
  const current = String(db.pragma("journal_mode", { simple: true })).toLowerCase();
  if (current === wanted) return;
  const timeout = Number(db.pragma("busy_timeout", { simple: true }));
  try {
    db.pragma("busy_timeout = 0");
    db.pragma(`journal_mode = ${wanted === "wal" ? "WAL" : "DELETE"}`);
  } catch (err) {
    if (!isSqliteError(err, "SQLITE_BUSY")) throw err;
  } finally {
    db.pragma(`busy_timeout = ${timeout}`);
  }
}

/** Write what every DAMNIT database has: a db_id (DAMNIT inserts one on any open if absent). */
function insertMissingIdentity(db: Database.Database): void {
  if (getSetting(db, "db_id") !== undefined) return;
  db.transaction(() => setDefaultSetting(db, "db_id", newDatabaseId())).immediate();
}

/** What a new database is given from METAMETA_SETTINGS (`stored` ones; the format version is the migrations' job). */
function storedSettingDefaults(): Record<string, string | number> {
  const entries = Object.entries(METAMETA_SETTINGS).filter(([key, spec]) => spec.stored && key !== "data_format_version" && key !== "db_id");
  return Object.fromEntries(entries.map(([key, spec]) => [key, storedDefault(spec)]));
}

function journalSetting(db: Database.Database): string {
  return parseSetting("journal_mode", METAMETA_SETTINGS.journal_mode, getSetting(db, "journal_mode")) ?? METAMETA_SETTINGS.journal_mode.default;
}

export function newDatabaseId(): string {
  return randomBytes(20).toString("hex");
}

export async function openDatabaseFile(dirArg: string, options: OpenOptions = {}): Promise<OpenedDatabase> {
  const dir = resolve(dirArg);
  const path = join(dir, options.fileName ?? DB_FILE_NAME);
  const create = options.create ?? false;
  checkDirectory(dir, create && !options.readonly);
  const exists = existsSync(path);
  if (!exists && !create) {
    throw new DamnitError(
      "NO_DATABASE",
      `no DAMNIT database in ${dir} (${DB_FILE_NAME} missing); create one with 'damnit proposal <number> ${dirArg}'`,
    );
  }
  const readonly = options.readonly === true || (exists && !(isWritable(path) && isWritable(dir)));
  if (!exists && !isWritable(dir)) {
    throw new DamnitError("READ_ONLY", `cannot create ${path}: directory ${dir} is not writable`);
  }
  if (exists && !statSync(path).isFile()) throw new DamnitError("NOT_SQLITE", `${path} is not a file`);
  let db: Database.Database;
  try {
    db = new Database(path, { readonly, fileMustExist: exists });
  } catch (err) {
    throw explainOpenError(err, path);
  }
  try {
    configureConnection(db, options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS);
    const tables = tableNames(db, path);
    const fresh = tables.size === 0;
    if (fresh && !create) {
      throw new DamnitError("NOT_DAMNIT", `${path} is an empty SQLite file, not a DAMNIT database; it was not changed`);
    }
    if (!fresh && !tables.has("metameta")) {
      throw new DamnitError(
        "NOT_DAMNIT",
        `${path} is an SQLite database but not a DAMNIT one (no metameta table); it was not changed`,
      );
    }
    const version = fresh ? -1 : readFormatVersion(db, path);
    checkVersionOpenable(path, version, dirArg);
    // An old database we may not upgrade is read through compatibility shims, without writing.
    if (readonly && version < LATEST_FORMAT_VERSION) addReadCompatibility(db);
    let upgrade: UpgradeReport | null = null;
    let created = false;
    if (!readonly) {
      // Only an outdated or new file takes the write lock; opening an up-to-date one never waits for writers.
      if (fresh || version < LATEST_FORMAT_VERSION) {
        const initialSettings = fresh ? { ...storedSettingDefaults(), db_id: newDatabaseId(), ...options.initialSettings } : undefined;
        const report = await upgradeSchema(db, path, { fresh, initialSettings });
        // Another process may have created or upgraded the file while we waited for the lock.
        created = fresh && report.applied.length > 0;
        if (report.applied.length > 0 && !fresh) {
          upgrade = report;
          options.onUpgrade?.(report);
        }
      }
      insertMissingIdentity(db);
      const wanted = options.journal ?? (journalSetting(db) === "wal" ? "wal" : "delete");
      applyJournalMode(db, wanted);
      ownerChmod(path, 0o666);
    }
    return { db, dir, path, readonly, created, upgrade };
  } catch (err) {
    db.close();
    throw err;
  }
}

function checkVersionOpenable(path: string, version: number, dirArg: string): void {
  if (version === 0) {
    throw new DamnitError(
      "LEGACY_V0",
      `${path} is in DAMNIT's legacy v0 format (one wide runs table); convert it with 'damnit migrate v0-to-v1 ${dirArg}'`,
    );
  }
  if (version > LATEST_FORMAT_VERSION) {
    throw new DamnitError(
      "TOO_NEW",
      `${path} is format v${version}, newer than this damnit understands (v${LATEST_FORMAT_VERSION}); update damnit to open it (the file was not changed)`,
    );
  }
}
