/**
 * Reprocessing runs (`damnit reprocess`, `damnit demo`): which runs (numbers and ranges, or `all`: the runs in the
 * database whose raw data exist), whether they go to Slurm or are processed here, and doing either: Slurm array
 * jobs announced as PENDING, or processing here with every variable of each run's raw and proc data.
 */
import { existsSync } from "node:fs";
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
  assertOpenForWriting(db, "reprocess runs");
  const requests = reprocessRequests(proposal, runs, opts);
  const settings = slurmSettings(db);
  const limit = opts.concurrency ?? settings.concurrentJobs;
  // TODO(audit): audit these requests (the line before submission, issue 17 item 1)
  const jobs = await submitArray(db.dir, requests, { settings, limit, hint: opts.hint });
  for (const [i, r] of requests.entries()) {
    await noteAttemptSafely(db, { proposal, run: r.run, processingId: r.processingId, data: r.data, origin: "cli", outcome: "submitted", slurmJob: jobs[i]?.jobId ?? null }, log());
  }
  await announcePending(db, requests, jobs);
  return { requests, jobs, arrays: [...new Set(jobs.map((j) => j.jobId.split("_")[0]!))], limit };
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
  opts: ReprocessSelection & { params?: Readonly<Record<string, unknown>>; concurrency?: number; onRun?: (run: RunToProcess, result: ExtractResult) => void } = {},
): Promise<ProcessedHere> {
  assertOpenForWriting(db, "reprocess runs");
  const started = performance.now();
  const publisher = createPublisher(updateBrokers(), log());
  const reporters = new Map<RunToProcess, ProcessingReporter>();
  const finishing: Array<Promise<void>> = [];
  try {
    const results = await processRunsLocally(
      db,
      runs.map((run) => ({ proposal, run })),
      {
        data: "all",
        match: opts.match,
        variables: opts.variables,
        mock: opts.mock,
        force: opts.force,
        params: opts.params,
        concurrency: opts.concurrency,
        lookups: opts.replayLookups ? { mode: "replay" } : undefined,
        eventsFor: (run) => {
          const reporter = new ProcessingReporter(publisher, db.dbId, { processingId: newProcessingId(), proposal: run.proposal, run: run.run, data: "all" }, { cluster: null, jobId: "" });
          reporters.set(run, reporter);
          reporter.running();
          return reporter;
        },
        onRun: (run, result) => {
          const reporter = reporters.get(run);
          if (reporter) finishing.push(reporter.finished());
          reporters.delete(run);
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
