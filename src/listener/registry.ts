/**
 * The listener's own state, `<listener dir>/listener.sqlite` (spec §1.2): which database directories get jobs for
 * which proposal, the listener settings, and the processing requests it made (so a duplicate notification does not
 * start a second job while the first is queued or running, and local jobs survive a restart).
 * DAMNIT's two tables are kept exactly, so either implementation can open the file.
 */
import Database from "better-sqlite3";
import { chmodSync, mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { DamnitError } from "../core/errors.js";
import { SettingsReader, storedDefault } from "../core/settings.js";
import { LISTENER_SETTINGS, type ListenerSettings } from "./settings.js";

export type SettingValue = string | number;

export interface RegisteredDatabase {
  readonly proposal: number;
  readonly dbDir: string;
  readonly official: boolean;
}

export interface InboxEntry {
  readonly source: string;
  readonly proposal: number;
  readonly run: number;
  readonly kind: "raw" | "proc";
  readonly addedAt: number;
}

export type RequestState = "queued" | "submitted" | "running" | "finished" | "failed";
export const ACTIVE_STATES: readonly RequestState[] = ["queued", "submitted", "running"];

export interface ProcessingRequestRow {
  readonly processingId: string;
  readonly dbDir: string;
  readonly proposal: number;
  readonly run: number;
  readonly data: "raw" | "proc" | "all";
  /** where the request came from: `kafka <topic>[<partition>]@<offset>`, `watch`, `reprocess` */
  readonly source: string;
  readonly receivedAt: number;
  readonly via: "slurm" | "local" | null;
  readonly slurmJobId: string | null;
  readonly slurmCluster: string | null;
  readonly state: RequestState;
  readonly finishedAt: number | null;
  readonly message: string | null;
}

const SCHEMA = `
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
`;

export class ListenerRegistry {
  /** the listener's settings, typed and with their defaults from LISTENER_SETTINGS */
  readonly settings = new SettingsReader<ListenerSettings>(LISTENER_SETTINGS, (key) => this.getSetting(key));

  private constructor(
    readonly sqlite: Database.Database,
    readonly dir: string,
    readonly path: string,
  ) {}

  /** Open (creating when missing) `listener.sqlite` in `dir`. */
  static open(dirArg: string): ListenerRegistry {
    const dir = resolve(dirArg);
    mkdirSync(dir, { recursive: true });
    const path = join(dir, "listener.sqlite");
    let sqlite: Database.Database;
    try {
      sqlite = new Database(path, { timeout: 10_000 });
      sqlite.exec(SCHEMA);
      const insert = sqlite.prepare("INSERT OR IGNORE INTO settings(key, value) VALUES (?, ?)");
      for (const [key, spec] of Object.entries(LISTENER_SETTINGS)) if (spec.stored) insert.run(key, storedDefault(spec));
    } catch (err) {
      const e = err as { code?: string; message: string };
      if (e.code === "SQLITE_READONLY" || e.code === "SQLITE_CANTOPEN") {
        throw new DamnitError("READ_ONLY", `cannot open ${path} for writing: ${e.message}`, { cause: err });
      }
      if (e.code === "SQLITE_NOTADB" || e.code === "SQLITE_CORRUPT") {
        throw new DamnitError("NOT_SQLITE", `${path} is not a usable SQLite database: ${e.message}`, { cause: err });
      }
      throw err;
    }
    try {
      chmodSync(path, 0o666);
    } catch {
      // someone else's file: leave its mode alone
    }
    return new ListenerRegistry(sqlite, dir, path);
  }

  close(): void {
    if (this.sqlite.open) this.sqlite.close();
  }

  /** static_mode and the registered proposals, re-read when the file changed (checked at most every 250 ms) */
  private snapshot: { version: number; checkedAt: number; staticMode: boolean; proposals: Set<number> } | undefined;

  /**
   * Whether a notification for `proposal` can concern this listener (a registered proposal, or dynamic mode). Cheap,
   * for the many notifications of other proposals: answered from memory, refreshed when `PRAGMA data_version` says
   * another process changed the file; this connection's own changes clear it at once.
   */
  mayConcern(proposal: number): boolean {
    const now = Date.now();
    if (!this.snapshot || now - this.snapshot.checkedAt > 250) {
      const version = Number(this.sqlite.pragma("data_version", { simple: true }));
      if (!this.snapshot || version !== this.snapshot.version) {
        this.snapshot = { version, checkedAt: now, staticMode: this.settings.get("static_mode"), proposals: new Set(this.databases().map((d) => d.proposal)) };
      }
      this.snapshot.checkedAt = now;
    }
    return !this.snapshot.staticMode || this.snapshot.proposals.has(proposal);
  }

  // --- databases -------------------------------------------------------------------------------------------

  addDatabase(proposal: number, dbDirArg: string, official: boolean): RegisteredDatabase {
    this.snapshot = undefined;
    const dbDir = resolve(dbDirArg);
    try {
      this.sqlite.prepare("INSERT INTO proposal_databases(proposal, db_dir, official) VALUES (?, ?, ?)").run(proposal, dbDir, official ? 1 : 0);
    } catch (err) {
      if ((err as { code?: string }).code === "SQLITE_CONSTRAINT_UNIQUE") {
        const existing = this.sqlite.prepare("SELECT proposal FROM proposal_databases WHERE db_dir = ?").get(dbDir) as { proposal: number };
        throw new DamnitError("BAD_ARGUMENT", `${dbDir} is already registered (for proposal ${existing.proposal})`);
      }
      throw err;
    }
    return { proposal, dbDir, official };
  }

  /** Unregister a directory; false when it was not registered. */
  removeDatabase(dbDirArg: string): boolean {
    this.snapshot = undefined;
    return this.sqlite.prepare("DELETE FROM proposal_databases WHERE db_dir = ?").run(resolve(dbDirArg)).changes > 0;
  }

  databases(proposal?: number): RegisteredDatabase[] {
    const rows = (
      proposal === undefined
        ? this.sqlite.prepare("SELECT proposal, db_dir, official FROM proposal_databases ORDER BY proposal, db_dir").all()
        : this.sqlite.prepare("SELECT proposal, db_dir, official FROM proposal_databases WHERE proposal = ? ORDER BY db_dir").all(proposal)
    ) as Array<{ proposal: number; db_dir: string; official: number }>;
    return rows.map((r) => ({ proposal: Number(r.proposal), dbDir: String(r.db_dir), official: Boolean(r.official) }));
  }

  isRegistered(dbDirArg: string): boolean {
    return this.sqlite.prepare("SELECT 1 FROM proposal_databases WHERE db_dir = ?").get(resolve(dbDirArg)) !== undefined;
  }

  // --- settings --------------------------------------------------------------------------------------------

  allSettings(): Record<string, SettingValue> {
    const rows = this.sqlite.prepare("SELECT key, value FROM settings ORDER BY key").all() as Array<{ key: string; value: SettingValue }>;
    return Object.fromEntries(rows.map((r) => [r.key, r.value]));
  }

  getSetting(key: string): SettingValue | undefined {
    const row = this.sqlite.prepare("SELECT value FROM settings WHERE key = ?").get(key) as { value: SettingValue } | undefined;
    return row?.value ?? undefined;
  }

  setSetting(key: string, value: SettingValue): void {
    this.snapshot = undefined;
    this.sqlite.prepare("INSERT INTO settings(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value").run(key, value);
  }

  deleteSetting(key: string): boolean {
    this.snapshot = undefined;
    return this.sqlite.prepare("DELETE FROM settings WHERE key = ?").run(key).changes > 0;
  }

  // --- inbox: notifications received and not yet fully handled (replayed at start) --------------------------

  receive(n: InboxEntry): void {
    this.sqlite
      .prepare("INSERT OR REPLACE INTO inbox(source, proposal, run, kind, added_at, received_at, handled_at) VALUES (?, ?, ?, ?, ?, ?, NULL)")
      .run(n.source, n.proposal, n.run, n.kind, n.addedAt, Date.now() / 1000);
  }

  /** The notification's jobs were submitted (or refused): kept a week, so a redelivery of it is recognised. */
  handled(source: string): void {
    this.sqlite.prepare("UPDATE inbox SET handled_at = ? WHERE source = ?").run(Date.now() / 1000, source);
  }

  wasHandled(source: string): boolean {
    return this.sqlite.prepare("SELECT 1 FROM inbox WHERE source = ? AND handled_at IS NOT NULL").get(source) !== undefined;
  }

  /** Notifications received and not handled (the listener stopped in between). */
  inbox(): InboxEntry[] {
    const rows = this.sqlite.prepare("SELECT source, proposal, run, kind, added_at FROM inbox WHERE handled_at IS NULL ORDER BY received_at").all() as Array<{
      source: string;
      proposal: number;
      run: number;
      kind: "raw" | "proc";
      added_at: number;
    }>;
    return rows.map((r) => ({ source: r.source, proposal: r.proposal, run: r.run, kind: r.kind, addedAt: r.added_at }));
  }

  /** Forget handled notifications older than `days`. */
  pruneInbox(days = 7): void {
    this.sqlite.prepare("DELETE FROM inbox WHERE handled_at IS NOT NULL AND handled_at < ?").run(Date.now() / 1000 - days * 86400);
  }

  // --- processing requests ---------------------------------------------------------------------------------

  recordRequest(row: Omit<ProcessingRequestRow, "finishedAt" | "message">): void {
    this.sqlite
      .prepare(
        `INSERT INTO processing_requests(processing_id, db_dir, proposal, run, data, source, received_at, via, slurm_job_id, slurm_cluster, state)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(row.processingId, row.dbDir, row.proposal, row.run, row.data, row.source, row.receivedAt, row.via, row.slurmJobId, row.slurmCluster, row.state);
  }

  updateRequest(processingId: string, state: RequestState, fields: { message?: string | null; slurmJobId?: string; slurmCluster?: string; via?: "slurm" | "local" } = {}): void {
    const done = state === "finished" || state === "failed";
    this.sqlite
      .prepare(
        `UPDATE processing_requests SET state = ?, finished_at = CASE WHEN ? THEN ? ELSE finished_at END,
           message = COALESCE(?, message), slurm_job_id = COALESCE(?, slurm_job_id), slurm_cluster = COALESCE(?, slurm_cluster),
           via = COALESCE(?, via)
         WHERE processing_id = ?`,
      )
      .run(state, done ? 1 : 0, Date.now() / 1000, fields.message ?? null, fields.slurmJobId ?? null, fields.slurmCluster ?? null, fields.via ?? null, processingId);
  }

  /** Requests for this run and data kind that are queued, submitted or running. */
  activeRequests(dbDir: string, proposal: number, run: number, data: string): ProcessingRequestRow[] {
    const rows = this.sqlite
      .prepare(
        `SELECT * FROM processing_requests WHERE db_dir = ? AND proposal = ? AND run = ? AND data = ?
           AND state IN ('queued', 'submitted', 'running') ORDER BY received_at`,
      )
      .all(resolve(dbDir), proposal, run, data) as RawRequest[];
    return rows.map(fromRaw);
  }

  /** Local requests not finished (the listener stopped while they were queued or running). */
  unfinishedLocalRequests(): ProcessingRequestRow[] {
    const rows = this.sqlite
      .prepare(`SELECT * FROM processing_requests WHERE via = 'local' AND state IN ('queued', 'running') ORDER BY received_at`)
      .all() as RawRequest[];
    return rows.map(fromRaw);
  }

  requests(opts: { limit?: number } = {}): ProcessingRequestRow[] {
    const rows = this.sqlite.prepare(`SELECT * FROM processing_requests ORDER BY received_at DESC LIMIT ?`).all(opts.limit ?? 100) as RawRequest[];
    return rows.map(fromRaw);
  }
}

interface RawRequest {
  processing_id: string;
  db_dir: string;
  proposal: number;
  run: number;
  data: "raw" | "proc" | "all";
  source: string;
  received_at: number;
  via: "slurm" | "local" | null;
  slurm_job_id: string | null;
  slurm_cluster: string | null;
  state: RequestState;
  finished_at: number | null;
  message: string | null;
}

function fromRaw(r: RawRequest): ProcessingRequestRow {
  return {
    processingId: r.processing_id,
    dbDir: r.db_dir,
    proposal: r.proposal,
    run: r.run,
    data: r.data,
    source: r.source,
    receivedAt: r.received_at,
    via: r.via,
    slurmJobId: r.slurm_job_id,
    slurmCluster: r.slurm_cluster,
    state: r.state,
    finishedAt: r.finished_at,
    message: r.message,
  };
}
