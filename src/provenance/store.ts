/**
 * `<db dir>/provenance.sqlite`: one row per processing attempt of a run, holding its provenance record (JSON).
 * A file of its own beside runs.sqlite, so that DAMNIT's tools, which open runs.sqlite, see no new table. Many
 * jobs on many hosts write it, as they write runs.sqlite: rollback journal, a busy timeout, short
 * `BEGIN IMMEDIATE` transactions (an attempt number is taken as max + 1 inside one); made mode 0666 like runs.sqlite.
 */
import Database from "better-sqlite3";
import { chmodSync, existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { DamnitError } from "../core/errors.js";
import { isSqliteError } from "../core/sqlite-errors.js";
import type { ProvenanceRecord } from "./record.js";

export const PROVENANCE_FILE = "provenance.sqlite";
const BUSY_TIMEOUT_MS = 30_000;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS attempts(
  proposal      INTEGER NOT NULL,
  run           INTEGER NOT NULL,
  attempt       INTEGER NOT NULL,
  processing_id TEXT NOT NULL,
  status        TEXT NOT NULL CHECK(status IN ('running','ok','failed')),
  message       TEXT,
  started_at    REAL NOT NULL,
  finished_at   REAL,
  record        TEXT NOT NULL,
  PRIMARY KEY(proposal, run, attempt)
);
`;

export type AttemptStatus = "running" | "ok" | "failed";

export interface AttemptRow {
  readonly proposal: number;
  readonly run: number;
  readonly attempt: number;
  readonly processingId: string;
  readonly status: AttemptStatus;
  readonly message: string | null;
  readonly startedAt: number;
  readonly finishedAt: number | null;
  readonly record: ProvenanceRecord;
}

interface Row {
  proposal: number;
  run: number;
  attempt: number;
  processing_id: string;
  status: AttemptStatus;
  message: string | null;
  started_at: number;
  finished_at: number | null;
  record: string;
}

const toAttempt = (r: Row): AttemptRow => ({
  proposal: r.proposal,
  run: r.run,
  attempt: r.attempt,
  processingId: r.processing_id,
  status: r.status,
  message: r.message,
  startedAt: r.started_at,
  finishedAt: r.finished_at,
  record: JSON.parse(r.record) as ProvenanceRecord,
});

export function provenanceFile(dbDir: string): string {
  return join(dbDir, PROVENANCE_FILE);
}

export class ProvenanceStore {
  private constructor(
    readonly file: string,
    private readonly sqlite: Database.Database,
  ) {}

  /** Open (creating it unless `readonly`); PROVENANCE_DB naming the file when it cannot be used, NO_PROVENANCE when absent and read-only. */
  static open(dbDir: string, opts: { readonly?: boolean } = {}): ProvenanceStore {
    const file = resolve(provenanceFile(dbDir));
    if (opts.readonly && !existsSync(file)) throw new DamnitError("NO_PROVENANCE", `no provenance has been recorded in ${dbDir} (${PROVENANCE_FILE} does not exist); process a run first`);
    let sqlite: Database.Database | undefined;
    const fresh = !existsSync(file);
    try {
      sqlite = new Database(file, { readonly: opts.readonly ?? false, fileMustExist: opts.readonly ?? false, timeout: BUSY_TIMEOUT_MS });
      if (opts.readonly) sqlite.prepare("SELECT count(*) FROM attempts").get();
      else {
        if (String(sqlite.pragma("journal_mode", { simple: true })).toLowerCase() !== "delete") sqlite.pragma("journal_mode = DELETE");
        sqlite.exec(SCHEMA);
        // Shared by the team's jobs like runs.sqlite (world-writable, as DAMNIT makes its databases).
        if (fresh) chmodSync(file, 0o666);
      }
      return new ProvenanceStore(file, sqlite);
    } catch (err) {
      sqlite?.close();
      if (isSqliteError(err)) throw new DamnitError("PROVENANCE_DB", `the provenance database ${file} cannot be used: ${err.message}`, { cause: err });
      throw err;
    }
  }

  close(): void {
    this.sqlite.close();
  }

  /** A new attempt for the run (number max + 1), status running; returns its number. */
  begin(record: Omit<ProvenanceRecord, "attempt">): number {
    return this.sqlite
      .transaction(() => {
        const { n } = this.sqlite.prepare("SELECT coalesce(max(attempt), 0) + 1 AS n FROM attempts WHERE proposal = ? AND run = ?").get(record.proposal, record.run) as { n: number };
        this.sqlite
          .prepare("INSERT INTO attempts(proposal, run, attempt, processing_id, status, started_at, record) VALUES (?, ?, ?, ?, 'running', ?, ?)")
          .run(record.proposal, record.run, n, record.processingId, record.startedAt, JSON.stringify({ ...record, attempt: n }));
        return n;
      })
      .immediate();
  }

  finish(record: ProvenanceRecord, status: Exclude<AttemptStatus, "running">, message: string | undefined): void {
    this.sqlite
      .transaction(() =>
        this.sqlite
          .prepare("UPDATE attempts SET status = ?, message = ?, finished_at = ?, record = ? WHERE proposal = ? AND run = ? AND attempt = ?")
          .run(status, message ?? null, Date.now() / 1000, JSON.stringify(record), record.proposal, record.run, record.attempt),
      )
      .immediate();
  }

  list(proposal: number, run: number): AttemptRow[] {
    return (this.sqlite.prepare("SELECT * FROM attempts WHERE proposal = ? AND run = ? ORDER BY attempt").all(proposal, run) as Row[]).map(toAttempt);
  }

  get(proposal: number, run: number, attempt: number): AttemptRow | undefined {
    const row = this.sqlite.prepare("SELECT * FROM attempts WHERE proposal = ? AND run = ? AND attempt = ?").get(proposal, run, attempt) as Row | undefined;
    return row && toAttempt(row);
  }
}
