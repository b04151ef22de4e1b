/**
 * From a run that is ready to a job (spec §1.4 step 5): for each database registered for the proposal, record the
 * run, skip it when a job for the same run and data is still queued or running, else submit a Slurm job, falling
 * back to processing here when that fails and local processing is allowed. One database's failure (read-only,
 * corrupt, from the future) is logged and the others are still processed. Every request is audited in its
 * database's trail (a line before the submission, its outcome after; src/audit/), a failed submission leaves the
 * run's `.err` file, and in audit-only mode the request is only audited (replayed later with `damnit replay`).
 */
import type { RunDataDirectory } from "../core/data-kind.js";
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "pino";
import { writeErrFile } from "../audit/err-files.js";
import type { ListenerTrail } from "../audit/listener-trail.js";
import { kafkaPositionOf, type AuditOrigin, type RequestContext } from "../audit/records.js";
import { auditOutcome, auditRequest } from "../audit/trail.js";
import { noteAttemptIn } from "../bookkeeping/attempts.js";
import { closedReason } from "../bookkeeping/closed.js";
import { DamnitError, isDamnitError } from "../core/errors.js";
import { RunDatabase } from "../db/run-database.js";
import { findProposalDirectory } from "../exdf/open-run.js";
import { activeJobs } from "../jobs/squeue.js";
import { contextHash, findJobByProcessingId, idempotencyKey, jobComment, stopHungSubmission, waitForExit } from "../jobs/idempotency.js";
import { jobName, newProcessingId, type JobRequest } from "../jobs/request.js";
import { submitJob, type SubmitOptions, type SubmittedJob } from "../jobs/sbatch.js";
import { slurmSettings, type SlurmSettings } from "../jobs/slurm-settings.js";
import { pendingState, processingStateSet, updateTopic } from "../messaging/messages.js";
import type { Publisher } from "../messaging/publisher.js";
import type { ListenerStats } from "./control-api/stats.js";
import type { ListenerControl } from "./control.js";
import type { LocalQueue } from "./local-queue.js";
import type { ListenerStore, ProcessingRequestRow } from "./store/index.js";

export interface ReadyRun {
  readonly proposal: number;
  readonly run: number;
  readonly kind: RunDataDirectory;
  /** when the notification was made (seconds since the epoch): the run's added_at */
  readonly addedAt: number;
  /** e.g. `kafka test.r2d2[0]@17` or `watch` */
  readonly source: string;
  /** only these variables (names, or parts of names/titles): a control API reprocess's selection */
  readonly variables?: readonly string[];
  readonly match?: readonly string[];
}

/** What dispatch asks of Slurm: submitting a job, and which jobs are still queued or running. */
export interface Submitter {
  submit(dbDir: string, request: JobRequest, opts: SubmitOptions): Promise<SubmittedJob>;
  /** the ids of these jobs on `cluster` ("" for the local one) still queued or running; null when Slurm cannot say */
  activeJobs(ids: readonly string[], cluster: string): Promise<Set<string> | null>;
  /** the job whose comment carries this processing id (undefined: none; null: Slurm cannot say) */
  findJob?(processingId: string, jobName: string, cluster: string): Promise<string | undefined | null>;
}

/** The real one: sbatch and squeue. */
export const SLURM_SUBMITTER: Submitter = { submit: submitJob, activeJobs, findJob: findJobByProcessingId };

/** How long a restarted listener waits for the sbatch child of the one killed before it. */
const EARLIER_SBATCH_WAIT_MS = 90_000;

export interface DispatchOptions {
  readonly store: ListenerStore;
  /** default SLURM_SUBMITTER */
  readonly submitter?: Submitter;
  readonly local: LocalQueue;
  readonly publisher: Publisher;
  readonly logger: Logger;
  readonly dataRoot: string | undefined;
  /** environment for Slurm jobs (the brokers for their update messages) */
  readonly jobEnv: Record<string, string | undefined>;
  /** process here when sbatch is missing altogether, even with allow_local_processing = 0 (embedded mode) */
  readonly localWithoutSlurm: boolean;
  /** the listener's trail of notifications that made no request (none: not written) */
  readonly trail?: ListenerTrail;
  /** write the databases' request trails (the listener's `audit` setting; default true) */
  readonly audit?: boolean;
  /** `damnit listen --audit-only`: requests are audited, not submitted (also the `audit_only` setting) */
  readonly auditOnly?: boolean;
  /** told of each outcome (the control API's statistics and metrics) */
  readonly stats?: ListenerStats;
  /** paused or not, and the notifications being handled (the control API's) */
  readonly control?: ListenerControl;
}

