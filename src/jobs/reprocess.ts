/**
 * Reprocessing runs (`damnit reprocess`, `damnit demo`): which runs (numbers and ranges, or `all`: the runs in the
 * database whose raw data exist), whether they go to Slurm or are processed here, and doing either: Slurm array
 * jobs announced as PENDING, or processing here with every variable of each run's raw and proc data. Every request
 * is audited (a line before, its outcome after, in `<db dir>/audit/requests.log`) and a failed one leaves its `.err`
 * file; `damnit replay` submits through the same two functions.
 */
import { existsSync } from "node:fs";
import { recordJobEnd } from "../audit/err-files.js";
import type { AuditOrigin, RequestContext } from "../audit/records.js";
import { auditOutcome, auditRequest } from "../audit/trail.js";
import type { DataKind } from "../core/data-kind.js";
import { noteAttemptSafely } from "../bookkeeping/attempts.js";
import { assertOpenForWriting } from "../bookkeeping/closed.js";
import { DamnitError } from "../core/errors.js";
import type { RunDatabase } from "../db/run-database.js";
import { dataRoot as defaultDataRoot, findProposalDirectory, runDirectory } from "../exdf/open-run.js";
import type { ExtractResult } from "../extract/job.js";
import { dataRootOf, processRunsLocally, type RunToProcess } from "../extract/local.js";
import { log } from "../log.js";
import { updateBrokers } from "../messaging/brokers.js";
import { pendingState, processingStateSet, updateTopic } from "../messaging/messages.js";
import { ProcessingReporter } from "../messaging/processing-reporter.js";
import { createPublisher } from "../messaging/publisher.js";
import { contextHash, idempotencyKey } from "./idempotency.js";
import { newProcessingId, type JobRequest } from "./request.js";
import { sbatchInstalled, submitArray, type SubmittedJob } from "./sbatch.js";
import { slurmSettings } from "./slurm-settings.js";

/** Run numbers, or every run the database has for the proposal. */
export type WantedRuns = readonly number[] | "all";

/** Run numbers from "all", "5", "1-10,15" (several items allowed), sorted and without repeats. */
export function parseRunList(items: readonly string[]): number[] | "all" {
  if (items.length === 1 && items[0] === "all") return "all";
  const runs = new Set<number>();
  for (const item of items) {
    for (const part of item.split(",")) {
      const m = /^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$/.exec(part);
      if (!m) throw new DamnitError("BAD_ARGUMENT", `Run numbers must be whole numbers or ranges like 1-10,15, or 'all' (got '${part}')`);
      const lo = Number(m[1]);
      const hi = m[2] === undefined ? lo : Number(m[2]);
      if (hi < lo) throw new DamnitError("BAD_ARGUMENT", `run range ${lo}-${hi} is backwards`);
      if (hi - lo > 100_000) throw new DamnitError("BAD_ARGUMENT", `run range ${lo}-${hi} is too long`);
      for (let r = lo; r <= hi; r++) runs.add(r);
    }
  }
  return [...runs].sort((a, b) => a - b);
}

export interface RunSelection {
  /** the runs to process, in the order asked for (the database's order for `all`) */
  readonly runs: readonly number[];
  /** asked for, but without raw data */
  readonly skipped: readonly number[];
}

/**
 * Which of the wanted runs can be processed: those whose raw run directory exists under the database's data root
 * (else the reader's default). Mock runs need no data: all are taken. Throws NO_RUN when the proposal's directory
 * is not found.
 */
export function selectRuns(db: RunDatabase, proposal: number, wanted: WantedRuns, opts: { mock?: boolean } = {}): RunSelection {
  const candidates = wanted === "all" ? db.listRuns(proposal).map((r) => r.run) : [...wanted];
  if (opts.mock) return { runs: candidates, skipped: [] };
  const proposalDir = findProposalDirectory(proposal, dataRootOf(db) ?? defaultDataRoot());
  const runs = candidates.filter((r) => existsSync(runDirectory(proposalDir, "raw", r)));
  return { runs, skipped: candidates.filter((r) => !runs.includes(r)) };
}

/** `selectRuns`, saying what was skipped; throws NO_RUN when nothing is left to process. */
export function runsToReprocess(db: RunDatabase, proposal: number, wanted: WantedRuns, opts: { mock?: boolean } = {}): readonly number[] {
  assertOpenForWriting(db, "reprocess runs");
  const { runs, skipped } = selectRuns(db, proposal, wanted, opts);
  if (!opts.mock) {
    if (wanted === "all") log().info(`Reprocessing ${runs.length} runs already recorded, skipping ${skipped.length}...`);
    else if (skipped.length > 0) log().warn(`skipping ${skipped.length} runs because they don't exist: [${skipped.join(", ")}]`);
  }
  if (runs.length === 0) throw new DamnitError("NO_RUN", `no runs to process for proposal ${proposal}`);
  return runs;
}

