/**
 * The audit trail, `.err` files and replay end to end (issue 17 items 1–4) on the real Kafka-protocol broker and
 * real Slurm: a listener's requests leave exactly two lines each in the database's trail (request, outcome; JSON at
 * offset 18), a notification for an unregistered proposal one line in the listener's trail; a job that fails (its
 * run has no data yet) leaves its `.err` file, and `damnit replay --err` once the data exist turns it into
 * `.err.resolved`; a listener in audit-only mode submits nothing, and `damnit replay --audit … --since <start>`
 * afterwards submits each missed run exactly once (a second replay nothing).
 */
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect } from "vitest";
import { auditTime } from "../src/audit/line.js";
import { damnit } from "./helpers/cli.js";
import { produceJson, startKafka, uniqueTopic, type TestKafka } from "./helpers/kafka-broker.js";
import { ListenerProcess, demoDatabase, listenerDir } from "./helpers/listener.js";
import { itSlurm, scancel } from "./helpers/slurm.js";
import { tempDir } from "./helpers/tmp.js";
import { sleep, until } from "./helpers/wait.js";

let kafka: TestKafka;

beforeAll(async () => {
  kafka = await startKafka([]);
}, 60_000);

afterAll(async () => {
  await kafka?.stop();
});

/** Slurm's jobs working in `dbDir` (finished ones stay visible for MinJobAge). */
function jobsIn(dbDir: string): Array<{ id: string; name: string; state: string }> {
  const out = execFileSync("squeue", ["--noheader", "--states=all", "--array", "--format=%i|%j|%T|%Z"], { encoding: "utf8", timeout: 30_000 });
  return out
    .split("\n")
    .map((l) => l.trim().split("|"))
    .filter((f) => f.length === 4 && f[3] === dbDir)
    .map(([id, name, state]) => ({ id: id!, name: name!, state: state! }));
}

const ACTIVE = new Set(["PENDING", "RUNNING", "CONFIGURING", "COMPLETING"]);

type Json = Record<string, unknown>;

/** The trail's lines: each matches the format, and its JSON (from offset 18) parsed. */
function trail(file: string): Json[] {
  const lines = readFileSync(file, "utf8").split("\n");
  expect(lines.pop()).toBe("");
  for (const line of lines) expect(line).toMatch(/^\[\d{8}-\d{6}\] \{.*\}$/);
  return lines.map((l) => JSON.parse(l.slice(18)) as Json);
}

function rowsOf(dbDir: string, run: number): number {
  const db = new Database(join(dbDir, "runs.sqlite"), { readonly: true, fileMustExist: true });
  try {
    return (db.prepare("SELECT count(*) AS n FROM run_variables WHERE run = ?").get(run) as { n: number }).n;
  } finally {
    db.close();
  }
}

/** How many jobs processed the run (their banner in its process log). */
function processedTimes(dbDir: string, run: number): number {
  const log = join(dbDir, "process_logs", `r${run}-p1234.out`);
  return existsSync(log) ? (readFileSync(log, "utf8").match(new RegExp(`----- Processing r${run} \\(p1234\\)`, "g")) ?? []).length : 0;
}

