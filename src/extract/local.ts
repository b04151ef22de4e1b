/**
 * Processing runs here rather than through Slurm (`damnit reprocess --local`, `damnit demo`, the listener's
 * fallback): a few context runners kept alive, one run per runner at a time, each run's log appended to
 * `process_logs/r<R>-p<P>.out` as a Slurm job's would be. A run's cluster variables follow in the same place.
 */
import { availableParallelism } from "node:os";
import { processLogFile } from "../process-logs.js";
import type { RunDatabase } from "../db/run-database.js";
import { extractRun, runnerLimits, type ExtractRequest, type ExtractResult } from "./job.js";
import { openRunLog, type RunLog } from "./run-log.js";
import { RunnerPool } from "./runner-pool.js";

export interface RunToProcess {
  readonly proposal: number;
  readonly run: number;
}

export interface LocalOptions extends Omit<ExtractRequest, "proposal" | "run"> {
  /** runs processed at once (default: the number of CPUs) */
  readonly concurrency?: number;
  /** log to this file descriptor (e.g. 2) instead of each run's process log */
  readonly logFd?: number;
  /** the events of one run (e.g. a ProcessingReporter per run, as each job has its own); default: `events` */
  readonly eventsFor?: (run: RunToProcess) => LocalOptions["events"];
  /** the processing id of one run (its update messages'), for its lookups and provenance; default: one of its own */
  readonly processingIdFor?: (run: RunToProcess) => string | undefined;
  /** called after each run */
  readonly onRun?: (run: RunToProcess, result: ExtractResult) => void;
  /** called with the runners' largest peak memory (MiB) before they are stopped */
  readonly onRunnerPeakRss?: (mb: number | undefined) => void;
  /** runners kept by the caller between calls (the listener's); default: a pool for this call only */
  readonly pool?: RunnerPool;
  /** command wrapping the context runners (a sandbox) */
  readonly wrapper?: readonly string[];
  /**
   * A run's cluster variables: hand them on (e.g. submit a Slurm job) and resolve true, or false to compute them
   * here afterwards. Default: here.
   */
  readonly onClusterFollowUp?: (run: RunToProcess, log: RunLog) => Promise<boolean>;
}

/** The database's data root setting, if any (else the reader's default). */
export function dataRootOf(db: RunDatabase): string | undefined {
  return db.settings.get("data_root") || undefined;
}

export async function processRunsLocally(db: RunDatabase, runs: readonly RunToProcess[], opts: LocalOptions): Promise<Map<RunToProcess, ExtractResult>> {
  const pool = opts.pool ?? new RunnerPool(db.dir, { ...runnerLimits(db.settings), wrapper: opts.wrapper });
  const concurrency = Math.max(1, Math.min(opts.concurrency ?? availableParallelism(), runs.length));
  const results = new Map<RunToProcess, ExtractResult>();
  const queue = [...runs];
  const dataRoot = opts.dataRoot ?? dataRootOf(db);
  try {
    const worker = async () => {
      for (let next = queue.shift(); next; next = queue.shift()) {
        const log = openLog(db, next, opts);
        try {
          const events = opts.eventsFor?.(next) ?? opts.events;
          const processingId = opts.processingIdFor?.(next);
          const lookups = processingId ? { lookups: { ...opts.lookups, processingId } } : {};
          const request: ExtractRequest = { ...opts, proposal: next.proposal, run: next.run, dataRoot, ...(events ? { events } : {}), ...lookups };
          let result = await extractRun(db, request, pool, log);
          if (result.ok && result.clusterFollowUp && !opts.cluster && !(await opts.onClusterFollowUp?.(next, log))) {
            log.logger.info(`Computing the cluster variables of r${next.run} here (locally)`);
            const cluster = await extractRun(db, { ...request, cluster: true, updateVars: false }, pool, log);
            result = mergeResults(result, cluster);
          }
          results.set(next, result);
          opts.onRun?.(next, result);
        } catch (err) {
          log.logger.error(`Processing r${next.run} failed: ${(err as Error).stack ?? String(err)}`);
          const result: ExtractResult = { ok: false, message: (err as Error).message, stored: [], errors: [], clusterFollowUp: false, seconds: 0 };
          results.set(next, result);
          opts.onRun?.(next, result);
        } finally {
          log.close();
        }
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
  } finally {
    opts.onRunnerPeakRss?.(pool.peakRssMb());
    if (!opts.pool) pool.close();
  }
  return results;
}

function openLog(db: RunDatabase, run: RunToProcess, opts: LocalOptions): RunLog {
  if (opts.logFd !== undefined) return openRunLog(opts.logFd, { colour: opts.logFd === 2 && process.stderr.isTTY });
  const file = processLogFile(db.dir, run.proposal, run.run);
  // Created 0666 (the team's jobs append to it) when missing; a planted symlink is refused (openProcessLog).
  return openRunLog(file);
}

function mergeResults(a: ExtractResult, b: ExtractResult): ExtractResult {
  return {
    ok: a.ok && b.ok,
    message: b.message ?? a.message,
    stored: [...a.stored, ...b.stored],
    errors: [...a.errors, ...b.errors],
    clusterFollowUp: false,
    seconds: a.seconds + b.seconds,
  };
}
