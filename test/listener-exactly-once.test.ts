/**
 * Exactly one job per request (issue 17 item 8) on the real broker and real Slurm: 30 notifications while the
 * listener is killed -9 three times during a slow sbatch (a wrapper that sleeps 2 s, then calls the real one). Only
 * the listener is killed, as a crash would: its sbatch child lives on and submits. Every run gets exactly one Slurm
 * job, and the job's command ran exactly once per run.
 */
import { execFileSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect } from "vitest";
import { produceJson, startKafka, uniqueTopic, type TestKafka } from "./helpers/kafka-broker.js";
import { ListenerProcess, demoDatabase, listenerDir } from "./helpers/listener.js";
import { itSlurm, scancel } from "./helpers/slurm.js";
import { tempDir } from "./helpers/tmp.js";
import { sleep, until as waitUntil } from "./helpers/wait.js";

let kafka: TestKafka;

beforeAll(async () => {
  kafka = await startKafka([], { groupRebalanceDelayMs: 1500 });
}, 60_000);

afterAll(async () => {
  await kafka?.stop();
});

const until = (check: () => boolean, timeoutMs: number, describe: () => string) => waitUntil(check, timeoutMs, describe, 200);

/** Slurm's jobs working in `dbDir`: id, name, comment, state (finished ones stay visible for MinJobAge). */
function jobsIn(dbDir: string): Array<{ id: string; name: string; comment: string; state: string }> {
  const out = execFileSync("squeue", ["--noheader", "--states=all", "--format=%i|%j|%k|%T|%Z"], { encoding: "utf8", timeout: 30_000 });
  return out
    .split("\n")
    .map((l) => l.trim().split("|"))
    .filter((f) => f.length === 5 && f[4] === dbDir)
    .map(([id, name, comment, state]) => ({ id: id!, name: name!, comment: comment!, state: state! }));
}

const ACTIVE = new Set(["PENDING", "RUNNING", "CONFIGURING", "COMPLETING"]);
const RUNS = 30;

describe("exactly one job per request", () => {
  itSlurm(
    "30 notifications, the listener killed -9 three times during a slow sbatch: every run gets exactly one Slurm job",
    async () => {
      const tmp = tempDir();
      const db = demoDatabase(tmp, 1);
      const bin = join(tmp, "bin");
      mkdirSync(bin);
      writeFileSync(join(bin, "sbatch"), '#!/bin/sh\nsleep 2\nexec /usr/bin/sbatch "$@"\n');
      chmodSync(join(bin, "sbatch"), 0o755);
      // The job's command: records the run and processing id it was given (… extract P R data --processing-id ID),
      // whether called directly or through a wrapper command of its own (run-logged LOG -- COMMAND …).
      const ran = join(tmp, "ran.log");
      const record = join(tmp, "record.sh");
      writeFileSync(record, `#!/bin/sh\nwhile [ $# -gt 0 ] && [ "$1" != extract ]; do shift; done\n[ $# -gt 0 ] && echo "$3 $6" >> ${ran}\nexit 0\n`);
      chmodSync(record, 0o755);
      const rawTopic = uniqueTopic("test.r2d2");
      const procTopic = uniqueTopic("cal.offline-corrections");
      await kafka.addTopics([rawTopic, procTopic]);
      const dir = listenerDir(tmp, 1234, db, { kafka_raw_topic: rawTopic, kafka_proc_topic: procTopic, damnit_command: record });
      const env = { DAMNIT_KAFKA_BROKERS: kafka.brokers.join(","), PATH: `${bin}:${process.env.PATH ?? ""}` };
      const listeners: ListenerProcess[] = [];
      const start = () => {
        const l = new ListenerProcess(dir, env);
        listeners.push(l);
        return l;
      };
      const submittedLines = () => listeners.reduce((n, l) => n + l.lines.filter((x) => /Submitted Slurm job|Adopted Slurm job/.test(x.msg)).length, 0);
      const ranRuns = () => (existsSync(ran) ? readFileSync(ran, "utf8").split("\n").filter(Boolean).map((l) => Number(l.split(" ")[0])) : []);
      try {
        let listener = start();
        await listener.waitFor(/Listening to Kafka/, 60_000);
        const timestamp = String(Date.now() + 5000);
        const runs = Array.from({ length: RUNS }, (_, i) => i + 1);
        await produceJson(kafka.brokers, rawTopic, runs.map((run) => ({ event: "migration_complete", proposal: 1234, run })), { timestamp });
        for (let kill = 0; kill < 3; kill++) {
          // A few submissions on, then 1 s into the next sbatch (which sleeps 2 s before submitting).
          const target = submittedLines() + 3;
          await until(() => submittedLines() >= target, 90_000, () => listener.tail());
          await sleep(1000);
          const exited = new Promise((r) => listener.child.once("exit", r));
          process.kill(listener.child.pid!, "SIGKILL"); // the listener only: its sbatch child goes on
          await exited;
          listener = start();
          await listener.waitFor(/Listening to Kafka/, 120_000);
        }
        await until(() => new Set(ranRuns()).size >= RUNS, 240_000, () => `ran ${new Set(ranRuns()).size} runs\n${listener.tail()}`);
        // Nothing still queued that could run a second time.
        await until(() => jobsIn(db).every((j) => !ACTIVE.has(j.state)), 60_000, () => JSON.stringify(jobsIn(db)));
        await sleep(3000);

        const jobs = jobsIn(db);
        const perRun = new Map<number, number>();
        for (const j of jobs) {
          const run = Number(/^r(\d+)-p1234-damnit$/.exec(j.name)?.[1]);
          expect(j.comment).toMatch(/^damnit:[0-9a-f-]{36}:p1234-r\d+-raw-[0-9a-f]{16}$/);
          perRun.set(run, (perRun.get(run) ?? 0) + 1);
        }
        const ranCounts = new Map<number, number>();
        for (const r of ranRuns()) ranCounts.set(r, (ranCounts.get(r) ?? 0) + 1);
        const recovered = listeners.flatMap((l) => l.lines.filter((x) => /Adopted Slurm job|no job was submitted/.test(x.msg)).map((x) => x.msg));
        console.log(`sent ${RUNS}, Slurm jobs ${jobs.length}, runs with one job ${[...perRun.values()].filter((n) => n === 1).length}, kills 3, recovered during sbatch: ${recovered.length}`);
        for (const run of runs) {
          expect(perRun.get(run), `Slurm jobs for run ${run}`).toBe(1);
          expect(ranCounts.get(run), `job commands for run ${run}`).toBe(1);
        }
        expect(jobs).toHaveLength(RUNS);
        // The kills did land during an sbatch at least once (else this test proved nothing about that case).
        expect(recovered.length).toBeGreaterThanOrEqual(1);
      } finally {
        for (const l of listeners) await l.stop();
        await scancel(jobsIn(db).filter((j) => ACTIVE.has(j.state)).map((j) => j.id));
      }
    },
    600_000,
  );
});
