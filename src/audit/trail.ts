/**
 * The request trail of a database, `<db dir>/audit/requests.log` (spec satellites §B.6): a request line before each
 * submission and an outcome line after it, for every request the listener, `reprocess`, a replay, the web or the
 * control API makes. `audited` is the one call other code needs: it writes both lines around a submission. A trail
 * that cannot be written costs a warning, never the submission (the seed's rule: the audit line must not block).
 *
 * The `audit/` directory is shared by the team like `process_logs/` (sticky: nobody removes another's file); the
 * trail is writable by its owner and group only, so nobody outside the proposal's group can forge lines a replay
 * would submit.
 */
import { join } from "node:path";
import type { JobRequest } from "../core/job-request.js";
import { sharedDirectory } from "../core/safe-open.js";
import { log } from "../log.js";
import { AuditFile } from "./writer.js";
import { outcomeRecord, requestRecord, type RequestContext, type SubmitResult } from "./records.js";
import type { AuditRecord } from "./line.js";

export const AUDIT_DIR = "audit";
export const REQUESTS_LOG = "requests.log";
const TRAIL_MODE = 0o664;

/** `<db dir>/audit/requests.log` (the directory made when missing; a symlink in its place is refused). */
export function requestTrailPath(dbDir: string): string {
  return join(sharedDirectory(join(dbDir, AUDIT_DIR), 0o1777), REQUESTS_LOG);
}

/** Append a record to the database's trail; false (and a warning) when that failed. */
export function appendToTrail(dbDir: string, record: AuditRecord, now?: Date): boolean {
  try {
    new AuditFile(requestTrailPath(dbDir), { mode: TRAIL_MODE }).append(record, now);
    return true;
  } catch (err) {
    log().warn(`Could not write the audit trail of ${dbDir}: ${(err as Error).message}`);
    return false;
  }
}

/** The request line, before the submission. */
export function auditRequest(request: JobRequest, context: RequestContext): boolean {
  return appendToTrail(context.dbDir, requestRecord(request, context));
}

/** The outcome line, after it. */
export function auditOutcome(dbDir: string, processingId: string, result: SubmitResult, detail: { slurmJob?: string; error?: string } = {}): boolean {
  return appendToTrail(dbDir, outcomeRecord(processingId, result, detail));
}

/** What a submission made, for its outcome line. */
export interface SubmissionOutcome {
  readonly result: SubmitResult;
  readonly slurmJob?: string;
  readonly error?: string;
}

/**
 * Audit one submission: the request line, then `submit()`, then its outcome line (`outcome(value)`, default
 * "submitted" with the value's `jobId` if it has one; "failed" with the message when it throws, which is rethrown).
 */
export async function audited<T>(request: JobRequest, context: RequestContext, submit: () => Promise<T>, outcome?: (value: T) => SubmissionOutcome): Promise<T> {
  auditRequest(request, context);
  let value: T;
  try {
    value = await submit();
  } catch (err) {
    auditOutcome(context.dbDir, request.processingId, "failed", { error: (err as Error).message });
    throw err;
  }
  const done = outcome?.(value) ?? { result: "submitted" as const, slurmJob: jobIdOf(value) };
  auditOutcome(context.dbDir, request.processingId, done.result, { slurmJob: done.slurmJob, error: done.error });
  return value;
}

function jobIdOf(value: unknown): string | undefined {
  if (value && typeof value === "object" && "jobId" in value && typeof value.jobId === "string") return value.jobId;
  return undefined;
}
