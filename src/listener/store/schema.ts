/**
 * The versioned schema of `listener.sqlite`. Each step is one version; the version a file is at is SQLite's own
 * `PRAGMA user_version` (in the file header, so DAMNIT's listener, which only creates its two tables if missing,
 * neither sees nor disturbs it). Opening applies the missing steps in one write transaction, so a file is at one
 * version or the next, never half-way; a file from a newer damnit is refused untouched.
 *
 * A file with no version recorded (0) was made by DAMNIT or by damnit before versions were kept: step 1 creates only
 * what is missing (`IF NOT EXISTS`), which adopts such a file without changing a row of it.
 */
import type Database from "better-sqlite3";
import { DamnitError } from "../../core/errors.js";

export interface SchemaStep {
  readonly version: number;
  readonly name: string;
  up(db: Database.Database): void;
}

/**
 * v1: the schema as damnit made it before versions were kept. DAMNIT's `proposal_databases` and `settings` exactly
 * as DAMNIT has them (untyped columns, spec §1.2), our processing requests and inbox, and the run watcher's record
 * of what it has seen.
 */
const v1Baseline: SchemaStep = {
  version: 1,
  name: "v1-baseline",
  up(db) {
    db.exec(`
CREATE TABLE IF NOT EXISTS proposal_databases(proposal, db_dir UNIQUE, official);
CREATE INDEX IF NOT EXISTS proposals ON proposal_databases(proposal);
CREATE TABLE IF NOT EXISTS settings(key PRIMARY KEY NOT NULL, value);
CREATE TABLE IF NOT EXISTS processing_requests(
  processing_id TEXT PRIMARY KEY,
  db_dir TEXT NOT NULL,
  proposal INTEGER NOT NULL,
  run INTEGER NOT NULL,
  data TEXT NOT NULL,
  source TEXT NOT NULL,
  received_at REAL NOT NULL,
  via TEXT,
  slurm_job_id TEXT,
  slurm_cluster TEXT,
  state TEXT NOT NULL,
  finished_at REAL,
  message TEXT
);
CREATE TABLE IF NOT EXISTS inbox(
  source TEXT PRIMARY KEY,
  proposal INTEGER NOT NULL,
  run INTEGER NOT NULL,
  kind TEXT NOT NULL,
  added_at REAL NOT NULL,
  received_at REAL NOT NULL,
  handled_at REAL
);
CREATE INDEX IF NOT EXISTS processing_requests_run ON processing_requests(db_dir, proposal, run, data, state);
CREATE TABLE IF NOT EXISTS watched_runs(proposal INTEGER NOT NULL, run INTEGER NOT NULL, kind TEXT NOT NULL, signature TEXT NOT NULL,
  PRIMARY KEY (proposal, run, kind));
CREATE TABLE IF NOT EXISTS watched_proposals(proposal INTEGER PRIMARY KEY, since REAL NOT NULL);
`);
  },
};

/**
 * v2: the messages given up on (quarantine), attempts at replaying each inbox entry (counted before each try, so
 * one that kills the listener is not replayed for ever), and the listener's last reported health. A message is known by topic, partition, offset and record time: offsets start
 * again at 0 when a topic is recreated.
 */
const v2Quarantine: SchemaStep = {
  version: 2,
  name: "v2-quarantine-health",
  up(db) {
    db.exec(`
ALTER TABLE inbox ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
CREATE TABLE quarantine(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  topic TEXT NOT NULL,
  partition INTEGER NOT NULL,
  "offset" TEXT NOT NULL,
  timestamp REAL NOT NULL,
  key BLOB,
  value BLOB,
  value_bytes INTEGER NOT NULL,
  error TEXT NOT NULL,
  attempts INTEGER NOT NULL,
  quarantined_at REAL NOT NULL,
  retry_requested_at REAL,
  UNIQUE (topic, partition, "offset", timestamp)
);
CREATE TABLE health(key TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at REAL NOT NULL, pid INTEGER NOT NULL);
`);
  },
};

/**
 * v3: exactly one job per request. The request's idempotency key, and the pid of the sbatch child submitting it
 * (state 'submitting', recorded before sbatch runs): a listener restarted after a kill waits for that child, then
 * looks for the job by the processing id in its comment instead of submitting again.
 */
const v3Idempotency: SchemaStep = {
  version: 3,
  name: "v3-idempotency",
  up(db) {
    db.exec(`
ALTER TABLE processing_requests ADD COLUMN idempotency_key TEXT;
ALTER TABLE processing_requests ADD COLUMN submit_pid INTEGER;
CREATE INDEX processing_requests_source ON processing_requests(db_dir, source);
`);
  },
};

/** Every step, in order. A new version is one new step at the end of this list. */
export const SCHEMA_STEPS: readonly SchemaStep[] = [v1Baseline, v2Quarantine, v3Idempotency];

export const LATEST_STORE_VERSION = SCHEMA_STEPS.length;

export function storeVersion(db: Database.Database): number {
  return Number(db.pragma("user_version", { simple: true }));
}

export function refuseNewer(version: number, path: string): void {
  if (version > LATEST_STORE_VERSION) {
    throw new DamnitError(
      "TOO_NEW",
      `${path} is listener store v${version}, newer than this damnit understands (v${LATEST_STORE_VERSION}); update damnit to use it (the file was not changed)`,
    );
  }
}

/**
 * Bring the file to the latest version: the missing steps and the new version number in one transaction (BEGIN
 * IMMEDIATE: a second opener waits, then finds the work done). Returns the version the file was at.
 */
export function upgradeStore(db: Database.Database, path: string): number {
  SCHEMA_STEPS.forEach((s, i) => {
    if (s.version !== i + 1) throw new Error(`listener store step ${s.name} has version ${s.version}, expected ${i + 1}`);
  });
  const seen = storeVersion(db);
  refuseNewer(seen, path);
  if (seen === LATEST_STORE_VERSION) return seen; // nothing to write: a read-only file opens as well
  db.exec("BEGIN IMMEDIATE");
  try {
    // Read again under the write lock: another process may have upgraded meanwhile.
    const from = storeVersion(db);
    refuseNewer(from, path);
    for (const step of SCHEMA_STEPS) {
      if (step.version <= from) continue;
      try {
        step.up(db);
      } catch (err) {
        throw new DamnitError("MIGRATION_FAILED", `upgrading ${path} from v${from} failed at step ${step.name}: ${(err as Error).message}; nothing was changed`, {
          cause: err,
        });
      }
    }
    db.pragma(`user_version = ${LATEST_STORE_VERSION}`);
    db.exec("COMMIT");
    return from;
  } finally {
    if (db.inTransaction) db.exec("ROLLBACK");
  }
}
