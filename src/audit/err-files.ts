/**
 * `.err` files (spec satellites §B.2, §B.6): a failed request (the job's non-zero exit, a runner crash, a failed
 * Slurm submission) leaves `<db dir>/process_logs/r<R>-p<P>.err` beside the run's `.out` log, one line in the audit
 * format carrying the full request and why it failed, so that `damnit replay --err` can submit it again. A later
 * success of the same request (proposal, run, data kind and selection) renames it `.err.resolved`.
 *
 * process_logs/ is shared (sticky), so the file is written as a fresh file of our own (O_EXCL, no symlink followed)
 * and renamed into place; a symlink at the name is replaced, never followed.
 */
import { closeSync, renameSync, unlinkSync, writeSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import type { JobRequest } from "../core/job-request.js";
import { isNodeError } from "../core/node-errors.js";
import { createFresh, sharedDirectory } from "../core/safe-open.js";
import { log } from "../log.js";
import { formatAuditLine } from "./line.js";
import { parseAuditText, readAuditText } from "./reader.js";
import { checkRequestRecord, requestRecord, selectionKey, type FailureRecord, type RequestContext, type RequestRecord } from "./records.js";

const ERR_MODE = 0o644;

export function errFilePath(dbDir: string, proposal: number, run: number): string {
  return join(dbDir, "process_logs", `r${run}-p${proposal}.err`);
}

/** Write the `.err` file of a failed request (replacing an earlier one of the run); false (and a warning) on failure. */
export function writeErrFile(request: JobRequest, context: RequestContext, error: string, now = new Date()): boolean {
  const record: FailureRecord = { ...requestRecord(request, context, now.getTime()), error: error.slice(0, 4000), failed_at: now.getTime() / 1000 };
  const file = errFilePath(context.dbDir, request.proposal, request.run);
  try {
    sharedDirectory(join(context.dbDir, "process_logs"), 0o1777);
    const tmp = `${file}.${randomBytes(6).toString("hex")}.tmp`;
    const fd = createFresh(tmp, ERR_MODE);
    try {
      // Exactly one line, no newline after it (the seed's .err).
      writeSync(fd, formatAuditLine(record, now));
    } finally {
      closeSync(fd);
    }
    try {
      renameSync(tmp, file);
    } catch (err) {
      unlinkSync(tmp);
      throw err;
    }
    return true;
  } catch (err) {
    log().warn(`Could not write ${file}: ${(err as Error).message}`);
    return false;
  }
}

/** The request in an `.err` file; undefined with the reason when it holds none. */
export function readErrFile(file: string): { ok: true; record: RequestRecord & { error?: string } } | { ok: false; reason: string } {
  let text: string;
  try {
    text = readAuditText(file);
  } catch (err) {
    return { ok: false, reason: (err as Error).message };
  }
  const { entries, problems } = parseAuditText(file, text);
  if (problems.length > 0) return { ok: false, reason: `line ${problems[0]!.line}: ${problems[0]!.reason}` };
  if (entries.length !== 1) return { ok: false, reason: `holds ${entries.length} audit lines, not one` };
  const checked = checkRequestRecord(entries[0]!.record);
  return checked.ok ? { ok: true, record: checked.record } : { ok: false, reason: checked.reason };
}

/**
 * After a success: the run's `.err` file, when it is of this same request, becomes `.err.resolved` (replacing an
 * older one). True when one was resolved.
 */
export function resolveErrFile(dbDir: string, request: JobRequest): boolean {
  const file = errFilePath(dbDir, request.proposal, request.run);
  const found = readErrFile(file);
  if (!found.ok) return false; // none (the common case), or not ours to judge
  const same = selectionKey(found.record) === selectionKey(requestRecord(request, { origin: "cli", idempotencyKey: "", dbDir }));
  if (!same) return false;
  try {
    renameSync(file, `${file}.resolved`);
    return true;
  } catch (err) {
    if (!isNodeError(err, "ENOENT")) log().warn(`Could not mark ${file} resolved: ${(err as Error).message}`);
    return false;
  }
}

/** Record a request's end: `.err` when it failed, resolved when it succeeded. */
export function recordJobEnd(request: JobRequest, context: RequestContext, result: { ok: boolean; message?: string }): void {
  if (result.ok) resolveErrFile(context.dbDir, request);
  else writeErrFile(request, context, result.message ?? "failed");
}
