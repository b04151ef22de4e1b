/**
 * Submitting what a replay selected (`damnit replay`; the selection is src/audit/replay-select.ts): each request
 * again with a fresh processing id (the old one kept as `replay_of` in the audit trail), through the same path as
 * `damnit reprocess`: Slurm array jobs, or processing here. Each request is checked first and refused on its own,
 * with the reason: a database that no longer exists, one that is closed (`run_info/CLOSED`), a proposal that is not
 * the database's or not found under the data root, a run without data. `dryRun` says what would be submitted.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { ReplayCandidate } from "../audit/replay-select.js";
import { selectionKey } from "../audit/records.js";
import { isDamnitError } from "../core/errors.js";
import { RunDatabase } from "../db/run-database.js";
import { dataRoot as defaultDataRoot, findProposalDirectory, runDirectory } from "../exdf/open-run.js";
import { dataRootOf } from "../extract/local.js";
import { reprocessHere, submitRequests, type AuditAs, type ProcessingWay } from "./reprocess.js";
import { newProcessingId, type JobRequest } from "./request.js";

export interface ReplayOutcome {
  readonly candidate: ReplayCandidate;
  readonly action: "would-submit" | "submitted" | "local" | "refused" | "failed";
  /** the Slurm job, or why it was refused or failed */
  readonly detail: string;
  /** the new processing id */
  readonly processingId?: string;
}

export interface ReplayOptions {
  readonly way: ProcessingWay;
  readonly dryRun?: boolean;
  readonly concurrency?: number;
}

/** The file that closes a database (run bookkeeping): its requests are refused. */
export function closedMarker(dbDir: string): string {
  return join(dbDir, "run_info", "CLOSED");
}

export async function replayRequests(candidates: readonly ReplayCandidate[], opts: ReplayOptions): Promise<ReplayOutcome[]> {
  const byDatabase = new Map<string, ReplayCandidate[]>();
  for (const c of candidates) byDatabase.set(c.dbDir, [...(byDatabase.get(c.dbDir) ?? []), c]);
  const outcomes: ReplayOutcome[] = [];
  for (const [dbDir, group] of byDatabase) outcomes.push(...(await replayInDatabase(dbDir, group, opts)));
  return outcomes;
}

async function replayInDatabase(dbDir: string, group: readonly ReplayCandidate[], opts: ReplayOptions): Promise<ReplayOutcome[]> {
  const refuseAll = (why: string) => group.map((candidate) => ({ candidate, action: "refused" as const, detail: why }));
  if (!existsSync(join(dbDir, "runs.sqlite"))) return refuseAll(`the database ${dbDir} no longer exists (no runs.sqlite)`);
  if (existsSync(closedMarker(dbDir))) return refuseAll(`the database ${dbDir} is closed (${closedMarker(dbDir)} exists); nothing is submitted for it`);
  let db: RunDatabase;
  try {
    db = await RunDatabase.open(dbDir);
  } catch (err) {
    if (isDamnitError(err)) return refuseAll(err.message);
    throw err;
  }
  try {
    if (db.readonly) return refuseAll(`${db.path} is read-only here; its runs cannot be processed`);
    const outcomes: ReplayOutcome[] = [];
    const accepted: ReplayCandidate[] = [];
    for (const candidate of group) {
      const why = refusal(db, candidate);
      if (why) outcomes.push({ candidate, action: "refused", detail: why });
      else accepted.push(candidate);
    }
    if (opts.dryRun) return [...outcomes, ...accepted.map((candidate) => ({ candidate, action: "would-submit" as const, detail: "" }))];
    if (accepted.length === 0) return outcomes;

    // The run is in the table before its job runs (a request audited in audit-only mode never added it).
    await db.withWriteLock(() => {
      for (const { record } of accepted) db.ensureRun(record.proposal, record.run, { addedAt: record.notified_at ?? Date.now() / 1000 });
    });
    const requests = accepted.map((c, i): JobRequest => ({
      proposal: c.record.proposal,
      run: c.record.run,
      data: c.record.run_data as JobRequest["data"],
      processingId: newProcessingId(),
      ...(c.record.variables.length > 0 ? { variables: c.record.variables } : {}),
      ...(c.record.match.length > 0 ? { match: c.record.match } : {}),
      cluster: c.record.cluster,
      updateVars: i === 0,
    }));
    const audit: AuditAs = {
      origin: "replay",
      replayOf: new Map(requests.map((r, i) => [r.processingId, accepted[i]!.record.processing_id])),
      notifiedAt: new Map(requests.flatMap((r, i) => (accepted[i]!.record.notified_at === null ? [] : [[r.processingId, accepted[i]!.record.notified_at!] as const]))),
    };
    if (opts.way === "slurm") {
      try {
        const { jobs } = await submitRequests(db, requests, { concurrency: opts.concurrency, hint: "use --local to process here", audit });
        accepted.forEach((candidate, i) => outcomes.push({ candidate, action: "submitted", detail: jobs[i]!.jobId, processingId: requests[i]!.processingId }));
      } catch (err) {
        if (!isDamnitError(err)) throw err;
        accepted.forEach((candidate, i) => outcomes.push({ candidate, action: "failed", detail: err.message, processingId: requests[i]!.processingId }));
      }
      return outcomes;
    }
    // Here: one reprocessing per selection (same data kind and variables), each run once.
    const bySelection = new Map<string, number[]>();
    accepted.forEach((c, i) => {
      const key = selectionKey({ ...c.record, run: 0 });
      bySelection.set(key, [...(bySelection.get(key) ?? []), i]);
    });
    for (const indexes of bySelection.values()) {
      const first = requests[indexes[0]!]!;
      const { results } = await reprocessHere(db, first.proposal, indexes.map((i) => requests[i]!.run), {
        data: first.data,
        variables: first.variables,
        match: first.match,
        cluster: first.cluster,
        concurrency: opts.concurrency,
        audit,
        processingIds: new Map(indexes.map((i) => [requests[i]!.run, requests[i]!.processingId])),
      });
      const byRun = new Map([...results].map(([run, result]) => [run.run, result]));
      for (const i of indexes) {
        const result = byRun.get(requests[i]!.run);
        outcomes.push({
          candidate: accepted[i]!,
          action: result?.ok ? "local" : "failed",
          detail: result?.ok ? `${result.stored.length} results` : (result?.message ?? "no result"),
          processingId: requests[i]!.processingId,
        });
      }
    }
    return outcomes;
  } finally {
    db.close();
  }
}

/** Why this request cannot be submitted for this database, or undefined. */
function refusal(db: RunDatabase, { record }: ReplayCandidate): string | undefined {
  const what = `p${record.proposal} r${record.run} (${record.run_data})`;
  if (db.proposal !== undefined && db.proposal !== record.proposal) return `${what}: proposal ${record.proposal} is not this database's (${db.proposal}, ${db.dir})`;
  let proposalDir: string;
  try {
    proposalDir = findProposalDirectory(record.proposal, dataRootOf(db) ?? defaultDataRoot());
  } catch (err) {
    return `${what}: unknown proposal: ${(err as Error).message}`;
  }
  const kind = record.run_data === "proc" ? "proc" : "raw";
  const dir = runDirectory(proposalDir, kind, record.run);
  if (!existsSync(dir)) return `${what}: the run has no ${kind} data (${dir} does not exist)`;
  return undefined;
}
