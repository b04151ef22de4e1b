/**
 * One extraction job (what `damnit extract` runs, in the database directory; spec §3.1): load the context and
 * compute the selected variables for one run in a context runner, refresh the `variables` table, then store the
 * results (HDF5 file and rows) under the database's write lock. A variable that exceeds the time or memory limit,
 * or crashes the runner, is recorded as that variable's error and the job goes on with a fresh runner.
 */
import type { SettingsReader } from "../core/settings.js";
import type { MetametaSettings } from "../db/defaults.js";
import { hostname, userInfo } from "node:os";
import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import { findContextFile } from "../context/load.js";
import { contextStamp } from "../context/stamp.js";
import { formatProblem, type VariableInfo } from "../context/variables.js";
import type { RunDatabase } from "../db/run-database.js";
import type { VariableError, VariableOutput } from "../core/variable-output.js";
import type { RunnerLimits } from "./runner-process.js";
import type { JobRequest } from "../core/job-request.js";
import type { RunnerPool } from "./runner-pool.js";
import type { RunLog } from "./run-log.js";
import { commitRunResults } from "./store.js";
import { phasesText, recordPhases } from "./job-phases.js";
import type { RunnerTimings } from "./runner-protocol.js";
import { refreshVariablesTable } from "./variables-table.js";
import type { JobLookupOptions, JobLookups } from "../lookups/job-recorder.js";
import { AttemptProvenance } from "../provenance/attempt.js";
import { calibrationConfig, recordCalibrationUse } from "./calibration-use.js";
import { noteAttemptSafely } from "../bookkeeping/attempts.js";
import { assertOpenForWriting } from "../bookkeeping/closed.js";
import { consistencyOutcome, type ConsistencyOutcome } from "./consistency-outcome.js";

/**
 * A job request as one extraction sees it: its params parsed and its data root found. The processing id and the
 * sandbox belong to whoever runs the extraction (the update messages, the runner pool).
 */
export interface ExtractRequest extends Omit<JobRequest, "processingId" | "sandboxArgs" | "params"> {
  /** the request's id, for its attempt in the run's bookkeeping file (default: a new one) */
  readonly processingId?: string;
  readonly params?: Readonly<Record<string, unknown>>;
  readonly dataRoot?: string;
  /** told what was written, e.g. to send update messages (the job knows nothing of Kafka) */
  readonly events?: ExtractEvents;
  /** the job's lookup recorder (when the database configures lookup_upstreams): mode override, processing id */
  readonly lookups?: JobLookupOptions;
}

export interface ExtractEvents {
  /** the `variables` table was refreshed with these */
  variablesUpdated?(variables: ReadonlyArray<{ name: string; title: string | null; description: string | null; tags: readonly string[] }>): void;
  /** a run's results were committed: the names written (values, errors and start_time) */
  valuesStored?(proposal: number, run: number, names: readonly string[]): void;
}

export interface ExtractResult {
  readonly ok: boolean;
  /** why the job failed as a whole (context problems, run data missing) */
  readonly message?: string;
  /** variables computed (or failed) and stored */
  readonly stored: readonly string[];
  readonly errors: ReadonlyArray<readonly [string, VariableError]>;
  /** the selection also has cluster variables, for a follow-up cluster job */
  readonly clusterFollowUp: boolean;
  readonly seconds: number;
  /**
   * The run's files that could not be read (or are missing): the results are from incomplete data, the job counts
   * as failed (`message` says so), and `kept` names the variables whose earlier values were kept instead of errors.
   */
  readonly incomplete?: readonly string[];
  readonly kept?: readonly string[];
  /** the built-in data consistency variable's result, when the context has one (for the run's bookkeeping file) */
  readonly consistency?: ConsistencyOutcome;
}

/** Limits from the database settings (metameta), with their defaults. */
export function runnerLimits(settings: SettingsReader<MetametaSettings>): RunnerLimits & { resultLimitBytes: number } {
  return {
    variableTimeout: settings.get("variable_timeout"),
    memoryLimitMb: settings.get("runner_memory_limit_mb"),
    resultLimitBytes: settings.get("result_size_limit_mb") * 2 ** 20,
    contextPython: settings.get("context_python") || undefined,
  };
}