export type ProcessingWay = "slurm" | "local";

/** --slurm or --local when given, else Slurm when sbatch is installed here. */
export async function processingWay(flags: { slurm?: boolean; local?: boolean }, slurmInstalled: () => Promise<boolean> = sbatchInstalled): Promise<ProcessingWay> {
  const viaSlurm = flags.slurm ?? (flags.local === true ? false : await slurmInstalled());
  return viaSlurm ? "slurm" : "local";
}

/** Which variables to compute again. */
export interface ReprocessSelection {
  readonly match?: readonly string[];
  readonly variables?: readonly string[];
  readonly mock?: boolean;
  /** store errors even from runs whose data could not be read completely */
  readonly force?: boolean;
  /** external lookups replayed from lookups.sqlite, never asked again */
  readonly replayLookups?: boolean;
  /** calibration.get replays each variable's recorded range and version */
  readonly pinCalibration?: boolean;
}

/** One request per run, for all data; only the first refreshes the variables table (the others would repeat it). */
export function reprocessRequests(proposal: number, runs: readonly number[], opts: ReprocessSelection & { params?: readonly string[] }): JobRequest[] {
  return runs.map((run, i) => ({
    proposal,
    run,
    data: "all",
    processingId: newProcessingId(),
    match: opts.match,
    variables: opts.variables,
    mock: opts.mock,
    force: opts.force,
    replayLookups: opts.replayLookups,
    pinCalibration: opts.pinCalibration,
    updateVars: i === 0,
    params: opts.params,
  }));
}

export interface SubmittedReprocessing {
  readonly requests: readonly JobRequest[];
  readonly jobs: readonly SubmittedJob[];
  /** the array jobs' ids */
  readonly arrays: readonly string[];
  /** tasks running at once */
  readonly limit: number;
}

/** Who asked, for the audit trail: the origin, and for a replay the processing id each request replays. */
export interface AuditAs {
  readonly origin: AuditOrigin;
  /** new processing id → the one replayed */
  readonly replayOf?: ReadonlyMap<string, string>;
  /** processing id → when its run was notified (s since 1970) */
  readonly notifiedAt?: ReadonlyMap<string, number>;
}

/** The audit context of each request of one database (its idempotency key with the context's current hash). */
function auditContexts(dbDir: string, requests: readonly JobRequest[], as: AuditAs): Map<string, RequestContext> {
  const hash = contextHash(dbDir);
  return new Map(
    requests.map((r) => [
      r.processingId,
      {
        origin: as.origin,
        dbDir,
        idempotencyKey: idempotencyKey(r.proposal, r.run, r.data, hash),
        replayOf: as.replayOf?.get(r.processingId),
        notifiedAt: as.notifiedAt?.get(r.processingId),
      },
    ]),
  );
}

/**
 * The runs as Slurm array jobs, `concurrency` (default: the database's concurrent_jobs) at a time, each announced
 * as PENDING. A failed submission throws SBATCH_NOT_INSTALLED or SUBMIT_FAILED, its message ending with `hint`.
 */
export async function submitReprocessing(
  db: RunDatabase,
  proposal: number,
  runs: readonly number[],
  opts: ReprocessSelection & { params?: readonly string[]; concurrency?: number; hint?: string },
): Promise<SubmittedReprocessing> {
  return submitRequests(db, reprocessRequests(proposal, runs, opts), { ...opts, audit: { origin: "cli" } });
}

/**
 * These requests as Slurm array jobs (one array per kind of job: cluster or not), audited: each request's line
 * before sbatch, its outcome after (the job's id, or the failure, which also leaves the run's `.err` file).
 */
export async function submitRequests(
  db: RunDatabase,
  requests: readonly JobRequest[],
  opts: { concurrency?: number; hint?: string; audit: AuditAs },
): Promise<SubmittedReprocessing> {
  assertOpenForWriting(db, "reprocess runs");
  const settings = slurmSettings(db);
  const limit = opts.concurrency ?? settings.concurrentJobs;
  const contexts = auditContexts(db.dir, requests, opts.audit);
  for (const r of requests) auditRequest(r, contexts.get(r.processingId)!);
  const jobs = new Map<string, SubmittedJob>();
  const groups = [requests.filter((r) => !r.cluster), requests.filter((r) => r.cluster)].filter((g) => g.length > 0);
  for (const group of groups) {
    let submitted: SubmittedJob[];
    try {
      submitted = await submitArray(db.dir, group, { settings, limit, hint: opts.hint });
    } catch (err) {
      const error = (err as Error).message;
      for (const r of requests.filter((r) => !jobs.has(r.processingId))) {
        auditOutcome(db.dir, r.processingId, "failed", { error });
        recordJobEnd(r, contexts.get(r.processingId)!, { ok: false, message: `submission failed: ${error}` });
      }
      throw err;
    }
    group.forEach((r, i) => jobs.set(r.processingId, submitted[i]!));
  }
  for (const r of requests) {
    auditOutcome(db.dir, r.processingId, "submitted", { slurmJob: jobs.get(r.processingId)!.jobId });
    await noteAttemptSafely(db, { proposal: r.proposal, run: r.run, processingId: r.processingId, data: r.data, origin: opts.audit.origin, outcome: "submitted", slurmJob: jobs.get(r.processingId)!.jobId }, log());
  }
  const ordered = requests.map((r) => jobs.get(r.processingId)!);
  await announcePending(db, requests, ordered);
  return { requests, jobs: ordered, arrays: [...new Set(ordered.map((j) => j.jobId.split("_")[0]!))], limit };
}

