/**
 * Processing runs in the listener's own machine (spec §1.6: when Slurm submission fails and local processing is
 * allowed, or there is no Slurm at all). Unlike DAMNIT, requests beyond the concurrency cap wait in a queue rather
 * than being dropped, and each database keeps its context runners alive between runs, so a run's values appear
 * within a second rather than after a cold start. Requests are recorded in listener.sqlite before they are queued,
 * so those queued or running when the listener stops are processed after it restarts.
 */
import { availableParallelism } from "node:os";
import type { Logger } from "pino";
import { RunDatabase } from "../db/run-database.js";
import { processRunsLocally, dataRootOf } from "../extract/local.js";
import { runnerLimits } from "../extract/job.js";
import { RunnerPool } from "../extract/runner-pool.js";
import { sandboxWrapper } from "../jobs/shell-words.js";
import type { JobRequest } from "../jobs/request.js";
import { ProcessingReporter } from "../messaging/processing-reporter.js";
import type { Publisher } from "../messaging/publisher.js";
import type { ListenerRegistry } from "./registry.js";

export interface LocalJob {
  readonly dbDir: string;
  readonly request: JobRequest;
}

/** DAMNIT's cap: min(CPUs / 2, 10), at least one. */
export function defaultLocalConcurrency(): number {
  return Math.max(1, Math.min(Math.floor(availableParallelism() / 2), 10));
}

/** Runners idle this long are stopped (each holds a few hundred MiB). */
const IDLE_RUNNERS_MS = 10 * 60 * 1000;

export class LocalQueue {
  private readonly waiting: LocalJob[] = [];
  private readonly inProgress = new Set<string>();
  private readonly pools = new Map<string, { pool: RunnerPool; wrapperKey: string; lastUsed: number }>();
  private running = 0;
  private stopped = false;
  private idleTimer: NodeJS.Timeout;
  private drained: Array<() => void> = [];

  constructor(
    private readonly registry: ListenerRegistry,
    private readonly publisher: Publisher,
    private readonly logger: Logger,
    private readonly concurrency: number,
  ) {
    this.idleTimer = setInterval(() => this.stopIdleRunners(), 60_000);
    this.idleTimer.unref();
  }

  /** True when this request id is waiting or being processed here. */
  has(processingId: string): boolean {
    return this.inProgress.has(processingId);
  }

  get size(): number {
    return this.waiting.length + this.running;
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

  /** Resolves when nothing is queued or running (for tests and benchmarks). */
  idle(): Promise<void> {
    if (this.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.drained.push(resolve));
  }

  private pump(): void {
    while (!this.stopped && this.running < this.concurrency && this.waiting.length > 0) {
      const job = this.waiting.shift()!;
      this.running++;
      void this.process(job).finally(() => {
        this.running--;
        this.inProgress.delete(job.request.processingId);
        this.pump();
        if (this.size === 0) for (const resolve of this.drained.splice(0)) resolve();
      });
    }
  }

  private async process(job: LocalJob): Promise<void> {
    const { dbDir, request } = job;
    const what = `p${request.proposal} r${request.run} (${request.data}) for ${dbDir}`;
    this.registry.updateRequest(request.processingId, "running");
    let db: RunDatabase | undefined;
    let reporter: ProcessingReporter | undefined;
    try {
      db = await RunDatabase.open(dbDir);
      reporter = new ProcessingReporter(this.publisher, db.dbId, { processingId: request.processingId, proposal: request.proposal, run: request.run, data: request.data }, { cluster: null, jobId: "" });
      reporter.running();
      this.logger.info(`Processing ${what} here`);
      const results = await processRunsLocally(db, [{ proposal: request.proposal, run: request.run }], {
        kind: request.data,
        match: request.match,
        variables: request.variables,
        mock: request.mock,
        updateVars: request.updateVars ?? true,
        pool: this.poolFor(db, request),
        dataRoot: dataRootOf(db),
        events: reporter,
      });
      const result = [...results.values()][0];
      if (result?.ok) {
        this.registry.updateRequest(request.processingId, "finished", { message: `${result.stored.length} results, ${result.errors.length} errors, ${result.seconds.toFixed(2)} s` });
        this.logger.info(`Processed ${what}: ${result.stored.length} results (${result.errors.length} errors) in ${result.seconds.toFixed(2)} s`);
      } else {
        this.registry.updateRequest(request.processingId, "failed", { message: result?.message ?? "no result" });
        this.logger.error(`Local extraction of p${request.proposal}, r${request.run} failed: ${result?.message ?? "no result"} (log: process_logs/r${request.run}-p${request.proposal}.out)`);
      }
    } catch (err) {
      this.logger.error(`Local extraction of p${request.proposal}, r${request.run} for ${dbDir} failed: ${(err as Error).message}`);
      try {
        this.registry.updateRequest(request.processingId, "failed", { message: (err as Error).message });
      } catch (e) {
        this.logger.error(`Could not record the failure in ${this.registry.path}: ${(e as Error).message}`);
      }
    } finally {
      await reporter?.finished();
      db?.close();
    }
  }

  private poolFor(db: RunDatabase, request: JobRequest): RunnerPool {
    const wrapper = sandboxWrapper(request.sandboxArgs, request.proposal);
    const wrapperKey = JSON.stringify(wrapper);
    const limits = { ...runnerLimits(db), wrapper };
    const kept = this.pools.get(db.dir);
    // New limits or a new sandbox: runners started under the old ones go.
    if (kept && kept.wrapperKey === wrapperKey && kept.pool.limits.memoryLimitMb === limits.memoryLimitMb && kept.pool.limits.variableTimeout === limits.variableTimeout) {
      kept.lastUsed = Date.now();
      return kept.pool;
    }
    kept?.pool.close();
    const pool = new RunnerPool(db.dir, limits);
    this.pools.set(db.dir, { pool, wrapperKey, lastUsed: Date.now() });
    return pool;
  }

  private stopIdleRunners(): void {
    if (this.running > 0) return;
    for (const [dir, kept] of this.pools) {
      if (Date.now() - kept.lastUsed > IDLE_RUNNERS_MS) {
        kept.pool.close();
        this.pools.delete(dir);
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