describe("audit trail, .err files and replay on Kafka and Slurm", () => {
  itSlurm(
    "two lines per request; .err after a failed job, .err.resolved after its replay; audit-only then replay submits each missed run once",
    async () => {
      const tmp = tempDir();
      const db = demoDatabase(tmp, 1); // run 1 has data; run 2 not yet
      expect(damnit(["synth", join(db, "data"), "--proposal", "1234", "--runs", "3", "--first-run", "3", "--size", "small"]).status).toBe(0);
      const rawTopic = uniqueTopic("test.r2d2");
      const procTopic = uniqueTopic("cal.offline-corrections");
      await kafka.addTopics([rawTopic, procTopic]);
      const dir = listenerDir(tmp, 1234, db, { kafka_raw_topic: rawTopic, kafka_proc_topic: procTopic });
      const env = { DAMNIT_KAFKA_BROKERS: kafka.brokers.join(",") };
      const requestsLog = join(db, "audit", "requests.log");
      const listeners: ListenerProcess[] = [];
      // `damnit demo` processed run 1 here: its request and outcome (origin cli) are the trail's first two lines
      const demoLines = trail(requestsLog);
      expect(demoLines).toEqual([
        expect.objectContaining({ run: 1, run_data: "all", origin: "cli" }),
        expect.objectContaining({ processing_id: demoLines[0]!.processing_id, submit_result: "local", error: null }),
      ]);
      try {
        // ---- a listener submitting: two lines per request, the skipped notification in the listener's trail
        let listener = new ListenerProcess(dir, env);
        listeners.push(listener);
        await listener.waitFor(/Listening to Kafka/, 60_000);
        await produceJson(kafka.brokers, rawTopic, [
          { event: "migration_complete", proposal: 1234, run: 1 },
          { event: "migration_complete", proposal: 4444, run: 9 },
          { event: "migration_complete", proposal: 1234, run: 2 },
        ]);
        const submitted1 = await listener.waitFor(/^Submitted Slurm job (\d+) for p1234 r1 /, 90_000);
        const submitted2 = await listener.waitFor(/^Submitted Slurm job (\d+) for p1234 r2 /, 90_000);
        const job1 = /job (\d+)/.exec(submitted1.msg)![1]!;
        const job2 = /job (\d+)/.exec(submitted2.msg)![1]!;

        const lines = trail(requestsLog).slice(2);
        expect(lines).toHaveLength(4);
        for (const [run, job, offset] of [[1, job1, "0"], [2, job2, "2"]] as const) {
          const request = lines.filter((l) => l.run === run);
          expect(request).toHaveLength(1);
          expect(request[0]).toMatchObject({
            proposal: 1234,
            run,
            run_data: "raw",
            variables: [],
            match: [],
            cluster: false,
            origin: "kafka",
            kafka_topic: rawTopic,
            kafka_partition: 0,
            kafka_offset: offset,
            idempotency_key: expect.stringMatching(new RegExp(`^p1234-r${run}-raw-[0-9a-f]{16}$`)),
            replay_of: null,
            db_dir: db,
          });
          const id = request[0]!.processing_id;
          const outcome = lines.filter((l) => l.processing_id === id && l.submit_result !== undefined);
          expect(outcome).toEqual([{ processing_id: id, submit_result: "submitted", slurm_job: job, error: null, timestamp: expect.any(Number) }]);
          // the request line before its outcome
          expect(lines.indexOf(request[0]!)).toBeLessThan(lines.indexOf(outcome[0]!));
        }
        const skipped = trail(join(dir, "audit", "notifications.log"));
        expect(skipped.filter((l) => l.proposal === 4444)).toEqual([
          expect.objectContaining({ skipped: "no database registered for this proposal", run: 9, run_data: "raw", kafka_topic: rawTopic, kafka_offset: "1" }),
        ]);
        expect(skipped.filter((l) => l.proposal === 1234)).toHaveLength(0);

        // ---- the failed job leaves its .err
        const err2 = join(db, "process_logs", "r2-p1234.err");
        await until(() => existsSync(err2), 180_000, () => `no ${err2}; jobs ${JSON.stringify(jobsIn(db))}`);
        const errText = readFileSync(err2, "utf8");
        expect(errText).toMatch(/^\[\d{8}-\d{6}\] \{.*\}$/);
        expect(JSON.parse(errText.slice(18))).toMatchObject({ proposal: 1234, run: 2, run_data: "raw", processing_id: lines.find((l) => l.run === 2)!.processing_id });
        await until(() => rowsOf(db, 1) > 0, 180_000, () => "run 1 has no values");
        expect(existsSync(join(db, "process_logs", "r1-p1234.err"))).toBe(false);
        await listener.stop();

        // ---- audit-only: recorded, acknowledged, not submitted
        const outageStart = auditTime(new Date(Date.now() - 1000));
        const jobsBefore = jobsIn(db).length;
        listener = new ListenerProcess(dir, env, ["--audit-only"]);
        const auditOnlyListener = listener;
        listeners.push(listener);
        await listener.waitFor(/Listening to Kafka/, 60_000);
        await produceJson(kafka.brokers, rawTopic, [3, 4, 5, 4].map((run) => ({ event: "migration_complete", proposal: 1234, run })));
        for (let i = 0, from = 0; i < 4; i++) from = (await listener.waitFor(/^Audit-only: recorded p1234 r\d /, 60_000, from)).index + 1;
        await sleep(2000);
        expect(jobsIn(db)).toHaveLength(jobsBefore);
        await listener.stop();
        const auditOnly = trail(requestsLog).filter((l) => l.submit_result === "audit-only");
        expect(auditOnly).toHaveLength(4);

        // ---- replay --err once the run's data exist: the job succeeds and resolves the .err
        expect(damnit(["synth", join(db, "data"), "--proposal", "1234", "--runs", "1", "--first-run", "2", "--size", "small"]).status).toBe(0);
        const replayEnv = { DAMNIT_KAFKA_BROKERS: "none" };
        const errReplay = damnit(["replay", "--err", "--dir", db, "--slurm"], { env: replayEnv });
        expect(errReplay.status, errReplay.stderr).toBe(0);
        expect(errReplay.stdout).toMatch(/^submitted p1234 r2 \(raw\) .* as Slurm job \d+_0/m);
        await until(() => existsSync(`${err2}.resolved`), 180_000, () => `no ${err2}.resolved; jobs ${JSON.stringify(jobsIn(db))}`);
        expect(existsSync(err2)).toBe(false);
        expect(rowsOf(db, 2)).toBeGreaterThan(0);

        // ---- replay of the outage: each missed run exactly once
        const replay = damnit(["replay", "--audit", requestsLog, "--since", outageStart, "--slurm"], { env: replayEnv });
        expect(replay.status, replay.stderr).toBe(0);
        const replayed = [...replay.stdout.matchAll(/^submitted p1234 r(\d) \(raw\) .* as Slurm job (\d+_\d+)/gm)];
        // On a failure: every trail line of the runs replayed, and what the audit-only listener logged.
        const why = () =>
          [
            ...readFileSync(requestsLog, "utf8").split("\n").filter((l) => /"run":[12],/.test(l) || l.includes('"submit_result"')),
            ...auditOnlyListener.lines.map((l) => l.msg),
            replay.stdout,
          ].join("\n");
        expect(replayed.map((m) => Number(m[1])).sort(), why()).toEqual([3, 4, 5]);
        expect(replay.stdout).toMatch(/Replayed 3 of 3 requests \(1 older copy of the same requests left out\)/);
        await until(() => [3, 4, 5].every((r) => rowsOf(db, r) > 0), 240_000, () => `jobs ${JSON.stringify(jobsIn(db))}`);
        await until(() => jobsIn(db).every((j) => !ACTIVE.has(j.state)), 120_000, () => JSON.stringify(jobsIn(db)));
        // jobs: the listener's two, the .err replay's one task, the outage replay's three tasks
        const arrayTasks = jobsIn(db).filter((j) => j.name === "p1234-damnit");
        expect(arrayTasks).toHaveLength(4);
        for (const run of [3, 4, 5]) expect(processedTimes(db, run), `jobs that processed run ${run}`).toBe(1);

        // the replay's requests are audited, naming what they replay
        const after = trail(requestsLog);
        const replayLines = after.filter((l) => l.origin === "replay");
        expect(after.filter((l) => l.submit_result !== undefined && replayLines.some((r) => r.processing_id === l.processing_id)).map((l) => l.submit_result)).toEqual(
          Array(4).fill("submitted"),
        );
        expect(replayLines).toHaveLength(4);
        const replayedIds = new Set(auditOnly.map((l) => l.processing_id));
        expect(replayLines.filter((l) => replayedIds.has(l.replay_of)).map((l) => l.run).sort()).toEqual([3, 4, 5]);

        // the same replay again submits nothing
        const again = damnit(["replay", "--audit", requestsLog, "--since", outageStart, "--slurm"], { env: replayEnv });
        expect(again.status, again.stderr).toBe(0);
        expect(again.stdout).toMatch(/^Nothing to replay/m);
        expect(jobsIn(db).filter((j) => j.name === "p1234-damnit")).toHaveLength(4);
      } finally {
        for (const l of listeners) await l.stop();
        await scancel(jobsIn(db).filter((j) => ACTIVE.has(j.state)).map((j) => j.id));
      }
    },
    600_000,
  );
});