export function banner(proposal: number, run: number): string {
  const node = process.env.SLURM_JOB_ID
    ? `${hostname()} (job id: ${process.env.SLURM_JOB_ID}, cluster: ${process.env.SLURM_CLUSTER_NAME ?? ""})`
    : `${hostname()} (subprocess)`;
  let user = "unknown";
  try {
    user = userInfo().username;
  } catch {
    // no passwd entry (containers): keep "unknown"
  }
  return `----- Processing r${run} (p${proposal}) as ${user} on ${node} -----`;
}

export async function extractRun(db: RunDatabase, asked: ExtractRequest, runners: RunnerPool, log: RunLog): Promise<ExtractResult> {
  assertOpenForWriting(db, `process p${asked.proposal} r${asked.run}`);
  // One processing id for the attempt's bookkeeping, provenance, lookups and update messages.
  const processingId = asked.lookups?.processingId ?? asked.processingId ?? randomUUID();
  const request: ExtractRequest = { ...asked, processingId, lookups: { ...asked.lookups, processingId } };
  // The attempt in run_info/…/run_<run>.json: running now, then its outcome.
  const attempt = { proposal: request.proposal, run: request.run, processingId, data: request.data };
  await noteAttemptSafely(db, { ...attempt, outcome: "running", slurmJob: process.env.SLURM_JOB_ID ?? null }, log.logger);
  let result: ExtractResult;
  try {
    result = await extractRunOnce(db, request, runners, log);
  } catch (err) {
    // The runner holding the results died before writing them (e.g. killed from outside): compute them again, once.
    if (!(err instanceof RunnerGoneError)) {
      await noteAttemptSafely(db, { ...attempt, outcome: "failed", error: (err as Error).message }, log.logger);
      throw err;
    }
    log.logger.warn(`${err.message}; computing the run again in a fresh context runner`);
    result = await extractRunOnce(db, request, runners, log);
  }
  await noteAttemptSafely(db, { ...attempt, outcome: result.ok ? "finished" : "failed", error: result.message ?? null, dataConsistency: result.consistency }, log.logger);
  return result;
}

/** The names among `rows` whose new result is an error while the database holds a value for them. */
function errorsOverValues(db: RunDatabase, request: ExtractRequest, rows: ReadonlyMap<string, VariableOutput>): string[] {
  const held = db.namesWithValues(request.proposal, request.run);
  return [...rows.values()].filter((o) => o.error && held.has(o.name)).map((o) => o.name);
}

/** The data consistency variable's result for the bookkeeping file; a failure to read it back is only logged. */
async function consistencyOf(
  db: RunDatabase,
  request: ExtractRequest,
  infos: VariableInfo[] | undefined,
  rows: ReadonlyMap<string, VariableOutput>,
  logger: Logger,
): Promise<ConsistencyOutcome | undefined> {
  try {
    return await consistencyOutcome({ dbDir: db.dir, proposal: request.proposal, run: request.run }, infos, rows);
  } catch (err) {
    logger.warn(`Could not read the data consistency result back for the run's bookkeeping file: ${(err as Error).message}`);
    return undefined;
  }
}

/** Storing failed because the context runner holding the results is gone. */
class RunnerGoneError extends Error {}

/** One processing attempt, with its provenance record (provenance.sqlite and the run's HDF5 file). */
async function extractRunOnce(db: RunDatabase, request: ExtractRequest, runners: RunnerPool, log: RunLog): Promise<ExtractResult> {
  log.raw(`${banner(request.proposal, request.run)}\n`);
  const contextFile = findContextFile(db.dir);
  const processingId = request.processingId ?? randomUUID();
  const provenance = await AttemptProvenance.begin(
    {
      dbDir: db.dir,
      proposal: request.proposal,
      run: request.run,
      processingId,
      contextFile,
      data: request.data,
      cluster: request.cluster ?? false,
      mock: request.mock ?? false,
      match: request.match ?? [],
      variables: request.variables ?? [],
      dataRoot: request.dataRoot,
      contextPython: db.settings.get("context_python"),
    },
    log.logger,
  );
  let result: ExtractResult | undefined;
  try {
    result = await extractRunAttempt(db, { ...request, lookups: { ...request.lookups, processingId } }, runners, log, contextFile, provenance);
    return result;
  } finally {
    await provenance.finish(result ?? { ok: false, message: "the attempt stopped with an error", stored: [] });
  }
}

