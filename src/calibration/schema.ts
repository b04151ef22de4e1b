/**
 * The versioned schema of `<store root>/calib.sqlite` (spec §D.6), kept like the listener's store: the version is
 * SQLite's `PRAGMA user_version`, missing steps are applied in one write transaction, a newer file is refused.
 */
import type Database from "better-sqlite3";
import { DamnitError } from "../core/errors.js";

interface SchemaStep {
  readonly version: number;
  up(db: Database.Database): void;
}

/** v1: detectors, their ctypes, validity ranges (end NULL = open), versions (.npy bytes or text), parameters, history, aliases. */
const v1: SchemaStep = {
  version: 1,
  up(db) {
    db.exec(`
CREATE TABLE detectors(detname TEXT PRIMARY KEY, dettype TEXT NOT NULL, detid TEXT NOT NULL, predecessor TEXT, successor TEXT, created REAL NOT NULL);
CREATE TABLE ctypes(detname TEXT NOT NULL REFERENCES detectors(detname), ctype TEXT NOT NULL, PRIMARY KEY (detname, ctype));
CREATE TABLE ranges(detname TEXT NOT NULL, ctype TEXT NOT NULL, key TEXT NOT NULL, begin REAL NOT NULL, "end" REAL, versdef INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (detname, ctype, key), FOREIGN KEY (detname, ctype) REFERENCES ctypes(detname, ctype));
CREATE INDEX ranges_by_begin ON ranges(detname, ctype, begin);
CREATE TABLE versions(detname TEXT NOT NULL, ctype TEXT NOT NULL, range_key TEXT NOT NULL, vnum INTEGER NOT NULL, tsprod REAL NOT NULL,
  dtype TEXT NOT NULL, shape TEXT NOT NULL, data BLOB, text TEXT,
  PRIMARY KEY (detname, ctype, range_key, vnum), FOREIGN KEY (detname, ctype, range_key) REFERENCES ranges(detname, ctype, key));
CREATE TABLE params(scope TEXT NOT NULL, key TEXT NOT NULL, value, PRIMARY KEY (scope, key));
CREATE TABLE history(id INTEGER PRIMARY KEY AUTOINCREMENT, scope TEXT NOT NULL, tsec REAL NOT NULL, record TEXT NOT NULL);
CREATE INDEX history_by_scope ON history(scope, tsec);
CREATE TABLE aliases(alias TEXT NOT NULL, detname TEXT NOT NULL, begin REAL, "end" REAL);
CREATE INDEX aliases_by_alias ON aliases(alias);
`);
  },
};

/**
 * v2: an index in exactly the order a get picks its range (latest begin; for equal begins closed before open,
 * shorter before longer), so that the winning range is the first index entry scanned instead of a sort.
 */
const v2: SchemaStep = {
  version: 2,
  up(db) {
    db.exec(`CREATE INDEX ranges_by_precedence ON ranges(detname, ctype, begin, ("end" IS NULL) DESC, "end" DESC)`);
  },
};

const STEPS: readonly SchemaStep[] = [v1, v2];
export const LATEST_CALIB_VERSION = STEPS[STEPS.length - 1]!.version;

export function calibVersion(db: Database.Database): number {
  return db.pragma("user_version", { simple: true }) as number;
}

export function refuseNewer(version: number, path: string): void {
  if (version > LATEST_CALIB_VERSION) {
    throw new DamnitError("TOO_NEW", `${path} is at calibration-store version ${version}, newer than this damnit knows (${LATEST_CALIB_VERSION}); upgrade damnit`);
  }
}

/** Bring the file to the latest version in one BEGIN IMMEDIATE transaction (two openers at once: one waits). */
export function upgradeCalib(db: Database.Database, path: string): void {
  if (calibVersion(db) === LATEST_CALIB_VERSION) return;
  db.transaction(() => {
    const at = calibVersion(db);
    refuseNewer(at, path);
    for (const step of STEPS) {
      if (step.version <= at) continue;
      step.up(db);
      db.pragma(`user_version = ${step.version}`);
    }
  }).immediate();
}
