/**
 * The listener's statistics (`GET /statistics`) and Prometheus metrics (`GET /metrics`, prom-client, a registry of
 * its own): notifications received, skipped (by reason) and malformed, requests by outcome, the queue depth (inbox
 * entries not handled plus runs waiting to be processed here), the time from notification to submission and the
 * duration of jobs processed here. Counted by the listener as it goes; the control API only reads.
 */
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { DispatchOutcome, ReadyRun } from "../dispatch.js";

export type SkipReason = "before_start" | "other_proposal" | "ignorable" | "delivered_again" | "closed" | "duplicate" | "paused";

/** How each dispatch action counts in the statistics. */
const KIND_OF_ACTION: Readonly<Record<DispatchOutcome["action"], "processed" | "skipped" | "failed">> = {
  slurm: "processed",
  local: "processed",
  adopted: "processed",
  duplicate: "skipped",
  skipped: "skipped",
  "audit-only": "skipped",
  failed: "failed",
};

export interface LastRequest {
  readonly proposal: number;
  readonly run: number;
  readonly data: string;
  readonly source: string;
  readonly db_dir: string;
  readonly outcome: string;
  readonly detail: string;
}

export class ListenerStats {
  readonly registry = new Registry();
  private processed = 0;
  private skipped = 0;
  private failed = 0;
  private readonly perOutcome = new Map<string, number>();
  private lastRequest: LastRequest | null = null;
  private lastRequestAt: number | null = null;

  private readonly received = new Counter({ name: "damnit_listener_notifications_received_total", help: "Notifications received", registers: [this.registry] });
  private readonly skippedNotifications = new Counter({
    name: "damnit_listener_notifications_skipped_total",
    help: "Notifications that led to no request (yet), by reason",
    labelNames: ["reason"],
    registers: [this.registry],
  });
  private readonly malformed = new Counter({ name: "damnit_listener_notifications_malformed_total", help: "Notifications that could not be read", registers: [this.registry] });
  private readonly requests = new Counter({ name: "damnit_listener_requests_total", help: "Processing requests by outcome", labelNames: ["outcome"], registers: [this.registry] });
  private readonly submitLatency = new Histogram({
    name: "damnit_listener_submit_latency_seconds",
    help: "From the notification to the job's submission (or queueing here)",
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
    registers: [this.registry],
  });
  private readonly jobDuration = new Histogram({
    name: "damnit_listener_job_duration_seconds",
    help: "Duration of jobs processed by the listener here",
    labelNames: ["result"],
    buckets: [1, 5, 10, 30, 60, 300, 900, 3600],
    registers: [this.registry],
  });

  constructor(
    readonly startedAt: number,
    /** the queue depth when metrics are collected */
    queueDepth: () => number,
  ) {
    new Gauge({
      name: "damnit_listener_queue_depth",
      help: "Notifications in the inbox not handled yet plus runs waiting to be processed here",
      registers: [this.registry],
      collect() {
        this.set(queueDepth());
      },
    });
  }

  notificationReceived(): void {
    this.received.inc();
  }

  notificationSkipped(reason: SkipReason): void {
    this.skippedNotifications.inc({ reason });
  }

  notificationMalformed(): void {
    this.malformed.inc();
  }

  outcome(ready: ReadyRun, outcome: DispatchOutcome): void {
    const kind = KIND_OF_ACTION[outcome.action];
    if (kind === "processed") this.processed++;
    else if (kind === "skipped") this.skipped++;
    else this.failed++;
    const name = outcome.action === "skipped" ? `skipped: ${outcome.detail}` : outcome.action;
    this.perOutcome.set(name, (this.perOutcome.get(name) ?? 0) + 1);
    this.requests.inc({ outcome: name });
    if (outcome.action === "slurm" || outcome.action === "local") this.submitLatency.observe(Math.max(0, Date.now() / 1000 - ready.addedAt));
    if (outcome.action === "skipped" && outcome.detail === "closed") this.skippedNotifications.inc({ reason: "closed" });
    this.lastRequest = { proposal: ready.proposal, run: ready.run, data: ready.kind, source: ready.source, db_dir: outcome.dbDir, outcome: name, detail: outcome.detail };
    this.lastRequestAt = Date.now() / 1000;
  }

  jobDone(seconds: number, ok: boolean): void {
    this.jobDuration.observe({ result: ok ? "finished" : "failed" }, seconds);
  }

  /** What `GET /statistics` answers (sf_databuffer_writer's names where it has them). */
  statistics(): Record<string, unknown> {
    return {
      n_processed_requests: this.processed,
      n_skipped_requests: this.skipped,
      n_failed_requests: this.failed,
      per_outcome: Object.fromEntries(this.perOutcome),
      process_startup_time: this.startedAt,
      last_request: this.lastRequest,
      last_request_time: this.lastRequestAt,
    };
  }
}
