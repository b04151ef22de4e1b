/**
 * Which calibration constants each run's variables used (spec §D.6 provenance), kept beside runs.sqlite in
 * `<db_dir>/calibration_usage.sqlite` (its own file: runs.sqlite keeps DAMNIT's schema). One row per lookup a
 * variable made: (proposal, run, variable, detector as asked, detname, ctype, range, version, level). A job that
 * stores a variable replaces that variable's rows, so the record always describes the values in the table;
 * `damnit reprocess --pin-calibration` reads them back to replay exactly those ranges and versions. Jobs of many
 * hosts share the file: rollback journal, busy timeout, short BEGIN IMMEDIATE transactions.
 */
import Database from "better-sqlite3";
import { chmodSync, existsSync } from "node:fs";
import { join } from "node:path";
import { DamnitError } from "../core/errors.js";
import { isSqliteError } from "../core/sqlite-errors.js";
import type { CalibrationUse } from "../core/variable-output.js";

export const CALIB_USAGE_FILE = "calibration_usage.sqlite";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS calibration_usage(
  proposal INTEGER NOT NULL, run INTEGER NOT NULL, variable TEXT NOT NULL,
  detector TEXT NOT NULL, detname TEXT NOT NULL, ctype TEXT NOT NULL, range_key TEXT NOT NULL, version INTEGER NOT NULL,
  level TEXT NOT NULL CHECK(level IN ('local','proposal','repository')),
  recorded_at REAL NOT NULL,
  PRIMARY KEY (proposal, run, variable, detector, ctype)
);
`;

export interface UsageRow extends CalibrationUse {
  readonly proposal: number;
  readonly run: number;
  readonly variable: string;
  readonly recordedAt: number;
}

export class CalibUsageStore {
  private constructor(private readonly db: Database.Database, readonly path: string) {}

  /** Open (creating unless `readonly`) the usage record of the database in `dbDir`; null when readonly and absent. */
  static open(dbDir: string, opts: { readonly?: boolean } = {}): CalibUsageStore | null {
    const path = join(dbDir, CALIB_USAGE_FILE);
    if (opts.readonly && !existsSync(path)) return null;
    let db: Database.Database | undefined;
    const fresh = !existsSync(path);
    try {
      db = new Database(path, { readonly: opts.readonly ?? false, timeout: 15_000 });
      if (!opts.readonly) {
        if ((db.pragma("journal_mode", { simple: true }) as string) !== "delete") db.pragma("journal_mode = DELETE");
        db.exec(SCHEMA);
        // Shared by every team member's jobs like runs.sqlite (world-writable, as DAMNIT makes its databases).
        if (fresh) chmodSync(path, 0o666);
      }
      return new CalibUsageStore(db, path);
    } catch (err) {
      db?.close();
      if (isSqliteError(err, "SQLITE_NOTADB") || isSqliteError(err, "SQLITE_CORRUPT")) {
        throw new DamnitError("NOT_SQLITE", `${path} is not a usable SQLite database: ${(err as Error).message}`, { cause: err });
      }
      if (isSqliteError(err, "SQLITE_BUSY")) throw new DamnitError("BUSY", `${path} stayed locked for the whole busy timeout; try again`, { cause: err });
      throw err;
    }
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  /** Replace the records of these variables of one run by their new lookups (an empty list: the variable used none). */
  replace(proposal: number, run: number, uses: ReadonlyMap<string, readonly CalibrationUse[]>): void {
    const del = this.db.prepare("DELETE FROM calibration_usage WHERE proposal = ? AND run = ? AND variable = ?");
    const ins = this.db.prepare(
      `INSERT OR REPLACE INTO calibration_usage(proposal, run, variable, detector, detname, ctype, range_key, version, level, recorded_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    const now = Date.now() / 1000;
    try {
      this.db
        .transaction(() => {
          for (const [variable, list] of uses) {
            del.run(proposal, run, variable);
            for (const u of list) ins.run(proposal, run, variable, u.detector, u.detname, u.ctype, u.range, u.version, u.level, now);
          }
        })
        .immediate();
    } catch (err) {
      if (isSqliteError(err, "SQLITE_BUSY")) throw new DamnitError("BUSY", `${this.path} stayed locked for the whole busy timeout; try again`, { cause: err });
      throw err;
    }
  }

  /** The records, optionally of one proposal and some runs, ordered by run, variable, detector, ctype. */
  list(filter: { proposal?: number; runs?: readonly number[] } = {}): UsageRow[] {
    const where: string[] = [];
    const args: number[] = [];
    if (filter.proposal !== undefined) {
      where.push("proposal = ?");
      args.push(filter.proposal);
    }
    if (filter.runs !== undefined) {
      where.push(`run IN (${filter.runs.map(() => "?").join(", ") || "NULL"})`);
      args.push(...filter.runs);
    }
    const rows = this.db
      .prepare(
        `SELECT proposal, run, variable, detector, detname, ctype, range_key, version, level, recorded_at FROM calibration_usage
         ${where.length > 0 ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY proposal, run, variable, detector, ctype`,
      )
      .all(...args) as Array<{ proposal: number; run: number; variable: string; detector: string; detname: string; ctype: string; range_key: string; version: number; level: CalibrationUse["level"]; recorded_at: number }>;
    return rows.map((r) => ({
      proposal: r.proposal,
      run: r.run,
      variable: r.variable,
      detector: r.detector,
      detname: r.detname,
      ctype: r.ctype,
      range: r.range_key,
      version: r.version,
      level: r.level,
      recordedAt: r.recorded_at,
    }));
  }

  /** One run's records grouped by variable, for pinning: variable → lookups. */
  pinsOf(proposal: number, run: number): Map<string, CalibrationUse[]> {
    const out = new Map<string, CalibrationUse[]>();
    for (const r of this.list({ proposal, runs: [run] })) {
      const list = out.get(r.variable) ?? [];
      list.push({ detector: r.detector, detname: r.detname, ctype: r.ctype, range: r.range, version: r.version, level: r.level });
      out.set(r.variable, list);
    }
    return out;
  }
}
