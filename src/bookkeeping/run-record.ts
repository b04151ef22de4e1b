/**
 * The shape of a run's bookkeeping file (`run_info/<thousand>/run_<run:06>.json`, see paths.ts) and reading it.
 * One file per run: the latest notification and request for it, the damnit version and context hash they were made
 * with, every processing attempt (numbered per run, and database-wide by `unique_attempt`), and the run's latest data
 * consistency check. Keys are snake_case, as the JSON is for people and scripts.
 */
import { readFileSync, renameSync } from "node:fs";
import { isNodeError } from "../core/node-errors.js";

/** How far an attempt got; later stages never go back to earlier ones (see OUTCOME_RANK). */
export type AttemptOutcome = "submitting" | "submitted" | "queued" | "running" | "finished" | "failed" | "submit-failed";

export const OUTCOME_RANK: Readonly<Record<AttemptOutcome, number>> = {
  submitting: 0,
  submitted: 1,
  queued: 1,
  running: 2,
  finished: 3,
  failed: 3,
  "submit-failed": 3,
};

/** Who asked for the attempt. */
export type AttemptOrigin = "kafka" | "watch" | "api" | "cli" | "gui" | "replay" | string;

export interface Attempt {
  attempt: number;
  unique_attempt: number;
  processing_id: string;
  origin: AttemptOrigin;
  outcome: AttemptOutcome;
  run_data: string | null;
  slurm_job: string | null;
  /** request_time of this attempt (YYYY-MM-DD HH:MM:SS.ffffff, local time) and epoch seconds of each stage */
  request_time: string;
  requested_at: number;
  started_at: number | null;
  finished_at: number | null;
  error: string | null;
}

export interface ConsistencyRecord {
  variable: string;
  summary: boolean;
  reasons: string[];
  processing_id: string;
  checked_at: number;
}

export interface RunRecord {
  proposal: number;
  run: number;
  run_data: string | null;
  notification: Record<string, unknown> | null;
  request_time: string;
  damnit_version: string;
  context_hash: string;
  attempts: Attempt[];
  data_consistency?: ConsistencyRecord;
}

/** sf_daq_broker's request_time: `YYYY-MM-DD HH:MM:SS.ffffff` in local time. */
export function requestTime(epochSeconds: number): string {
  const d = new Date(epochSeconds * 1000);
  const p = (n: number, w = 2) => String(n).padStart(w, "0");
  const micro = Math.floor((epochSeconds * 1e6) % 1e6);
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(micro, 6)}`;
}

/**
 * The run's record, or undefined when it has none. A file that is not a record (cut short by a full disk, edited by
 * hand) is kept aside as `<file>.corrupt-<time>` and undefined returned, so bookkeeping goes on without losing it.
 */
export function readRunRecord(file: string, onCorrupt?: (kept: string, why: string) => void): RunRecord | undefined {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    if (isNodeError(err, "ENOENT")) return undefined;
    throw err;
  }
  try {
    const parsed = JSON.parse(text) as RunRecord;
    if (typeof parsed !== "object" || parsed === null || !Array.isArray(parsed.attempts)) throw new Error("no attempts list");
    return parsed;
  } catch (err) {
    const kept = `${file}.corrupt-${Date.now()}`;
    renameSync(file, kept);
    onCorrupt?.(kept, (err as Error).message);
    return undefined;
  }
}
