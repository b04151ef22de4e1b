/**
 * Processing runs in the listener's own machine (spec §1.6: when Slurm submission fails and local processing is
 * allowed, or there is no Slurm at all). Unlike DAMNIT, requests beyond the concurrency cap wait in a queue rather
 * than being dropped, and each database keeps its context runners alive between runs, so a run's values appear
 * within a second rather than after a cold start. Requests are recorded in listener.sqlite before they are queued,
 * so those queued or running when the listener stops are processed after it restarts.
 */
import type { Logger } from "pino";
import { recordJobEnd } from "../audit/err-files.js";
import type { RequestContext } from "../audit/records.js";
import { contextHash, idempotencyKey } from "../jobs/idempotency.js";
import { RunDatabase } from "../db/run-database.js";
import { processRunsLocally, dataRootOf } from "../extract/local.js";
import { runnerLimits } from "../extract/job.js";
import { RunnerPool } from "../extract/runner-pool.js";
import { sandboxWrapper } from "../jobs/shell-words.js";
import type { JobRequest } from "../jobs/request.js";
import { ProcessingReporter } from "../messaging/processing-reporter.js";
import type { Publisher } from "../messaging/publisher.js";
import type { ListenerStore } from "./store/index.js";

export interface LocalJob {
  readonly dbDir: string;
  readonly request: JobRequest;
  /** the request as audited (for its `.err` file); default: a job's own view of it */
  readonly context?: RequestContext;
}

/** The request as audited; a job resumed after a restart gets a job's own view of it. */
function auditContext(job: LocalJob): RequestContext {
  const { proposal, run, data } = job.request;
  return job.context ?? { origin: "job", dbDir: job.dbDir, idempotencyKey: idempotencyKey(proposal, run, data, contextHash(job.dbDir)) };
}

/** Runners idle this long are stopped (each holds a few hundred MiB). */
const IDLE_RUNNERS_MS = 10 * 60 * 1000;

export class LocalQueue {
  private readonly waiting: LocalJob[] = [];
  private readonly inProgress = new Set<string>();
  /** runner pools by database, sandbox and limits; one in use is never closed (a changed setting makes a new one) */
  private readonly pools = new Map<string, { pool: RunnerPool; inUse: number; lastUsed: number }>();
  private running = 0;
  private stopped = false;
  /** told how long each run processed here took (the listener's metrics) */
  onJobDone?: (seconds: number, ok: boolean) => void;
  private idleTimer: NodeJS.Timeout;

  constructor(
    private readonly store: ListenerStore,
    private readonly publisher: Publisher,
    private readonly logger: Logger,
    private readonly concurrency: number,
    /** where runs are, for databases without their own data_root setting (the listener's data_root) */
    private readonly dataRoot?: string,
  ) {
    this.idleTimer = setInterval(() => this.stopIdleRunners(), 60_000);
    this.idleTimer.unref();
  }

  /** Runs waiting for a free slot. */
  get waitingCount(): number {
    return this.waiting.length;
  }

  /** True when this request id is waiting or being processed here. */
  has(processingId: string): boolean {
    return this.inProgress.has(processingId);
  }

  enqueue(job: LocalJob): void {
    if (this.stopped) return;
    this.inProgress.add(job.request.processingId);
    this.waiting.push(job);
    if (this.running >= this.concurrency) {
      this.logger.info(`${this.running} runs are being processed here; p${job.request.proposal} r${job.request.run} (${job.request.data}) waits (${this.waiting.length} waiting)`);
    }
    this.pump();
  }

  private pump(): void {
    while (!this.stopped && this.running < this.concurrency && this.waiting.length > 0) {
      const job = this.waiting.shift()!;
      this.running++;
      void this.process(job).finally(() => {
        this.running--;
        this.inProgress.delete(job.request.processingId);
        this.pump();
      });
    }
  }