async function extractRunAttempt(
  db: RunDatabase,
  request: ExtractRequest,
  runners: RunnerPool,
  log: RunLog,
  contextFile: string,
  provenance: AttemptProvenance,
): Promise<ExtractResult> {
  const started = performance.now();
  const logger: Logger = log.logger;
  const { resultLimitBytes } = runnerLimits(db.settings);
  /** what the database stores of each result (the runner keeps the data until it writes the HDF5 file) */
  const rows = new Map<string, VariableOutput>();
  const prefailed: Array<[string, VariableError]> = [];
  const retried = new Set<string>();
  let infos: VariableInfo[] | undefined;
  let clusterFollowUp = false;
  let incomplete: readonly string[] = [];
  const failed = (message: string): ExtractResult => ({
    ok: false,
    message,
    stored: [],
    errors: [],
    clusterFollowUp: false,
    seconds: (performance.now() - started) / 1000,
  });

  // Each pass runs the job in a runner; a pass ends early when a variable is stopped, and the next pass skips it.
  const stamp = contextStamp(db.dir);
  // A bad lookups setting or database fails the job cleanly, before any variable runs.
  let lookups: JobLookups | undefined;
  try {
    // The recorder (an HTTP server) is loaded only for a database that sets lookup_upstreams: most jobs never need it.
    if (db.settings.get("lookup_upstreams").trim() !== "") {
      lookups = await (await import("../lookups/job-recorder.js")).startJobLookups(db, request, request.lookups, logger);
    }
  } catch (err) {
    logger.error((err as Error).message);
    return failed((err as Error).message);
  }
  provenance.info.lookups = lookups;
  let calibration: ReturnType<typeof calibrationConfig>;
  try {
    calibration = calibrationConfig(db, request);
  } catch (err) {
    await lookups?.close();
    logger.error((err as Error).message);
    return failed((err as Error).message);
  }
  let runner;
  let runnerSeconds = 0;
  const acquire = async () => {
    const asked = performance.now();
    const got = await runners.acquire(stamp);
    runnerSeconds += (performance.now() - asked) / 1000;
    return got;
  };
  let timings: RunnerTimings | undefined;
  try {
    runner = await acquire();
  } catch (err) {
    await provenance.endSections();
    await lookups?.close();
    throw err;
  }
  let jobId = "";
  try {
    for (let attempt = 0; ; attempt++) {
      jobId = randomUUID();
      // Each pass computes (and the runner holds) everything again: rows must come from the same pass.
      rows.clear();
      const result = await runner.run(
        {
          jobId,
          contextFile,
          proposal: request.proposal,
          run: request.run,
          kind: request.data,
          clusterJob: request.cluster ?? false,
          match: request.match ?? [],
          variables: request.variables ?? [],
          mock: request.mock ?? false,
          params: request.params ?? {},
          prefailed,
          resultLimitBytes,
          dataRoot: request.dataRoot,
          lookupEnv: lookups?.env,
          calibration,
        },
        {
          selected: (message) => {
            infos = message.variables;
            clusterFollowUp = message.clusterFollowUp;
            incomplete = message.incomplete;
            if (attempt === 0) {
              const later = message.clusterFollowUp ? " (cluster variables will be processed later)" : "";
              logger.info(`Using ${message.names.length} variables (of ${message.total}) from context file${later}: ${message.names.join(", ")}`);
            }
          },
          start: (name) => logger.debug(`Computing ${name}`),
          output: (output) => rows.set(output.name, output),
          log: (level, message) => logger[level](message),
          userOutput: (text) => log.raw(text),
        },
      );
      if (result.kind === "failed") {
        const details = result.problems?.map(formatProblem).join("\n");
        logger.error(details ? `${result.message}:\n${details}` : result.message);
        return failed(details ? `${result.message}:\n${details}` : result.message);
      }
      if (result.kind === "done") {
        timings = result.timings;
        break;
      }
      // Interrupted: the runner is gone; the next pass starts a new one. A runner that had served earlier runs
      // gets the benefit of the doubt once (it may have died between jobs, or carried their memory): the same
      // pass is tried again in a fresh runner. Otherwise the variable that was running is recorded as failed.
      const reused = runner.jobsStarted > 1;
      const retryKey = result.variable ?? "";
      if (reused && !retried.has(retryKey) && (result.variable === undefined || result.error.cls === "MemoryError" || result.error.cls === "RunnerCrash")) {
        retried.add(retryKey);
        logger.warn(`The context runner stopped (${result.error.message}); trying again in a fresh one`);
      } else if (!result.variable) {
        logger.error(result.error.message);
        return failed(result.error.message);
      } else {
        logger.error(`${result.variable}: ${result.error.cls}: ${result.error.message}`);
        prefailed.push([result.variable, result.error]);
      }
      if (attempt > (infos?.length ?? 0) + 1) return failed("the context runner kept failing; giving up");
      runners.release(runner);
      runner = await acquire();
    }

    if ((request.updateVars ?? true) && infos) {
      const described = infos;
      // Through the lock: another run's store may hold this connection's transaction open meanwhile.
      const { entries } = await db.withWriteLock(() => refreshVariablesTable(db, described));
      request.events?.variablesUpdated?.(entries);
    }
    // Variables stopped in an earlier pass: their errors are stored like any other result.
    const transient = new Set(infos?.filter((v) => v.transient).map((v) => v.name));
    const extra: VariableOutput[] = prefailed.filter(([name]) => !transient.has(name)).map(([name, error]) => ({ name, attrs: {}, error }));
    for (const output of extra) rows.set(output.name, output);
    // Incomplete data: an error that would replace a value stored earlier is not stored (unless forced).
    const kept = incomplete.length > 0 && !request.force ? errorsOverValues(db, request, rows) : [];
    for (const name of kept) rows.delete(name);
    if (kept.length > 0) {
      logger.warn(
        `Kept the earlier values of ${kept.join(", ")}: this run's data could not be read completely, and their new results are errors ` +
          `(reprocess with --force to store them)`,
      );
    }
    const computed = performance.now();
    const finalRunner = runner;
    const finalJob = jobId;
    const record = await provenance.forFile();
    await commitRunResults(
      db,
      request.proposal,
      request.run,
      [...rows.values()],
      async (file, provenance) => {
        try {
          return await finalRunner.store({ jobId: finalJob, file, extra, keep: kept, provenance, record });
        } catch (err) {
          if (!finalRunner.alive) throw new RunnerGoneError((err as Error).message);
          throw err;
        }
      },
      { onWait: (seconds) => logger.warn(`Waiting for the database's write lock (another process holds it) for ${seconds} s`) },
    );
    const stored = [...rows.values()];
    recordCalibrationUse(db.dir, request, stored, logger);
    request.events?.valuesStored?.(request.proposal, request.run, stored.map((o) => o.name));
    const errors = stored.filter((o) => o.error).map((o) => [o.name, o.error!] as const);
    const seconds = (performance.now() - started) / 1000;
    const phases = {
      sinceProcessStart: started / 1000,
      runner: runnerSeconds,
      context: timings?.context ?? 0,
      open: timings?.open ?? 0,
      read: timings?.read ?? 0,
      variables: timings?.variables ?? 0,
      store: (performance.now() - computed) / 1000,
      total: seconds,
    };
    logger.debug({ phases }, `Where the time went: ${phasesText(phases)}`);
    recordPhases(request.proposal, request.run, phases, () => finalRunner.peakRssMb());
    logger.info(
      `Stored ${stored.length} results for r${request.run} (p${request.proposal}) in ${seconds.toFixed(2)} s ` +
        `(storing ${((performance.now() - computed) / 1000).toFixed(2)} s); ${errors.length} with errors`,
    );
    if (incomplete.length > 0) {
      const files = `${incomplete.length} file${incomplete.length === 1 ? "" : "s"}`;
      const keptText = kept.length > 0 ? `; earlier values kept: ${kept.join(", ")}` : "";
      const message = `the run's data are incomplete (${files} could not be read: ${incomplete[0]}${incomplete.length > 1 ? ", …" : ""})${keptText}`;
      logger.error(message);
      return { ok: false, message, stored: stored.map((o) => o.name), errors, clusterFollowUp, seconds, incomplete, kept, consistency: await consistencyOf(db, request, infos, rows, logger) };
    }
    return { ok: true, stored: stored.map((o) => o.name), errors, clusterFollowUp, seconds, consistency: await consistencyOf(db, request, infos, rows, logger) };
  } finally {
    runners.release(runner);
    await provenance.endSections();
    await lookups?.close();
  }
}
