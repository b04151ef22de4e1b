/**
 * The listener's control API (issue 17 item 7) on a real `damnit listen` with a Kafka-protocol broker and real
 * Slurm: the token (401 and nothing done without it), status, statistics and `listener status`, Prometheus
 * metrics parsed strictly, pause keeping notifications in the inbox until resume submits them, and POST /reprocess
 * validating everything (shape, identity, ranges, state) before anything is submitted or counted.
 */
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, beforeAll, expect, it } from "vitest";
import { runFilePath } from "../src/bookkeeping/paths.js";
import type { RunRecord } from "../src/bookkeeping/run-record.js";
import { damnit } from "./helpers/cli.js";
import { produceJson, startKafka, uniqueTopic, type TestKafka } from "./helpers/kafka-broker.js";
import { ListenerProcess, demoDatabase, listenerDir } from "./helpers/listener.js";
import { parsePrometheus, sampleValue } from "./helpers/prometheus.js";
import { describeSlurm, waitForJob } from "./helpers/slurm.js";

let kafka: TestKafka;
let listener: ListenerProcess;
let db: string;
let dir: string;
let rawTopic: string;
let base: string;
let token: string;
let tmp: string | undefined;

const migration = (run: number, proposal = 1234) => ({ event: "migration_complete", proposal, run, path: "/ignored", instrument: "SPB" });

async function api(method: string, path: string, opts: { body?: string; token?: string | null } = {}): Promise<{ status: number; body: Record<string, any> }> {
  const headers: Record<string, string> = {};
  const t = opts.token === undefined ? token : opts.token;
  if (t !== null) headers.authorization = `Bearer ${t}`;
  if (opts.body !== undefined) headers["content-type"] = "application/json";
  const res = await fetch(`${base}${path}`, { method, headers, body: opts.body, signal: AbortSignal.timeout(60_000) });
  const text = await res.text();
  let body: Record<string, any>;
  try {
    body = JSON.parse(text) as Record<string, any>;
  } catch {
    body = { text };
  }
  return { status: res.status, body };
}

async function metrics() {
  const res = await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(10_000) });
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
  return parsePrometheus(await res.text());
}

function requestRows(): Array<{ run: number; state: string; slurm_job_id: string | null }> {
  const s = new Database(join(dir, "listener.sqlite"), { readonly: true });
  try {
    return s.prepare("SELECT run, state, slurm_job_id FROM processing_requests ORDER BY received_at").all() as Array<{ run: number; state: string; slurm_job_id: string | null }>;
  } finally {
    s.close();
  }
}

function pendingInbox(): number {
  const s = new Database(join(dir, "listener.sqlite"), { readonly: true });
  try {
    return (s.prepare("SELECT count(*) AS n FROM inbox WHERE handled_at IS NULL").get() as { n: number }).n;
  } finally {
    s.close();
  }
}