export interface DispatchOutcome {
  readonly dbDir: string;
  readonly action: "slurm" | "local" | "duplicate" | "adopted" | "failed" | "audit-only" | "skipped";
  readonly detail: string;
}

export const OFFICIAL_SUBDIR = join("usr", "Shared", "amore");

/** The proposal's official database directory, or undefined when the proposal directory is not found. */
export function officialDirectory(proposal: number, dataRoot: string | undefined): string | undefined {
  try {
    return join(findProposalDirectory(proposal, dataRoot), OFFICIAL_SUBDIR);
  } catch {
    return undefined;
  }
}

export async function dispatchRun(ready: ReadyRun, opts: DispatchOptions): Promise<DispatchOutcome[]> {
  const { store, logger } = opts;
  const { proposal: P, run: R } = ready;
  const official = officialDirectory(P, opts.dataRoot);
  const databasesBefore = store.databases.list(P).length;
  // DAMNIT warns; for a proposal with registered databases the lookup only matters in dynamic mode.
  if (!official) logger[databasesBefore > 0 ? "debug" : "warn"](`Could not find proposal directory for p${P}`);
  // Dynamic mode: the official database joins when it exists (spec §1.3).
  if (official && !store.settings.get("static_mode") && existsSync(join(official, "runs.sqlite")) && !store.databases.isRegistered(official)) {
    store.databases.add(P, official, true);
    logger.info(`Registered the official database of p${P}: ${official}`);
  }
  const databases = store.databases.list(P);
  if (databases.length === 0) {
    logger.debug(`p${P} r${R}: no database registered for this proposal`);
    opts.trail?.skipped({ reason: "no database registered for this proposal", source: ready.source, proposal: P, run: R, kind: ready.kind });
    return [];
  }
  const outcomes: DispatchOutcome[] = [];
  for (const { dbDir } of databases) {
    let outcome: DispatchOutcome;
    try {
      outcome = await dispatchToDatabase(ready, dbDir, opts);
    } catch (err) {
      logger.error(`Processing p${P}, r${R} for ${dbDir} failed: ${(err as Error).message}`);
      outcome = { dbDir, action: "failed", detail: (err as Error).message };
    }
    outcomes.push(outcome);
    opts.stats?.outcome(ready, outcome);
  }
  return outcomes;
}

