/**
 * Schema upgrades with umzug. The steps live in `migrations/`; the record of what ran is `data_format_version` in
 * `metameta` (DAMNIT's own bookkeeping), so databases written by DAMNIT and by us are read the same way.
 *
 * The whole upgrade runs in one write transaction (BEGIN IMMEDIATE, so concurrent openers wait rather than upgrade
 * twice), each step with its version bump in a savepoint: a failing step rolls everything back and leaves the file
 * byte-identical to before. An existing file is copied to `runs.sqlite.v<N>.bak` first.
 */
import type Database from "better-sqlite3";
import { isSqliteError } from "../core/sqlite-errors.js";
import { copyFileSync, existsSync } from "node:fs";
import type { UmzugStorage } from "umzug";
import { MIGRATIONS } from "../../migrations/index.js";
import { DamnitError } from "../core/errors.js";
import { LATEST_FORMAT_VERSION } from "./format.js";
import { getSetting, setSetting, type SettingValue } from "./metameta.js";

export interface UpgradeReport {
  readonly from: number;
  readonly to: number;
  /** names of the steps applied, in order */
  readonly applied: readonly string[];
  /** where the pre-upgrade copy was written (none for a new database) */
  readonly backup: string | null;
}

/** `data_format_version`, 0 when absent (DAMNIT's reading of the legacy format). */
export function readFormatVersion(db: Database.Database, path: string): number {
  const value = getSetting(db, "data_format_version");
  if (value === undefined || value === null) return 0;
  const version = Number(value);
  if (!Number.isInteger(version)) {
    throw new DamnitError("NOT_DAMNIT", `${path}: data_format_version is '${String(value)}', not a whole number; the file was not changed`);
  }
  return version;
}

function checkMigrationList(): void {
  MIGRATIONS.forEach((m, i) => {
    if (m.version !== i + 1) throw new Error(`migration ${m.name} has version ${m.version}, expected ${i + 1}`);
  });
  if (MIGRATIONS.length !== LATEST_FORMAT_VERSION) {
    throw new Error(`${MIGRATIONS.length} migrations for format v${LATEST_FORMAT_VERSION}`);
  }
}

function backupPath(path: string, version: number): string {
  const plain = `${path}.v${version}.bak`;
  if (!existsSync(plain)) return plain;
  // Keep the oldest copy of this version untouched; later ones get a timestamp.
  return `${path}.v${version}.${new Date().toISOString().replace(/[:.]/g, "-")}.bak`;
}

export interface UpgradeOptions {
  /** The file has no tables yet: create the schema and write `initialSettings`. */
  fresh: boolean;
  initialSettings?: Record<string, SettingValue>;
}

/**
 * BEGIN IMMEDIATE, waiting for other writers without blocking the event loop: umzug is asynchronous, so a
 * synchronous busy wait here could stall another opener in this process that holds the lock across an await.
 */
async function beginImmediate(db: Database.Database): Promise<void> {
  const timeoutMs = Number(db.pragma("busy_timeout", { simple: true }));
  const deadline = Date.now() + timeoutMs;
  db.pragma("busy_timeout = 0");
  try {
    for (let delay = 5; ; delay = Math.min(delay * 2, 200)) {
      try {
        db.exec("BEGIN IMMEDIATE");
        return;
      } catch (err) {
        if (!isSqliteError(err, "SQLITE_BUSY") || Date.now() >= deadline) throw err;
      }
      await new Promise((r) => setTimeout(r, delay));
    }
  } finally {
    db.pragma(`busy_timeout = ${timeoutMs}`);
  }
}

export async function upgradeSchema(db: Database.Database, path: string, options: UpgradeOptions): Promise<UpgradeReport> {
  checkMigrationList();
  await beginImmediate(db);
  let committed = false;
  try {
    // Read the version again under the write lock: another process may have upgraded meanwhile.
    const from = options.fresh && !hasMetameta(db) ? 0 : readFormatVersion(db, path);
    if (from >= LATEST_FORMAT_VERSION) {
      db.exec("ROLLBACK");
      committed = true;
      return { from, to: from, applied: [], backup: null };
    }
    let backup: string | null = null;
    if (!options.fresh) {
      backup = backupPath(path, from);
      try {
        copyFileSync(path, backup);
        // In WAL mode committed pages may still sit in the -wal file; the copy needs them too.
        if (existsSync(`${path}-wal`)) copyFileSync(`${path}-wal`, `${backup}-wal`);
      } catch (err) {
        throw new DamnitError(
          "MIGRATION_FAILED",
          `cannot copy ${path} to ${backup} before upgrading it from v${from} (${(err as Error).message}); nothing was changed`,
          { cause: err },
        );
      }
    }
    const applied: string[] = [];
    // Loaded only when there is something to upgrade: importing umzug costs ~0.2 s of start-up.
    const { Umzug } = await import("umzug");
    const umzug = new Umzug({
      migrations: MIGRATIONS.map((m) => ({
        name: m.name,
        up: async () => {
          db.transaction(() => {
            m.up(db);
            setSetting(db, "data_format_version", m.version);
          })();
          applied.push(m.name);
        },
      })),
      storage: formatVersionStorage(db, path),
      logger: undefined,
    });
    try {
      await umzug.up();
    } catch (err) {
      const step = MIGRATIONS.find((m) => !applied.includes(m.name) && m.version > from);
      const cause = (err as { cause?: unknown }).cause ?? err;
      throw new DamnitError(
        "MIGRATION_FAILED",
        `upgrading ${path} from v${from} failed at step ${step?.name ?? "?"}: ${(cause as Error).message}; nothing was changed` +
          (backup ? ` (a copy is at ${backup})` : ""),
        { cause },
      );
    }
    if (options.fresh) {
      for (const [key, value] of Object.entries(options.initialSettings ?? {})) setSetting(db, key, value);
    }
    db.exec("COMMIT");
    committed = true;
    return { from, to: LATEST_FORMAT_VERSION, applied, backup };
  } finally {
    if (!committed && db.inTransaction) db.exec("ROLLBACK");
  }
}

function hasMetameta(db: Database.Database): boolean {
  return db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'metameta'").get() !== undefined;
}

/** umzug's record of executed steps, read from and written to `data_format_version`. */
function formatVersionStorage(db: Database.Database, path: string): UmzugStorage {
  return {
    async executed() {
      const version = hasMetameta(db) ? readFormatVersion(db, path) : 0;
      return MIGRATIONS.filter((m) => m.version <= version).map((m) => m.name);
    },
    // The step itself records its version inside its transaction, so there is nothing left to log.
    async logMigration() {},
    async unlogMigration() {
      throw new Error("downgrading a DAMNIT database is not supported");
    },
  };
}
