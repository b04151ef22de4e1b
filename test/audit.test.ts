/**
 * The audit trail's pieces on real files (issue 17 items 1–3; spec satellites §B.5/§B.6): the line format (JSON at
 * offset 18, single-level), daily rotation keeping the format, a reader that names corrupt lines, `.err` files
 * (one line, resolved by a later success of the same request, symlinks never followed), the replay's selection
 * and de-duplication, and `damnit replay`'s refusals (closed database, database gone, unknown proposal) from the CLI.
 */
import { existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, statSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { errFilePath, readErrFile, recordJobEnd, resolveErrFile, writeErrFile } from "../src/audit/err-files.js";
import { auditDay, formatAuditLine, JSON_OFFSET, parseAuditLine } from "../src/audit/line.js";
import { readAuditFile } from "../src/audit/reader.js";
import { outcomeRecord, requestRecord, type RequestContext } from "../src/audit/records.js";
import { parseTimeOption, selectFromAudit, selectFromErrFiles } from "../src/audit/replay-select.js";
import { auditOutcome, auditRequest, requestTrailPath } from "../src/audit/trail.js";
import { AuditFile } from "../src/audit/writer.js";
import type { JobRequest } from "../src/core/job-request.js";
import { extractArguments, requestFromArguments } from "../src/jobs/request.js";
import { runIntoLog } from "../src/jobs/run-into-log.js";
import { processLogFile } from "../src/process-logs.js";
import { damnit } from "./helpers/cli.js";
import { tempDir } from "./helpers/tmp.js";

const LINE = /^\[\d{8}-\d{6}\] \{.*\}$/;

function request(run: number, extra: Partial<JobRequest> = {}): JobRequest {
  return { proposal: 1234, run, data: "raw", processingId: `pid-${run}-${Math.random().toString(16).slice(2, 8)}`, ...extra };
}

function contextFor(dbDir: string, extra: Partial<RequestContext> = {}): RequestContext {
  return { origin: "kafka", dbDir, idempotencyKey: "p1234-r1-raw-0123456789abcdef", kafka: { topic: "test.r2d2", partition: 0, offset: "17" }, ...extra };
}

/** A database made by `damnit proposal` with synthetic runs 1..n under <db>/data (its data_root). */
function database(runs: number): string {
  const dir = join(tempDir(), "db");
  expect(damnit(["proposal", "1234", dir]).status).toBe(0);
  if (runs > 0) expect(damnit(["synth", join(dir, "data"), "--proposal", "1234", "--runs", String(runs)]).status).toBe(0);
  expect(damnit(["db-config", "data_root", join(dir, "data"), "-C", dir]).status).toBe(0);
  return dir;
}

describe("audit lines", () => {
  it("are [YYYYmmdd-HHMMSS] {json} with the JSON at offset 18, single-level, and parse back", () => {
    const when = new Date(2026, 4, 27, 18, 6, 39);
    const record = requestRecord(request(5, { variables: ["xgm"] }), contextFor("/db"), when.getTime());
    const line = formatAuditLine(record, when);
    expect(line).toMatch(LINE);
    expect(line.slice(0, JSON_OFFSET)).toBe("[20260527-180639] ");
    expect(line.slice(1, 16)).toBe("20260527-180639");
    const json = JSON.parse(line.slice(18)) as Record<string, unknown>;
    expect(json).toEqual(record);
    expect(Object.values(json).every((v) => v === null || typeof v !== "object" || (Array.isArray(v) && v.every((x) => typeof x !== "object")))).toBe(true);
    expect(json).toMatchObject({ proposal: 1234, run: 5, run_data: "raw", variables: ["xgm"], origin: "kafka", kafka_topic: "test.r2d2", kafka_partition: 0, kafka_offset: "17" });
    const parsed = parseAuditLine(line);
    expect(parsed).toEqual({ ok: true, time: "20260527-180639", record });
  });

  it("names what is wrong with a line that is not one", () => {
    expect(parseAuditLine("garbage")).toMatchObject({ ok: false, reason: expect.stringMatching(/does not start with/) });
    expect(parseAuditLine("[20261399-000000] {}")).toMatchObject({ ok: false, reason: expect.stringMatching(/not a date/) });
    expect(parseAuditLine('[20261201-000000] {"a": 1')).toMatchObject({ ok: false, reason: expect.stringMatching(/does not parse/) });
    expect(parseAuditLine('[20261201-000000] {"a": {"b": 1}}')).toMatchObject({ ok: false, reason: expect.stringMatching(/nested/) });
  });

  it("two lines per request in the database's trail; a trail of an earlier day is rotated, keeping the format", () => {
    const db = tempDir();
    const yesterday = new Date(Date.now() - 24 * 3600 * 1000);
    const file = requestTrailPath(db);
    // yesterday's line, the file's mtime then
    new AuditFile(file, { mode: 0o664 }).append(outcomeRecord("old", "submitted"), yesterday);
    utimesSync(file, yesterday, yesterday);
    const r = request(1);
    auditRequest(r, contextFor(db));
    auditOutcome(db, r.processingId, "submitted", { slurmJob: "42" });
    const rotated = `${file}.${auditDay(yesterday)}`;
    expect(readdirSync(join(db, "audit")).sort()).toEqual(["requests.log", `requests.log.${auditDay(yesterday)}`]);
    expect(readFileSync(rotated, "utf8")).toMatch(/^\[\d{8}-\d{6}\] \{"processing_id":"old".*\}\n$/);
    const lines = readFileSync(file, "utf8").split("\n");
    expect(lines.pop()).toBe("");
    expect(lines).toHaveLength(2);
    for (const l of lines) expect(l).toMatch(LINE);
    const [req, out] = lines.map((l) => JSON.parse(l.slice(18)) as Record<string, unknown>);
    expect(req).toMatchObject({ processing_id: r.processingId, proposal: 1234, run: 1, run_data: "raw", idempotency_key: "p1234-r1-raw-0123456789abcdef" });
    expect(out).toMatchObject({ processing_id: r.processingId, submit_result: "submitted", slurm_job: "42", error: null });
    expect(statSync(file).mode & 0o777).toBe(0o664);
    expect(statSync(join(db, "audit")).mode & 0o7777).toBe(0o1777);
  });

  it("a trail that is a symlink is not followed (the line is not written, the submission goes on)", () => {
    const db = tempDir();
    const target = join(db, "elsewhere");
    writeFileSync(target, "");
    mkdirSync(join(db, "audit"));
    symlinkSync(target, join(db, "audit", "requests.log"));
    expect(auditRequest(request(1), contextFor(db))).toBe(false);
    expect(readFileSync(target, "utf8")).toBe("");
  });

  it("the reader skips corrupt lines, naming their line numbers, and reads the rest", () => {
    const db = tempDir();
    const file = join(db, "trail.log");
    const good = formatAuditLine(outcomeRecord("a", "failed", { error: "x" }));
    writeFileSync(file, `${good}\n[2026 broken\n${good}\n{"no": "prefix"}\n`);
    const { entries, problems } = readAuditFile(file);
    expect(entries.map((e) => e.line)).toEqual([1, 3]);
    expect(problems.map((p) => p.line)).toEqual([2, 4]);
  });
});

describe(".err files", () => {
  it("one line in the audit format, no newline, owner-writable; resolved by a later success of the same request only", () => {
    const db = tempDir();
    const r = request(7, { variables: ["a"] });
    expect(writeErrFile(r, contextFor(db), "exit 1: the run could not be opened")).toBe(true);
    const file = errFilePath(db, 1234, 7);
    const text = readFileSync(file, "utf8");
    expect(text).toMatch(LINE);
    expect(text.includes("\n")).toBe(false);
    expect(statSync(file).mode & 0o777).toBe(0o644);
    const read = readErrFile(file);
    expect(read).toMatchObject({ ok: true, record: { processing_id: r.processingId, run: 7, variables: ["a"], error: "exit 1: the run could not be opened" } });
    // another selection's success leaves it; the same request's success resolves it
    expect(resolveErrFile(db, { ...r, variables: ["b"] })).toBe(false);
    expect(resolveErrFile(db, { ...r, data: "proc" })).toBe(false);
    expect(existsSync(file)).toBe(true);
    recordJobEnd({ ...r, processingId: "new" }, contextFor(db), { ok: true });
    expect(existsSync(file)).toBe(false);
    expect(readFileSync(`${file}.resolved`, "utf8")).toBe(text);
  });

  it("a symlink planted at the .err name is replaced, its target untouched", () => {
    const db = tempDir();
    mkdirSync(join(db, "process_logs"));
    const target = join(db, "victim");
    writeFileSync(target, "keep");
    symlinkSync(target, errFilePath(db, 1234, 3));
    expect(writeErrFile(request(3), contextFor(db), "failed")).toBe(true);
    expect(readFileSync(target, "utf8")).toBe("keep");
    expect(lstatSync(errFilePath(db, 1234, 3)).isFile()).toBe(true);
  });
});

describe(".err files of jobs that die without a word", () => {
  it("the job's wrapper names a job killed by a signal; a job that succeeds leaves none", async () => {
    const db = tempDir();
    const r = request(5, { variables: ["xgm", "motor"] });
    expect(requestFromArguments(["node", "damnit.js", ...extractArguments(r)])).toEqual({ ...r, cluster: false });
    const log = processLogFile(db, 1234, 5);
    // `sh -c SCRIPT extract 1234 5 raw …`: the job's command line, the script in place of the job killing itself
    const argv = ["/bin/sh", "-c", "kill -9 $$", ...extractArguments(r)];
    expect(await runIntoLog(["/bin/sh", "-c", "exit 0", ...extractArguments(r)], log)).toBe(0);
    expect(existsSync(errFilePath(db, 1234, 5))).toBe(false);
    expect(await runIntoLog(argv, log)).toBe(137);
    expect(readErrFile(errFilePath(db, 1234, 5))).toMatchObject({
      ok: true,
      record: { processing_id: r.processingId, run: 5, variables: ["xgm", "motor"], origin: "job", error: expect.stringMatching(/killed by signal 9/) },
    });
  });
});

describe("replay selection", () => {
  it("filters by time, run and outcome, keeps the newest of the same request, and leaves out what was replayed", () => {
    const db = tempDir();
    const file = join(db, "trail.log");
    const at = (h: number) => new Date(2026, 11, 2, h, 0, 0);
    const lines: string[] = [];
    const add = (r: JobRequest, h: number, result: "submitted" | "failed" | "audit-only", extra: Partial<RequestContext> = {}) => {
      lines.push(formatAuditLine(requestRecord(r, contextFor(db, extra), at(h).getTime()), at(h)));
      lines.push(formatAuditLine(outcomeRecord(r.processingId, result), at(h)));
    };
    const r1a = request(1);
    const r1b = request(1);
    const r2 = request(2);
    const r3 = request(3, { variables: ["x"] });
    add(r1a, 8, "failed");
    add(r2, 9, "submitted");
    add(r1b, 10, "audit-only");
    add(r3, 11, "failed");
    lines.splice(3, 0, "[20261202-0900 truncated");
    writeFileSync(file, `${lines.join("\n")}\n`);

    const all = selectFromAudit([file], {});
    expect(all.candidates.map((c) => c.record.processing_id)).toEqual([r2.processingId, r1b.processingId, r3.processingId]);
    expect(all.duplicates).toBe(1);
    expect(all.problems).toEqual([{ file, line: 4, reason: expect.stringMatching(/does not start with/) }]);
    expect(all.candidates.every((c) => c.dbDir === db)).toBe(true);

    expect(selectFromAudit([file], { since: "20261202-093000" }).candidates.map((c) => c.record.run)).toEqual([1, 3]);
    expect(selectFromAudit([file], { until: "20261202-090000" }).candidates.map((c) => c.record.processing_id)).toEqual([r1a.processingId, r2.processingId]);
    expect(selectFromAudit([file], { run: 3 }).candidates.map((c) => c.record.run)).toEqual([3]);
    // the newest request of run 1 was not a failure: --failed-only gives the failed copy of run 1 and run 3
    expect(selectFromAudit([file], { failedOnly: true }).candidates.map((c) => c.record.processing_id)).toEqual([r1a.processingId, r3.processingId]);

    // A successful replay of run 3: a second replay leaves out both the original and the replay (unless again)
    const replay = request(3, { variables: ["x"] });
    add(replay, 12, "submitted", { origin: "replay", replayOf: r3.processingId });
    writeFileSync(file, `${lines.join("\n")}\n`);
    const second = selectFromAudit([file], {});
    expect(second.candidates.map((c) => c.record.run)).toEqual([2, 1]);
    expect(second.replayed).toBe(2);
    expect(selectFromAudit([file], { again: true }).candidates.map((c) => c.record.processing_id)).toContain(replay.processingId);
  });

  it("time options take the audit format, a date, or ISO 8601; anything else is refused by name", () => {
    expect(parseTimeOption("since", "20261202-153000")).toBe("20261202-153000");
    expect(parseTimeOption("since", "20261202")).toBe("20261202-000000");
    expect(parseTimeOption("since", "2026-12-02")).toBe("20261202-000000");
    expect(parseTimeOption("since", "2026-12-02T15:30")).toBe("20261202-153000");
    expect(() => parseTimeOption("since", "yesterday")).toThrow(/--since must be a time/);
    expect(() => parseTimeOption("until", "20261340-000000")).toThrow(/--until/);
  });

  it("reads the unresolved .err files of a database, naming one that is not an audit line", () => {
    const db = tempDir();
    writeErrFile(request(4), contextFor(db), "failed");
    writeErrFile(request(5, { proposal: 999 }), contextFor(db), "failed");
    writeFileSync(join(db, "process_logs", "r6-p1234.err"), "not an audit line");
    writeFileSync(join(db, "process_logs", "r8-p1234.err.resolved"), "old");
    const found = selectFromErrFiles([db], { proposal: 1234 });
    expect(found.candidates.map((c) => c.record.run)).toEqual([4]);
    expect(found.problems).toEqual([{ file: join(db, "process_logs", "r6-p1234.err"), line: 1, reason: expect.stringMatching(/line 1: does not start/) }]);
  });
});

describe("damnit replay (CLI)", () => {
  /** A trail in `db` with a request for each run (audit-only), and a corrupt line in the middle. */
  function trailWith(db: string, runs: number[], extra: Partial<JobRequest> = {}): string {
    const file = requestTrailPath(db);
    runs.forEach((run, i) => {
      const r = request(run, extra);
      auditRequest(r, contextFor(db));
      auditOutcome(db, r.processingId, "audit-only");
      if (i === 0) writeFileSync(file, "[20261202-1200 cut off by a crash\n", { flag: "a" });
    });
    return file;
  }

  it("--dry-run lists what would be submitted, skipping a corrupt line by its number; nothing is submitted", () => {
    const db = database(2);
    const file = trailWith(db, [1, 2]);
    const before = readFileSync(file, "utf8");
    const result = damnit(["replay", "--audit", file, "--dry-run"]);
    expect(result.status, result.stderr).toBe(0);
    expect(result.stderr).toMatch(new RegExp(`Skipping ${file} line 3: does not start with`));
    expect(result.stdout.match(/^would submit p1234 r\d \(raw\)/gm)).toEqual(["would submit p1234 r1 (raw)", "would submit p1234 r2 (raw)"]);
    expect(result.stdout).toMatch(/Would submit 2 of 2 requests/);
    expect(readFileSync(file, "utf8")).toBe(before);
  });

  it("refuses, per request, a closed database, a database that no longer exists, an unknown proposal and a run without data", () => {
    const db = database(1);
    // unknown proposal and a run without data, in an open database
    const file = trailWith(db, [1, 7]);
    auditRequest(request(1, { proposal: 4321 }), contextFor(db));
    const refused = damnit(["replay", "--audit", file, "--dry-run"]);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toMatch(/Refused: p4321 r1 \(raw\).*proposal 4321 is not this database's \(1234/);
    expect(refused.stderr).toMatch(/Refused: p1234 r7 \(raw\).*has no raw data/);
    expect(refused.stdout).toMatch(/^would submit p1234 r1 \(raw\)/m);
    expect(refused.stdout).toMatch(/Would submit 1 of 3 requests; 2 refused or failed/);

    // closed: every request refused, nothing written
    mkdirSync(join(db, "run_info"), { recursive: true });
    writeFileSync(join(db, "run_info", "CLOSED"), "");
    const trailBefore = readFileSync(file, "utf8");
    const closed = damnit(["replay", "--audit", file, "--local"]);
    expect(closed.status).toBe(1);
    expect(closed.stderr.match(/Refused: .*is closed \(.*run_info\/CLOSED exists\)/g)).toHaveLength(3);
    expect(readFileSync(file, "utf8")).toBe(trailBefore);

    // an .err file of a database that no longer exists
    const gone = tempDir();
    writeErrFile(request(2), contextFor(gone), "failed");
    const goneResult = damnit(["replay", "--err", "--dir", gone]);
    expect(goneResult.status).toBe(1);
    expect(goneResult.stderr).toMatch(/Refused: p1234 r2 \(raw\).*no longer exists \(no runs.sqlite\)/);
    expect(existsSync(errFilePath(gone, 1234, 2))).toBe(true);
  });

  it("bad usage: nothing to replay from, a bad time, --since with --err", () => {
    expect(damnit(["replay"]).stderr).toMatch(/--audit FILE… .* or --err/);
    const db = tempDir();
    expect(damnit(["replay", "--audit", join(db, "nope.log")]).stderr).toMatch(/nope.log does not exist/);
    expect(damnit(["replay", "--audit", join(db, "x"), "--since", "soon"]).stderr).toMatch(/--since must be a time/);
    expect(damnit(["replay", "--err", "--since", "20261202"]).stderr).toMatch(/--since is for --audit/);
  });
});