async function dispatchToDatabase(ready: ReadyRun, dbDir: string, opts: DispatchOptions): Promise<DispatchOutcome> {
  const { store, logger } = opts;
  const submitter = opts.submitter ?? SLURM_SUBMITTER;
  const { proposal: P, run: R, kind } = ready;
  const audit = opts.audit ?? true;
  const context = (): RequestContext => ({
    origin: originOf(ready.source),
    kafka: kafkaPositionOf(ready.source),
    idempotencyKey: idempotencyKey(P, R, kind, contextHash(dbDir)),
    notifiedAt: ready.addedAt,
    dbDir,
  });

  // Audit-only (an outage, maintenance): the request is recorded for a replay, and nothing else is done.
  if (opts.auditOnly || store.settings.get("audit_only")) {
    const request: JobRequest = { proposal: P, run: R, data: kind, processingId: newProcessingId(), ...selectionOf(ready) };
    auditRequest(request, context());
    auditOutcome(dbDir, request.processingId, "audit-only");
    logger.info(`Audit-only: recorded p${P} r${R} (${kind}) for ${dbDir} (${request.processingId}); not submitted`);
    return { dbDir, action: "audit-only", detail: request.processingId };
  }

  const db = await RunDatabase.open(dbDir);
  let settings: SlurmSettings;
  let dbId: string;
  try {
    // Fail fast if read-only (spec §1.4 b): a job could not write its results either.
    if (db.readonly) throw new Error(`${db.path} is read-only here; its runs cannot be processed`);
    // A closed database is frozen: its runs are neither added nor processed.
    const closed = closedReason(db);
    if (closed !== undefined) {
      logger.info(`p${P} r${R} (${kind}) for ${dbDir}: skipped: closed (${closed})`);
      opts.trail?.skipped({ reason: `closed (${closed})`, source: ready.source, proposal: P, run: R, kind, dbDir });
      return { dbDir, action: "skipped", detail: "closed" };
    }
    // Through the write lock's asynchronous wait: a job storing results in this process may hold the lock, and a
    // synchronous busy wait here would stop that job from ever finishing.
    await db.withWriteLock(() => db.ensureRun(P, R, { addedAt: ready.addedAt }), {
      onWait: (seconds) => logger.warn(`Waiting ${seconds} s for the write lock of ${db.path} to add p${P} r${R}`),
    });
    logger.info(`Added p${P} r${R} (${kind} data) to database ${dbDir}`);
    // What the job runs is the listener's setting, never the database's (proposal members can write metameta).
    settings = slurmSettings(db, store.settings.get("damnit_command"));
    dbId = db.dbId;
  } finally {
    db.close();
  }

  // This very notification made a request before the listener stopped: that request's job is adopted, not repeated.
  const adopted = await adoptEarlier(ready, dbDir, settings.nonclusterSlurmCluster, opts);
  if (adopted) return adopted;

  const duplicate = await stillActive(store.requests.active(dbDir, P, R, kind), opts);
  if (duplicate) {
    const detail = duplicate.via === "slurm" ? `Slurm job ${duplicate.slurmJobId}` : "processing here";
    logger.info(`p${P} r${R} (${kind}) for ${dbDir} is already queued or running (${detail}); not starting another job`);
    opts.trail?.skipped({ reason: `already queued or running (${detail})`, source: ready.source, proposal: P, run: R, kind, dbDir });
    return { dbDir, action: "duplicate", detail };
  }

  const request: JobRequest = {
    proposal: P,
    run: R,
    data: kind,
    processingId: newProcessingId(),
    updateVars: true,
    sandboxArgs: store.settings.get("sandbox_args"),
    ...selectionOf(ready),
  };
  const requestContext = context();
  const key = requestContext.idempotencyKey;
  if (audit) auditRequest(request, requestContext);
  const base = { processingId: request.processingId, dbDir, proposal: P, run: R, data: kind, source: ready.source, receivedAt: ready.addedAt, idempotencyKey: key };
  // Recorded before sbatch runs, with the id that goes into the job's comment: a listener killed during sbatch
  // leaves this row for its successor, which then finds the job instead of submitting another.
  store.requests.record({ ...base, via: "slurm", slurmJobId: null, slurmCluster: null, state: "submitting" });
  const attempt = { proposal: P, run: R, processingId: request.processingId, data: kind };
  await noteAttemptIn(dbDir, { ...attempt, outcome: "submitting", origin: requestContext.origin, notification: notificationRecord(ready) }, logger);
  let job: SubmittedJob;
  try {
    job = await submitter.submit(dbDir, request, {
      settings,
      env: opts.jobEnv,
      comment: jobComment(request.processingId, key),
      onSpawn: (pid) => store.requests.setSubmitPid(request.processingId, pid),
    });
  } catch (err) {
    const message = (err as Error).message;
    const noSlurm = isDamnitError(err, "SBATCH_NOT_INSTALLED");
    if (store.settings.get("allow_local_processing") || (noSlurm && opts.localWithoutSlurm)) {
      if (!noSlurm) logger.error(`Slurm job submission failed, starting process locally. (${message})`);
      store.requests.update(request.processingId, "queued", { via: "local" });
      if (audit) auditOutcome(dbDir, request.processingId, "local", noSlurm ? {} : { error: message });
      await noteAttemptIn(dbDir, { ...attempt, outcome: "queued" }, logger);
      opts.local.enqueue({ dbDir, request, context: requestContext });
      return { dbDir, action: "local", detail: request.processingId };
    }
    store.requests.update(request.processingId, "failed", { message });
    if (audit) auditOutcome(dbDir, request.processingId, "failed", { error: message });
    writeErrFile(request, requestContext, `submission failed: ${message}`);
    await noteAttemptIn(dbDir, { ...attempt, outcome: "submit-failed", error: message }, logger);
    throw err;
  }
  // Submitted: from here on an error must not lead to a second (local) job.
  store.requests.update(request.processingId, "submitted", { slurmJobId: job.jobId, slurmCluster: job.cluster });
  if (audit) auditOutcome(dbDir, request.processingId, "submitted", { slurmJob: job.jobId });
  await noteAttemptIn(dbDir, { ...attempt, outcome: "submitted", slurmJob: job.jobId }, logger);
  logger.info(`Submitted Slurm job ${job.jobId} for p${P} r${R} (${kind}); output in process_logs/r${R}-p${P}.out`);
  void opts.publisher.send(updateTopic(dbId), [
    processingStateSet(pendingState(request, job)),
  ]);
  return { dbDir, action: "slurm", detail: job.jobId };
}

/** The variables a control API reprocess asked for (none: all), so that an audited or replayed request keeps them. */
function selectionOf(ready: ReadyRun): Pick<JobRequest, "variables" | "match"> {
  return { ...(ready.variables?.length ? { variables: ready.variables } : {}), ...(ready.match?.length ? { match: ready.match } : {}) };
}

