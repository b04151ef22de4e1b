/**
 * Recording processing attempts in a run's bookkeeping file. Every stage of a request (made, submitted, running,
 * finished or failed) is one `noteAttempt` call, keyed by processing id: the first call for an id appends attempt
 * `max(existing)+1` with the next database-wide `unique_attempt`, later ones merge into it. The read-merge-write
 * happens under the database's write lock (BEGIN IMMEDIATE), so concurrent jobs of one run never lose an attempt,
 * and the file is replaced atomically. An outcome never goes back a stage (a job that already runs is not marked
 * "submitted" again by the submitter's late note).
 */
import type { Logger } from "pino";
import { RunDatabase } from "../db/run-database.js";
import { contextHash } from "../jobs/idempotency.js";
import { damnitVersion } from "../version.js";
import { sortedJson, writeFileAtomically } from "./atomic-file.js";
import { advanceCounters, writeCounterMirrors } from "./counters.js";
import { ensureRunInfoDirectories, runFilePath } from "./paths.js";
import { OUTCOME_RANK, readRunRecord, requestTime, type Attempt, type AttemptOrigin, type AttemptOutcome, type ConsistencyRecord, type RunRecord } from "./run-record.js";

export interface AttemptNote {
  readonly proposal: number;
  readonly run: number;
  readonly processingId: string;
  readonly outcome: AttemptOutcome;
  /** for a new attempt; default "cli" */
  readonly origin?: AttemptOrigin;
  readonly data?: string;
  readonly slurmJob?: string | null;
  readonly error?: string | null;
  /** the notification that led to the request (Kafka topic/partition/offset, or the watcher's), for a new attempt */
  readonly notification?: Record<string, unknown> | null;
  readonly dataConsistency?: Omit<ConsistencyRecord, "processing_id" | "checked_at">;
  /** epoch seconds; default now */
  readonly at?: number;
}

/** Record one stage of an attempt (see the file comment); returns the attempt as stored. */
export async function noteAttempt(db: RunDatabase, note: AttemptNote, logger?: Logger): Promise<Attempt> {
  const file = runFilePath(db.dir, note.run);
  const at = note.at ?? Date.now() / 1000;
  return db.withWriteLock(() => {
    ensureRunInfoDirectories(db.dir, note.run);
    const record: RunRecord = readRunRecord(file, (kept, why) => logger?.warn(`${file} was not a run record (${why}); kept as ${kept}, starting a new one`)) ?? {
      proposal: note.proposal,
      run: note.run,
      run_data: note.data ?? null,
      notification: null,
      request_time: requestTime(at),
      damnit_version: damnitVersion(),
      context_hash: contextHash(db.dir),
      attempts: [],
    };
    let attempt = record.attempts.find((a) => a.processing_id === note.processingId);
    const counters = advanceCounters(db.sqlite, note.run, db.path, { newAttempt: attempt === undefined });
    if (!attempt) {
      attempt = {
        attempt: record.attempts.reduce((m, a) => Math.max(m, a.attempt), 0) + 1,
        unique_attempt: counters.lastAttempt,
        processing_id: note.processingId,
        origin: note.origin ?? "cli",
        outcome: note.outcome,
        run_data: note.data ?? null,
        slurm_job: null,
        request_time: requestTime(at),
        requested_at: at,
        started_at: null,
        finished_at: null,
        error: null,
      };
      record.attempts.push(attempt);
      // The latest request's context: what the run was (last) asked to be processed with.
      record.request_time = attempt.request_time;
      record.damnit_version = damnitVersion();
      record.context_hash = contextHash(db.dir);
      if (note.data) record.run_data = note.data;
      if (note.notification !== undefined) record.notification = note.notification;
    }
    if (OUTCOME_RANK[note.outcome] >= OUTCOME_RANK[attempt.outcome]) attempt.outcome = note.outcome;
    if (note.outcome === "running") attempt.started_at ??= at;
    if (OUTCOME_RANK[note.outcome] === OUTCOME_RANK.finished) attempt.finished_at = at;
    if (note.slurmJob) attempt.slurm_job = note.slurmJob;
    if (note.error !== undefined) attempt.error = note.error;
    if (note.dataConsistency) record.data_consistency = { ...note.dataConsistency, processing_id: note.processingId, checked_at: at };
    writeFileAtomically(file, sortedJson(record));
    writeCounterMirrors(db.dir, counters);
    return { ...attempt };
  });
}

/**
 * `noteAttempt` for callers whose work must not fail because of bookkeeping (a job, the listener): a failure is
 * logged as a warning and undefined returned. Closed or read-only databases are the caller's to refuse first.
 */
export async function noteAttemptSafely(db: RunDatabase, note: AttemptNote, logger: Logger): Promise<Attempt | undefined> {
  try {
    return await noteAttempt(db, note, logger);
  } catch (err) {
    logger.warn(`Could not record attempt ${note.processingId} of p${note.proposal} r${note.run} in ${runFilePath(db.dir, note.run)}: ${(err as Error).message}`);
    return undefined;
  }
}

/** `noteAttemptSafely` for a database not open here (the listener after a submission). */
export async function noteAttemptIn(dbDir: string, note: AttemptNote, logger: Logger): Promise<Attempt | undefined> {
  let db: RunDatabase;
  try {
    db = await RunDatabase.open(dbDir);
  } catch (err) {
    logger.warn(`Could not record attempt ${note.processingId} of p${note.proposal} r${note.run} for ${dbDir}: ${(err as Error).message}`);
    return undefined;
  }
  try {
    return await noteAttemptSafely(db, note, logger);
  } finally {
    db.close();
  }
}