/** PENDING state for each submitted run, as DAMNIT's GUI sends after an array submission. */
async function announcePending(db: RunDatabase, requests: readonly JobRequest[], jobs: readonly SubmittedJob[]): Promise<void> {
  const publisher = createPublisher(updateBrokers(), log());
  try {
    await publisher.send(
      updateTopic(db.dbId),
      requests.map((r, i) => processingStateSet(pendingState(r, jobs[i]!))),
    );
  } finally {
    await publisher.close();
  }
}

export interface ProcessedHere {
  readonly results: ReadonlyMap<RunToProcess, ExtractResult>;
  readonly seconds: number;
}

/**
 * The runs processed here, all data, `concurrency` at a time (default: the number of CPUs); `onRun` after each.
 * Each run publishes what a job publishes (RUNNING with heartbeats, variables, values, finished), so an open GUI
 * refreshes as it does after DAMNIT's own direct reprocess.
 */
export async function reprocessHere(
  db: RunDatabase,
  proposal: number,
  runs: readonly number[],
  opts: ReprocessSelection & {
    params?: Readonly<Record<string, unknown>>;
    concurrency?: number;
    onRun?: (run: RunToProcess, result: ExtractResult) => void;
    /** default all */
    data?: DataKind;
    cluster?: boolean;
    /** default: origin cli */
    audit?: AuditAs;
    /** run → processing id (default: new ones) */
    processingIds?: ReadonlyMap<number, string>;
  } = {},
): Promise<ProcessedHere> {
  assertOpenForWriting(db, "reprocess runs");
  const started = performance.now();
  const data = opts.data ?? "all";
  // Each run's request, audited before it is processed; its outcome (and .err) after.
  const requests = new Map<number, JobRequest>(
    runs.map((run) => [run, { proposal, run, data, processingId: opts.processingIds?.get(run) ?? newProcessingId(), match: opts.match, variables: opts.variables, cluster: opts.cluster }]),
  );
  const contexts = auditContexts(db.dir, [...requests.values()], opts.audit ?? { origin: "cli" });
  for (const r of requests.values()) auditRequest(r, contexts.get(r.processingId)!);
  const publisher = createPublisher(updateBrokers(), log());
  const reporters = new Map<RunToProcess, ProcessingReporter>();
  /** each run's processing id: its update messages', lookups' and provenance record's */
  const ids = new Map<RunToProcess, string>();
  const finishing: Array<Promise<void>> = [];
  try {
    const results = await processRunsLocally(
      db,
      runs.map((run) => ({ proposal, run })),
      {
        data,
        match: opts.match,
        variables: opts.variables,
        cluster: opts.cluster,
        mock: opts.mock,
        force: opts.force,
        params: opts.params,
        concurrency: opts.concurrency,
        lookups: opts.replayLookups ? { mode: "replay" } : undefined,
        processingIdFor: (run) => ids.get(run),
        pinCalibration: opts.pinCalibration,
        eventsFor: (run) => {
          const processingId = requests.get(run.run)!.processingId;
          ids.set(run, processingId);
          const reporter = new ProcessingReporter(publisher, db.dbId, { processingId, proposal: run.proposal, run: run.run, data }, { cluster: null, jobId: "" });
          reporters.set(run, reporter);
          reporter.running();
          return reporter;
        },
        onRun: (run, result) => {
          const reporter = reporters.get(run);
          if (reporter) finishing.push(reporter.finished());
          reporters.delete(run);
          const request = requests.get(run.run)!;
          auditOutcome(db.dir, request.processingId, result.ok ? "local" : "failed", { error: result.ok ? undefined : (result.message ?? "failed") });
          recordJobEnd(request, contexts.get(request.processingId)!, result);
          opts.onRun?.(run, result);
        },
      },
    );
    return { results, seconds: (performance.now() - started) / 1000 };
  } finally {
    for (const reporter of reporters.values()) finishing.push(reporter.finished());
    await Promise.all(finishing);
    await publisher.close();
  }
}