  private async process(job: LocalJob): Promise<void> {
    const { dbDir, request } = job;
    const what = `p${request.proposal} r${request.run} (${request.data}) for ${dbDir}`;
    let db: RunDatabase | undefined;
    let reporter: ProcessingReporter | undefined;
    let kept: { pool: RunnerPool; inUse: number; lastUsed: number } | undefined;
    try {
      this.store.requests.update(request.processingId, "running");
      db = await RunDatabase.open(dbDir);
      reporter = new ProcessingReporter(this.publisher, db.dbId, { processingId: request.processingId, proposal: request.proposal, run: request.run, data: request.data }, { cluster: null, jobId: "" });
      reporter.running();
      this.logger.info(`Processing ${what} here`);
      kept = this.poolFor(db, request);
      const results = await processRunsLocally(db, [{ proposal: request.proposal, run: request.run }], {
        data: request.data,
        processingId: request.processingId,
        match: request.match,
        variables: request.variables,
        mock: request.mock,
        updateVars: request.updateVars ?? true,
        pool: kept.pool,
        dataRoot: dataRootOf(db) ?? this.dataRoot,
        events: reporter,
        lookups: { processingId: request.processingId, mode: request.replayLookups ? "replay" : undefined },
      });
      // Stopped meanwhile: the run was abandoned, not failed; it stays "running" and is processed after a restart.
      if (this.stopped) return;
      const result = [...results.values()][0];
      recordJobEnd(request, auditContext(job), result ?? { ok: false, message: "no result" });
      this.onJobDone?.(result?.seconds ?? 0, result?.ok ?? false);
      if (result?.ok) {
        this.store.requests.update(request.processingId, "finished", { message: `${result.stored.length} results, ${result.errors.length} errors, ${result.seconds.toFixed(2)} s` });
        this.logger.info(`Processed ${what}: ${result.stored.length} results (${result.errors.length} errors) in ${result.seconds.toFixed(2)} s`);
      } else {
        this.store.requests.update(request.processingId, "failed", { message: result?.message ?? "no result" });
        this.logger.error(`Local extraction of p${request.proposal}, r${request.run} failed: ${result?.message ?? "no result"} (log: process_logs/r${request.run}-p${request.proposal}.out)`);
      }
    } catch (err) {
      if (this.stopped) return;
      this.logger.error(`Local extraction of p${request.proposal}, r${request.run} for ${dbDir} failed: ${(err as Error).message}`);
      recordJobEnd(request, auditContext(job), { ok: false, message: (err as Error).message });
      try {
        this.store.requests.update(request.processingId, "failed", { message: (err as Error).message });
      } catch (e) {
        this.logger.error(`Could not record the failure in ${this.store.path}: ${(e as Error).message}`);
      }
    } finally {
      if (kept) {
        kept.inUse--;
        kept.lastUsed = Date.now();
      }
      await reporter?.finished().catch(() => undefined);
      db?.close();
    }
  }

  private poolFor(db: RunDatabase, request: JobRequest): { pool: RunnerPool; inUse: number; lastUsed: number } {
    const wrapper = sandboxWrapper(request.sandboxArgs, request.proposal);
    const limits = { ...runnerLimits(db.settings), wrapper };
    const key = JSON.stringify([db.dir, wrapper, limits.memoryLimitMb, limits.variableTimeout]);
    let kept = this.pools.get(key);
    if (!kept) {
      kept = { pool: new RunnerPool(db.dir, limits), inUse: 0, lastUsed: Date.now() };
      this.pools.set(key, kept);
    }
    kept.inUse++;
    return kept;
  }

  /** Pools not used for a while are stopped, each on its own (a busy database does not keep the others' alive). */
  private stopIdleRunners(): void {
    for (const [key, kept] of this.pools) {
      if (kept.inUse === 0 && Date.now() - kept.lastUsed > IDLE_RUNNERS_MS) {
        kept.pool.close();
        this.pools.delete(key);
      }
    }
  }

  /** Stop taking work and stop the runners; requests still queued or running stay recorded for the next start. */
  close(): void {
    this.stopped = true;
    clearInterval(this.idleTimer);
    for (const { pool } of this.pools.values()) pool.close();
    this.pools.clear();
  }
}