describeSlurm("the listener's control API", () => {
  beforeAll(async () => {
    kafka = await startKafka([], { groupRebalanceDelayMs: 1500 });
    // Not tempDir(): that is removed after each test, and this listener serves them all.
    tmp = mkdtempSync(join(tmpdir(), "damnit-control-api-"));
    db = demoDatabase(tmp, 1);
    expect(damnit(["synth", join(db, "data"), "--proposal", "1234", "--runs", "1", "--first-run", "2"]).status).toBe(0);
    rawTopic = uniqueTopic("test.r2d2");
    const procTopic = uniqueTopic("cal.offline-corrections");
    await kafka.addTopics([rawTopic, procTopic]);
    dir = listenerDir(tmp, 1234, db, { kafka_raw_topic: rawTopic, kafka_proc_topic: procTopic });
    listener = new ListenerProcess(dir, { DAMNIT_KAFKA_BROKERS: kafka.brokers.join(",") });
    const line = await listener.waitFor(/Control API on http:\/\/127\.0\.0\.1:(\d+)/, 60_000);
    await listener.waitFor(/Listening to Kafka/, 60_000);
    const port = Number(readFileSync(join(dir, "api.port"), "utf8").trim());
    expect(line.msg).toContain(`127.0.0.1:${port} `);
    base = `http://127.0.0.1:${port}`;
    token = readFileSync(join(dir, "api.token"), "utf8").trim();
  }, 120_000);

  afterAll(async () => {
    if (listener) expect((await listener.stop()).code, listener.tail(60)).toBe(0);
    await kafka?.stop();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it("needs the token for every route: 401 without it or with a wrong one, and nothing is done", async () => {
    expect(statSync(join(dir, "api.token")).mode & 0o777).toBe(0o600);
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    for (const [method, path] of [["GET", "/status"], ["GET", "/statistics"], ["GET", "/metrics"], ["POST", "/pause"]] as const) {
      const none = await api(method, path, { token: null });
      expect(none.status).toBe(401);
      expect(none.body).toMatchObject({ status: "error", code: "TOKEN_REQUIRED" });
      const wrong = await api(method, path, { token: "x".repeat(43) });
      expect(wrong.status).toBe(401);
      expect(wrong.body).toMatchObject({ status: "error", code: "BAD_TOKEN" });
    }
    const status = await api("GET", "/status");
    expect(status.status).toBe(200);
    expect(status.body).toEqual({ status: "ok", message: "listening", state: "listening", listening: true, paused: false, audit_only: false });
    expect((await api("GET", "/no/such/route")).status).toBe(404);
  });

  it("counts malformed and foreign notifications; /metrics parses as Prometheus text with the named series", async () => {
    await produceJson(kafka.brokers, rawTopic, ["not json", migration(3, 99999)]);
    await listener.waitFor(/Skipping message/, 30_000);
    for (let i = 0; i < 100; i++) {
      if (sampleValue(await metrics(), "damnit_listener_notifications_received_total") >= 2) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const m = await metrics();
    expect(m.types.get("damnit_listener_notifications_received_total")).toBe("counter");
    expect(m.types.get("damnit_listener_notifications_skipped_total")).toBe("counter");
    expect(m.types.get("damnit_listener_notifications_malformed_total")).toBe("counter");
    expect(m.types.get("damnit_listener_requests_total")).toBe("counter");
    expect(m.types.get("damnit_listener_queue_depth")).toBe("gauge");
    expect(m.types.get("damnit_listener_submit_latency_seconds")).toBe("histogram");
    expect(m.types.get("damnit_listener_job_duration_seconds")).toBe("histogram");
    expect(sampleValue(m, "damnit_listener_notifications_received_total")).toBe(2);
    expect(sampleValue(m, "damnit_listener_notifications_malformed_total")).toBe(1);
    expect(sampleValue(m, "damnit_listener_notifications_skipped_total", { reason: "other_proposal" })).toBe(1);
    expect(sampleValue(m, "damnit_listener_queue_depth")).toBe(0);
    expect(sampleValue(m, "damnit_listener_submit_latency_seconds_count")).toBe(0);
    expect(sampleValue(m, "damnit_listener_submit_latency_seconds_bucket", { le: "+Inf" })).toBe(0);
    expect(requestRows()).toEqual([]);
  });

  it("POST /reprocess validates shape, identity, ranges and state before anything: the envelope names the problem, HTTP 200, nothing submitted or counted", async () => {
    const before = (await api("GET", "/statistics")).body;
    const cases: Array<[string, string, RegExp, string]> = [
      ["malformed JSON", "{", /bad request: .*JSON/i, "BAD_REQUEST"],
      ["no proposal", JSON.stringify({ runs: [1] }), /proposal: .*(Required|expected number)/i, "BAD_ARGUMENT"],
      ["an unknown key", JSON.stringify({ proposal: 1234, runs: [1], colour: "red" }), /colour/, "BAD_ARGUMENT"],
      ["a bad data kind", JSON.stringify({ proposal: 1234, runs: [1], data: "cooked" }), /data: /, "BAD_ARGUMENT"],
      ["a bad run list", JSON.stringify({ proposal: 1234, runs: "1-x" }), /got '1-x'/, "BAD_ARGUMENT"],
      ["an unknown proposal", JSON.stringify({ proposal: 9999, runs: [1] }), /proposal 9999 has no database registered/, "NO_DATABASE"],
      ["runs out of range", JSON.stringify({ proposal: 1234, runs: [0, 1] }), /runs out of range \(1–999999\): 0/, "BAD_ARGUMENT"],
      ["runs without data", JSON.stringify({ proposal: 1234, runs: [1, 7, 8] }), /without raw data .*: 7, 8$/, "NO_RUN"],
    ];
    for (const [what, body, message, exception] of cases) {
      const r = await api("POST", "/reprocess", { body });
      expect(r.status, what).toBe(200);
      expect(r.body.status, what).toBe("error");
      expect(r.body.message, what).toMatch(message);
      expect(r.body.exception, what).toBe(exception);
    }
    // State: a closed database.
    writeFileSync(join(db, "run_info", "CLOSED"), "");
    try {
      const r = await api("POST", "/reprocess", { body: JSON.stringify({ proposal: 1234, runs: [1] }) });
      expect(r.body).toMatchObject({ status: "error", exception: "DB_CLOSED" });
      expect(r.body.message).toMatch(/is closed for writing/);
    } finally {
      rmSync(join(db, "run_info", "CLOSED"));
    }
    expect(requestRows()).toEqual([]);
    const after = (await api("GET", "/statistics")).body;
    expect(after).toEqual(before);
    expect(sampleValue(await metrics(), "damnit_listener_submit_latency_seconds_count")).toBe(0);
  });

  it("a notification for a closed database is recorded as skipped: closed, and nothing is submitted", async () => {
    writeFileSync(join(db, "run_info", "CLOSED"), "");
    try {
      await produceJson(kafka.brokers, rawTopic, [migration(2)]);
      await listener.waitFor(/p1234 r2 \(raw\) for .*: skipped: closed/, 30_000);
      const stats = (await api("GET", "/statistics")).body;
      expect(stats.per_outcome).toEqual({ "skipped: closed": 1 });
      expect(stats.n_skipped_requests).toBe(1);
      expect(stats.n_processed_requests).toBe(0);
      expect(stats.last_request).toMatchObject({ proposal: 1234, run: 2, outcome: "skipped: closed" });
      expect(sampleValue(await metrics(), "damnit_listener_notifications_skipped_total", { reason: "closed" })).toBe(1);
      expect(requestRows()).toEqual([]);
    } finally {
      rmSync(join(db, "run_info", "CLOSED"));
    }
  });

  it("pause keeps notifications in the inbox (and refuses reprocess); resume submits them to Slurm, once", async () => {
    expect((await api("POST", "/pause")).body).toEqual({ status: "ok", message: "paused" });
    expect((await api("GET", "/status")).body).toMatchObject({ state: "paused", paused: true });
    const from = listener.lines.length;
    await produceJson(kafka.brokers, rawTopic, [migration(2)]);
    await listener.waitFor(/Paused: p1234 r2 \(raw\) .* kept in the inbox until resumed/, 30_000, from);
    expect(pendingInbox()).toBe(1);
    expect(requestRows()).toEqual([]);
    expect(sampleValue(await metrics(), "damnit_listener_queue_depth")).toBe(1);
    const refused = await api("POST", "/reprocess", { body: JSON.stringify({ proposal: 1234, runs: [1] }) });
    expect(refused.body).toMatchObject({ status: "error", exception: "LISTENER_PAUSED" });
    expect(requestRows()).toEqual([]);

    const resumed = await api("POST", "/resume");
    expect(resumed.body).toEqual({ status: "ok", message: "resumed; 1 notification kept while paused being handed on" });
    const submitted = await listener.waitFor(/Submitted Slurm job (\d+) for p1234 r2 \(raw\)/, 60_000, from);
    const jobId = /job (\d+)/.exec(submitted.msg)![1]!;
    // Marked handled once dispatch returns (just after its log line).
    for (let i = 0; i < 100 && pendingInbox() > 0; i++) await new Promise((r) => setTimeout(r, 50));
    expect(pendingInbox()).toBe(0);
    expect(requestRows()).toEqual([{ run: 2, state: "submitted", slurm_job_id: jobId }]);
    const stats = (await api("GET", "/statistics")).body;
    expect(stats).toMatchObject({ status: "ok", n_processed_requests: 1, n_failed_requests: 0, per_outcome: { slurm: 1, "skipped: closed": 1 } });
    expect(stats.last_request).toMatchObject({ proposal: 1234, run: 2, data: "raw", outcome: "slurm", detail: jobId });
    expect(Math.abs(stats.last_request_time - Date.now() / 1000)).toBeLessThan(60);
    const m = await metrics();
    expect(sampleValue(m, "damnit_listener_requests_total", { outcome: "slurm" })).toBe(1);
    expect(sampleValue(m, "damnit_listener_submit_latency_seconds_count")).toBe(1);
    expect(sampleValue(m, "damnit_listener_notifications_skipped_total", { reason: "paused" })).toBe(1);
    expect(sampleValue(m, "damnit_listener_queue_depth")).toBe(0);

    expect((await waitForJob(jobId, 120_000)).state).toBe("COMPLETED");
    const rec = JSON.parse(readFileSync(runFilePath(db, 2), "utf8")) as RunRecord;
    expect(rec.attempts).toHaveLength(1);
    expect(rec.attempts[0]).toMatchObject({ attempt: 1, origin: "kafka", outcome: "finished", slurm_job: jobId, run_data: "raw" });
    expect(rec.notification).toMatchObject({ topic: rawTopic, partition: 0, run_data: "raw" });
    expect(listener.lines.filter((l) => /Submitted Slurm job/.test(l.msg))).toHaveLength(1);

    const status = damnit(["listener", "status", "-C", dir]);
    expect(status.status, status.stderr).toBe(0);
    expect(status.stdout).toMatch(/Control API http:\/\/127\.0\.0\.1:\d+: listening/);
    expect(status.stdout).toMatch(/Requests: 1 processed, 1 skipped, 0 failed \(skipped: closed 1, slurm 1\)/);
    expect(status.stdout).toMatch(/Last request: p1234 r2 \(raw\) slurm/);
  }, 180_000);

  it("a valid POST /reprocess submits the runs with their selection (origin api in the run's bookkeeping)", async () => {
    const r = await api("POST", "/reprocess", { body: JSON.stringify({ proposal: 1234, runs: "1", data: "raw", selection: { variables: ["n_trains"] } }) });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ status: "ok", message: "requested raw processing of 1 run of proposal 1234" });
    const outcome = r.body.requests[0].outcomes[0];
    expect(outcome).toMatchObject({ db_dir: db, action: "slurm" });
    expect((await waitForJob(outcome.detail, 120_000)).state).toBe("COMPLETED");
    const rec = JSON.parse(readFileSync(runFilePath(db, 1), "utf8")) as RunRecord;
    expect(rec.attempts.at(-1)).toMatchObject({ origin: "api", outcome: "finished", slurm_job: outcome.detail });
    const log = readFileSync(join(db, "process_logs", "r1-p1234.out"), "utf8");
    expect(log).toMatch(/Using 1 variables \(of \d+\) from context file.*: n_trains/);
  }, 180_000);
});
