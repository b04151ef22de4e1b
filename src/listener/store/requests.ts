/**
 * The processing requests the listener made (`processing_requests`): so a duplicate notification does not start a
 * second job while the first is queued or running, local jobs survive a restart, and `damnit listener requests`
 * can show what happened.
 */
import type { DataKind } from "../../core/data-kind.js";
import type Database from "better-sqlite3";
import { resolve } from "node:path";

/** submitting: recorded before sbatch runs, its job id not known yet */
export type RequestState = "submitting" | "queued" | "submitted" | "running" | "finished" | "failed";

/** The states of a request whose job may still be queued or running: the one list the queries below use. */
export const ACTIVE_REQUEST_STATES: readonly RequestState[] = ["queued", "submitted", "running"];

export interface ProcessingRequestRow {
  readonly processingId: string;
  readonly dbDir: string;
  readonly proposal: number;
  readonly run: number;
  readonly data: DataKind;
  /** where the request came from: `kafka <topic>[<partition>]@<offset>`, `watch`, `reprocess` */
  readonly source: string;
  readonly receivedAt: number;
  readonly via: "slurm" | "local" | null;
  readonly slurmJobId: string | null;
  readonly slurmCluster: string | null;
  readonly state: RequestState;
  readonly finishedAt: number | null;
  readonly message: string | null;
  /** (proposal, run, data kind, context hash): see jobs/idempotency.ts */
  readonly idempotencyKey?: string | null;
  /** the sbatch child submitting it (state submitting) */
  readonly submitPid?: number | null;
}

/** `state IN (?, ?, …)` with its values, for one list of states. */
function stateIn(states: readonly RequestState[]): { sql: string; values: readonly RequestState[] } {
  return { sql: `state IN (${states.map(() => "?").join(", ")})`, values: states };
}

export class ProcessingRequests {
  constructor(private readonly sqlite: Database.Database) {}

  record(row: Omit<ProcessingRequestRow, "finishedAt" | "message">): void {
    this.sqlite
      .prepare(
        `INSERT INTO processing_requests(processing_id, db_dir, proposal, run, data, source, received_at, via, slurm_job_id, slurm_cluster, state, idempotency_key)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(row.processingId, row.dbDir, row.proposal, row.run, row.data, row.source, row.receivedAt, row.via, row.slurmJobId, row.slurmCluster, row.state, row.idempotencyKey ?? null);
  }

  /** The pid of the sbatch child submitting this request (before its answer). */
  setSubmitPid(processingId: string, pid: number): void {
    this.sqlite.prepare("UPDATE processing_requests SET submit_pid = ? WHERE processing_id = ?").run(pid, processingId);
  }

  /**
   * The requests one notification made for this database, oldest first: known by its source and its time (a
   * watched run that changes again is a new notification from the same source, at a later time).
   */
  forNotification(dbDir: string, source: string, receivedAt: number): ProcessingRequestRow[] {
    const rows = this.sqlite
      .prepare("SELECT * FROM processing_requests WHERE db_dir = ? AND source = ? AND received_at = ? ORDER BY received_at")
      .all(resolve(dbDir), source, receivedAt) as RawRequest[];
    return rows.map(fromRaw);
  }

  update(processingId: string, state: RequestState, fields: { message?: string | null; slurmJobId?: string; slurmCluster?: string; via?: "slurm" | "local" } = {}): void {
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

  /** Requests for this run and data kind whose job may still be queued or running (ACTIVE_REQUEST_STATES). */
  active(dbDir: string, proposal: number, run: number, data: string): ProcessingRequestRow[] {
    const states = stateIn(ACTIVE_REQUEST_STATES);
    const rows = this.sqlite
      .prepare(`SELECT * FROM processing_requests WHERE db_dir = ? AND proposal = ? AND run = ? AND data = ? AND ${states.sql} ORDER BY received_at`)
      .all(resolve(dbDir), proposal, run, data, ...states.values) as RawRequest[];
    return rows.map(fromRaw);
  }

  /** Local requests not finished (the listener stopped while they were queued or running). */
  unfinishedLocal(): ProcessingRequestRow[] {
    // A local request is never "submitted": that state is a Slurm job's.
    const states = stateIn(ACTIVE_REQUEST_STATES.filter((s) => s !== "submitted"));
    const rows = this.sqlite.prepare(`SELECT * FROM processing_requests WHERE via = 'local' AND ${states.sql} ORDER BY received_at`).all(...states.values) as RawRequest[];
    return rows.map(fromRaw);
  }

  /** The latest requests, newest first. */
  latest(opts: { limit?: number } = {}): ProcessingRequestRow[] {
    const rows = this.sqlite.prepare(`SELECT * FROM processing_requests ORDER BY received_at DESC LIMIT ?`).all(opts.limit ?? 100) as RawRequest[];
    return rows.map(fromRaw);
  }
}

interface RawRequest {
  processing_id: string;
  db_dir: string;
  proposal: number;
  run: number;
  data: DataKind;
  source: string;
  received_at: number;
  via: "slurm" | "local" | null;
  slurm_job_id: string | null;
  slurm_cluster: string | null;
  state: RequestState;
  finished_at: number | null;
  message: string | null;
  idempotency_key?: string | null;
  submit_pid?: number | null;
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
    idempotencyKey: r.idempotency_key ?? null,
    submitPid: r.submit_pid ?? null,
  };
}
