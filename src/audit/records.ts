/**
 * What audit lines say (spec satellites §B.6): a request line written before a submission, an outcome line after
 * it (paired by `processing_id`, the file never rewritten), and the listener's lines for notifications that led to
 * no request. Field names are the spec's; Kafka's position is flattened into `kafka_*` so every line stays
 * single-level. `.err` files hold a request line with the failure added.
 */
import type { JobRequest } from "../core/job-request.js";
import type { AuditRecord, AuditScalar } from "./line.js";

/** Who asked: a Kafka notification, the directory watcher, a command (`reprocess`), a replay, the web or control API; "job": written by the job itself, which does not know (the request trail does). */
export type AuditOrigin = "kafka" | "watch" | "cli" | "replay" | "gui" | "api" | "job";

/** Where a Kafka notification was: topic, partition, offset. */
export interface KafkaPosition {
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
}

export interface RequestContext {
  readonly origin: AuditOrigin;
  readonly kafka?: KafkaPosition;
  /** `p<P>-r<R>-<kind>-<context hash>` (jobs/idempotency.ts) */
  readonly idempotencyKey: string;
  /** when the run was notified (s since 1970): its added_at */
  readonly notifiedAt?: number;
  /** the processing id of the request this one replays */
  readonly replayOf?: string;
  /** the database directory (absolute) */
  readonly dbDir: string;
}

/** The request line's record. */
export interface RequestRecord extends AuditRecord {
  readonly processing_id: string;
  readonly proposal: number;
  readonly run: number;
  readonly run_data: string;
  readonly variables: readonly string[];
  readonly match: readonly string[];
  readonly cluster: boolean;
  readonly origin: AuditOrigin;
  readonly kafka_topic: string | null;
  readonly kafka_partition: number | null;
  readonly kafka_offset: string | null;
  readonly idempotency_key: string;
  readonly notified_at: number | null;
  readonly replay_of: string | null;
  readonly db_dir: string;
  readonly timestamp: number;
}

/** What became of a submission: a Slurm job, processing here, failure, audit-only mode, or refused (replay). */
export type SubmitResult = "submitted" | "local" | "failed" | "audit-only" | "refused";

export interface OutcomeRecord extends AuditRecord {
  readonly processing_id: string;
  readonly submit_result: SubmitResult;
  readonly slurm_job: string | null;
  readonly error: string | null;
  readonly timestamp: number;
}

/** The listener's own trail: a notification that led to no request, and why. */
export interface SkippedRecord extends AuditRecord {
  readonly skipped: string;
  readonly proposal: number | null;
  readonly run: number | null;
  readonly run_data: string | null;
  readonly source: string;
  readonly kafka_topic: string | null;
  readonly kafka_partition: number | null;
  readonly kafka_offset: string | null;
  readonly db_dir: string | null;
  readonly timestamp: number;
}

/** An `.err` file's record: the request and why it failed. */
export interface FailureRecord extends RequestRecord {
  readonly error: string;
  readonly failed_at: number;
}

export function requestRecord(request: JobRequest, context: RequestContext, now = Date.now()): RequestRecord {
  return {
    processing_id: request.processingId,
    proposal: request.proposal,
    run: request.run,
    run_data: request.data,
    variables: [...(request.variables ?? [])],
    match: [...(request.match ?? [])],
    cluster: request.cluster ?? false,
    origin: context.origin,
    kafka_topic: context.kafka?.topic ?? null,
    kafka_partition: context.kafka?.partition ?? null,
    kafka_offset: context.kafka?.offset ?? null,
    idempotency_key: context.idempotencyKey,
    notified_at: context.notifiedAt ?? null,
    replay_of: context.replayOf ?? null,
    db_dir: context.dbDir,
    timestamp: now / 1000,
  };
}

export function outcomeRecord(processingId: string, result: SubmitResult, detail: { slurmJob?: string; error?: string } = {}, now = Date.now()): OutcomeRecord {
  return { processing_id: processingId, submit_result: result, slurm_job: detail.slurmJob ?? null, error: detail.error ?? null, timestamp: now / 1000 };
}

/** The position in a listener's source string `kafka <topic>[<partition>]@<offset> <time>`; undefined for others. */
export function kafkaPositionOf(source: string): KafkaPosition | undefined {
  const m = /^kafka (.+)\[(\d+)\]@(\d+)(?: |$)/.exec(source);
  return m ? { topic: m[1]!, partition: Number(m[2]), offset: m[3]! } : undefined;
}

const isString = (v: unknown): v is string => typeof v === "string";
const isWhole = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
const strings = (v: unknown): v is readonly string[] => Array.isArray(v) && v.every(isString);

/** Whether a record read back is a request line (every field a replay needs, of its type); else what is wrong. */
export function checkRequestRecord(record: AuditRecord): { ok: true; record: RequestRecord } | { ok: false; reason: string } {
  const r = record as Record<string, unknown>;
  const wrong = (field: string, want: string) => ({ ok: false as const, reason: `field ${field} is ${JSON.stringify(r[field]) ?? "missing"}, not ${want}` });
  if (!isString(r.processing_id) || r.processing_id === "") return wrong("processing_id", "a processing id");
  if (!isWhole(r.proposal) || r.proposal === 0) return wrong("proposal", "a proposal number");
  if (!isWhole(r.run)) return wrong("run", "a run number");
  if (r.run_data !== "raw" && r.run_data !== "proc" && r.run_data !== "all") return wrong("run_data", "raw, proc or all");
  if (r.variables !== undefined && !strings(r.variables)) return wrong("variables", "a list of names");
  if (r.match !== undefined && !strings(r.match)) return wrong("match", "a list of strings");
  if (r.cluster !== undefined && typeof r.cluster !== "boolean") return wrong("cluster", "true or false");
  return {
    ok: true,
    record: {
      ...(record as RequestRecord),
      variables: (r.variables as string[] | undefined) ?? [],
      match: (r.match as string[] | undefined) ?? [],
      cluster: (r.cluster as boolean | undefined) ?? false,
    },
  };
}

/** Whether a record is an outcome line (it has `submit_result`). */
export function isOutcome(record: AuditRecord): record is OutcomeRecord {
  return typeof record.submit_result === "string" && typeof record.processing_id === "string";
}

/** The same request, for `.err` resolution and de-duplication: proposal, run, data kind and the selection. */
export function selectionKey(r: Pick<RequestRecord, "proposal" | "run" | "run_data" | "variables" | "match" | "cluster">): string {
  return JSON.stringify([r.proposal, r.run, r.run_data, [...r.variables].sort(), [...r.match].sort(), r.cluster]);
}

export type { AuditScalar };
