/**
 * What a replay submits (spec satellites §B.6): requests read from audit trails (`--audit`, filtered by time, run
 * and outcome) or from `.err` files (`--err`), de-duplicated so that each request is submitted once, the newest
 * kept. Two requests are the same when their database, proposal, run, data kind and selection are: the
 * idempotency key they would have now (the context's hash is the database's current one for all of them) plus the
 * selection. A request replayed before (a successful replay of the same selection came after it) is left out, and
 * so is that replay itself, so running the same replay twice submits nothing the second time (unless `again`). Bad lines are skipped and named by file and line number; nothing here submits anything.
 */
import { existsSync, readdirSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { DamnitError } from "../core/errors.js";
import { auditTime, parseAuditTime } from "./line.js";
import { readAuditFile, type AuditProblem } from "./reader.js";
import { readErrFile } from "./err-files.js";
import { checkRequestRecord, isOutcome, selectionKey, type OutcomeRecord, type RequestRecord } from "./records.js";
import { AUDIT_DIR } from "./trail.js";

export interface ReplayCandidate {
  readonly dbDir: string;
  readonly record: RequestRecord;
  /** the line's time, `YYYYmmdd-HHMMSS` */
  readonly time: string;
  /** where it was read: `file:line` */
  readonly from: string;
  /** the last outcome line of its processing id, if any */
  readonly outcome?: OutcomeRecord;
}

export interface ReplaySelection {
  readonly candidates: ReplayCandidate[];
  readonly problems: AuditProblem[];
  /** requests left out as older copies of one kept */
  readonly duplicates: number;
  /** requests left out as replayed before (and the successful replays themselves) */
  readonly replayed?: number;
}

export interface AuditFilter {
  /** `YYYYmmdd-HHMMSS` (inclusive) */
  readonly since?: string;
  readonly until?: string;
  readonly run?: number;
  readonly proposal?: number;
  /** only requests whose last outcome is `failed` */
  readonly failedOnly?: boolean;
  /** also requests replayed before */
  readonly again?: boolean;
}

/** A time given on the command line (`YYYYmmdd-HHMMSS`, `YYYYmmdd`, or an ISO 8601 date/time) as an audit time. */
export function parseTimeOption(name: string, text: string): string {
  if (/^\d{8}$/.test(text) && parseAuditTime(`${text}-000000`)) return `${text}-000000`;
  if (parseAuditTime(text)) return text;
  if (/^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/.test(text)) {
    // A date alone is local midnight (Date would take it as UTC).
    const date = new Date(/^\d{4}-\d{2}-\d{2}$/.test(text) ? `${text}T00:00:00` : text);
    if (!Number.isNaN(date.getTime())) return auditTime(date);
  }
  throw new DamnitError("BAD_ARGUMENT", `--${name} must be a time like 20261202-153000, 20261202 or 2026-12-02T15:30, not '${text}'`);
}

/** The database of a trail: the directory holding its `audit/` folder, else the `db_dir` its lines name. */
function databaseOf(file: string, record: RequestRecord, dirOverride: string | undefined): string {
  if (dirOverride !== undefined) return resolve(dirOverride);
  const folder = dirname(resolve(file));
  if (basename(folder) === AUDIT_DIR && existsSync(join(dirname(folder), "runs.sqlite"))) return dirname(folder);
  return typeof record.db_dir === "string" && record.db_dir !== "" ? record.db_dir : dirname(folder);
}

function keep(candidates: ReplayCandidate[]): { candidates: ReplayCandidate[]; duplicates: number } {
  const newest = new Map<string, ReplayCandidate>();
  for (const c of candidates) {
    const key = `${c.dbDir}\n${selectionKey(c.record)}`;
    const held = newest.get(key);
    // later lines win ties: files are read in the order given, each from top to bottom
    if (!held || c.time >= held.time) newest.set(key, c);
  }
  const kept = [...newest.values()].sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : 0));
  return { candidates: kept, duplicates: candidates.length - kept.length };
}

/** Requests from audit trails, filtered and de-duplicated. */
export function selectFromAudit(files: readonly string[], filter: AuditFilter, opts: { dir?: string } = {}): ReplaySelection {
  const problems: AuditProblem[] = [];
  const requests: Array<Omit<ReplayCandidate, "outcome">> = [];
  const outcomes = new Map<string, OutcomeRecord>();
  for (const file of files) {
    const contents = readAuditFile(file);
    problems.push(...contents.problems);
    for (const entry of contents.entries) {
      const { record } = entry;
      if (isOutcome(record)) {
        outcomes.set(record.processing_id, record);
        continue;
      }
      if (typeof record.skipped === "string") continue; // the listener's trail: no request was made
      const checked = checkRequestRecord(record);
      if (!checked.ok) {
        problems.push({ file, line: entry.line, reason: `not a request line: ${checked.reason}` });
        continue;
      }
      const r = checked.record;
      if (filter.since !== undefined && entry.time < filter.since) continue;
      if (filter.until !== undefined && entry.time > filter.until) continue;
      if (filter.run !== undefined && r.run !== filter.run) continue;
      if (filter.proposal !== undefined && r.proposal !== filter.proposal) continue;
      requests.push({ dbDir: databaseOf(file, r, opts.dir), record: r, time: entry.time, from: `${file}:${entry.line}` });
    }
  }
  const succeeded = (c: ReplayCandidate) => c.outcome?.submit_result === "submitted" || c.outcome?.submit_result === "local";
  let withOutcomes: ReplayCandidate[] = requests.map((c) => ({ ...c, outcome: outcomes.get(c.record.processing_id) }));
  let replayed = 0;
  if (!filter.again) {
    // A successful replay covers every request of the same selection up to it, itself included.
    const covered = new Map<string, string>();
    for (const c of withOutcomes) {
      if (c.record.origin !== "replay" || !succeeded(c)) continue;
      const key = `${c.dbDir}\n${selectionKey(c.record)}`;
      const held = covered.get(key);
      if (held === undefined || held < c.time) covered.set(key, c.time);
    }
    const before = withOutcomes.length;
    withOutcomes = withOutcomes.filter((c) => {
      const until = covered.get(`${c.dbDir}\n${selectionKey(c.record)}`);
      return until === undefined || c.time > until;
    });
    replayed = before - withOutcomes.length;
  }
  withOutcomes = withOutcomes.filter((c) => !filter.failedOnly || c.outcome?.submit_result === "failed");
  return { ...keep(withOutcomes), problems, replayed };
}

/** Requests from the `.err` files of these databases (unresolved ones only), filtered by proposal. */
export function selectFromErrFiles(dbDirs: readonly string[], filter: { proposal?: number } = {}): ReplaySelection {
  const problems: AuditProblem[] = [];
  const found: ReplayCandidate[] = [];
  for (const dir of dbDirs.map((d) => resolve(d))) {
    const logs = join(dir, "process_logs");
    if (!existsSync(logs)) continue;
    for (const name of readdirSync(logs).filter((n) => /^r\d+-p\d+\.err$/.test(n)).sort()) {
      const file = join(logs, name);
      const read = readErrFile(file);
      if (!read.ok) {
        problems.push({ file, line: 1, reason: read.reason });
        continue;
      }
      if (filter.proposal !== undefined && read.record.proposal !== filter.proposal) continue;
      const time = typeof read.record.failed_at === "number" ? auditTime(new Date(read.record.failed_at * 1000)) : auditTime(new Date(0));
      found.push({ dbDir: dir, record: read.record, time, from: file });
    }
  }
  return { ...keep(found), problems };
}