/** Who made a request, from its notification's source label (`kafka …`, `watch`, `api …`, `replay …`). */
function originOf(source: string): AuditOrigin {
  const first = source.split(" ", 1)[0];
  return first === "kafka" || first === "api" || first === "replay" || first === "gui" ? first : "watch";
}

/** The notification as the run's bookkeeping file keeps it: its source (Kafka topic, partition, offset) and time. */
function notificationRecord(ready: ReadyRun): Record<string, unknown> {
  const kafka = kafkaPositionOf(ready.source);
  return { source: ready.source, added_at: ready.addedAt, run_data: ready.kind, ...(kafka ?? {}) };
}

/**
 * A request this notification made before the listener stopped (found in its inbox again): its job, if there is
 * one, is adopted. A request caught during sbatch ('submitting') waits for that sbatch child, then looks for the job
 * by the processing id in its comment; none found means sbatch never submitted it, and it is submitted now.
 */
async function adoptEarlier(ready: ReadyRun, dbDir: string, slurmCluster: string, opts: DispatchOptions): Promise<DispatchOutcome | undefined> {
  const { store, logger } = opts;
  const submitter = opts.submitter ?? SLURM_SUBMITTER;
  const what = `p${ready.proposal} r${ready.run} (${ready.kind})`;
  for (const row of store.requests.forNotification(dbDir, ready.source, ready.addedAt)) {
    // The same notification names one run: a request for another run (same source and time) is not this one's.
    if (row.state === "failed" || row.proposal !== ready.proposal || row.run !== ready.run) continue;
    if (row.via === "local") {
      logger.info(`${what} for ${dbDir} was already queued here by this notification (${row.processingId}); not again`);
      return { dbDir, action: "adopted", detail: "processing here" };
    }
    if (row.state !== "submitting") {
      logger.info(`${what} for ${dbDir} was already submitted as Slurm job ${row.slurmJobId} by this notification; not again`);
      return { dbDir, action: "adopted", detail: `Slurm job ${row.slurmJobId}` };
    }
    if (row.submitPid && !(await waitForExit(row.submitPid, row.processingId, EARLIER_SBATCH_WAIT_MS))) {
      // A hung sbatch: stopped, then Slurm says whether it got as far as making the job.
      logger.warn(`The earlier listener's sbatch (pid ${row.submitPid}) for ${what} still runs after ${EARLIER_SBATCH_WAIT_MS / 1000} s; stopping it`);
      stopHungSubmission(row.submitPid, row.processingId);
      await waitForExit(row.submitPid, row.processingId, 5_000);
    }
    const found = submitter.findJob ? await submitter.findJob(row.processingId, jobName(row), slurmCluster) : undefined;
    if (found === null) throw new DamnitError("SUBMIT_FAILED", `Slurm cannot say whether ${what} (${row.processingId}) was submitted before the last stop; not submitting another`);
    if (found) {
      store.requests.update(row.processingId, "submitted", { slurmJobId: found, slurmCluster });
      // The earlier listener wrote this request's line and was killed before its outcome: the outcome, now.
      if (opts.audit ?? true) auditOutcome(dbDir, row.processingId, "submitted", { slurmJob: found });
      logger.info(`Adopted Slurm job ${found} for ${what}, submitted before the last stop (${row.processingId})`);
      return { dbDir, action: "adopted", detail: `Slurm job ${found}` };
    }
    store.requests.update(row.processingId, "failed", { message: "the listener stopped during sbatch and Slurm has no job for it" });
    if (opts.audit ?? true) auditOutcome(dbDir, row.processingId, "failed", { error: "the listener stopped during sbatch and Slurm has no job for it" });
    logger.info(`${what}: the listener stopped during sbatch and no job was submitted (${row.processingId}); submitting now`);
  }
  return undefined;
}

/** The first of these requests that is really still queued or running; finished ones are marked so. */
async function stillActive(rows: readonly ProcessingRequestRow[], opts: DispatchOptions): Promise<ProcessingRequestRow | undefined> {
  for (const row of rows) {
    if (row.via === "local") {
      if (opts.local.has(row.processingId)) return row;
      continue; // recorded by an earlier listener and not resumed: not active
    }
    if (row.via === "slurm" && row.slurmJobId) {
      const active = await (opts.submitter ?? SLURM_SUBMITTER).activeJobs([row.slurmJobId], row.slurmCluster ?? "");
      if (active === null) {
        opts.logger.warn(`Could not ask Slurm whether job ${row.slurmJobId} is still queued; submitting anyway`);
        continue;
      }
      if (active.has(row.slurmJobId)) return row;
      opts.store.requests.update(row.processingId, "finished", { message: "left the Slurm queue" });
    }
  }
  return undefined;
}
