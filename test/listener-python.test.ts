/**
 * The listener processes a Python context (context.py, contexts/spb-example.py) end to end: watching the run
 * directories, and hearing Kafka notifications; jobs run here (no Slurm on the PATH). Debian's /usr/bin/python3
 * with numpy, xarray and extra_data; fails rather than skips with REQUIRE_PYTHON_CONTEXT=1.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, describe, expect, it } from "vitest";
import { damnit } from "./helpers/cli.js";
import { produceJson, startKafka, uniqueTopic, type TestKafka } from "./helpers/kafka-broker.js";
import { ListenerProcess, listenerDir } from "./helpers/listener.js";
import { tempDir } from "./helpers/tmp.js";

const PYTHON = "/usr/bin/python3";

function pythonReady(): boolean {
  const probe = spawnSync(PYTHON, ["-c", "import numpy, xarray, extra_data"], { timeout: 60_000 });
  if (probe.status === 0) return true;
  if (process.env.REQUIRE_PYTHON_CONTEXT === "1") throw new Error("REQUIRE_PYTHON_CONTEXT=1 but /usr/bin/python3 cannot import numpy, xarray and extra_data");
  console.warn("skipping the listener's Python context tests: /usr/bin/python3 lacks numpy, xarray or extra_data");
  return false;
}

const ready = pythonReady();

/** A PATH with node and nothing else: no sbatch, so jobs run here. */
function pathWithoutSlurm(parent: string): string {
  const bin = join(parent, "bin");
  mkdirSync(bin);
  symlinkSync(process.execPath, join(bin, "node"));
  return bin;
}

/** The demo database with the Python example context, run 1 processed, and run 2's data written. */
function pythonDemo(parent: string): string {
  const dir = join(parent, "db");
  const demo = damnit(["demo", dir, "--runs", "1", "--python", "--context-python", PYTHON]);
  if (demo.status !== 0) throw new Error(`demo failed: ${demo.stderr}`);
  expect(existsSync(join(dir, "context.py"))).toBe(true);
  expect(existsSync(join(dir, "context.ts"))).toBe(false);
  const synth = damnit(["synth", join(dir, "data"), "--proposal", "1234", "--runs", "1", "--first-run", "2"]);
  expect(synth.status, synth.stderr).toBe(0);
  return dir;
}

function rows(dbDir: string, run: number): Map<string, { value: unknown; provenance: string | null }> {
  const db = new Database(join(dbDir, "runs.sqlite"), { readonly: true });
  try {
    const list = db.prepare("SELECT name, value, provenance FROM run_variables WHERE run = ?").all(run) as Array<{ name: string; value: unknown; provenance: string | null }>;
    return new Map(list.map((r) => [r.name, r]));
  } finally {
    db.close();
  }
}

/** What the Python example computes for a run, checked against the run's own data where it is plain. */
function expectPythonResults(dbDir: string, run: number): void {
  const values = rows(dbDir, run);
  expect(values.get("n_trains")?.value).toBe(40);
  expect(values.get("n_trains")?.provenance).toBe("context.py");
  expect(typeof values.get("xgm_mean")?.value).toBe("number");
  expect(values.get("beam_ok")?.value).toMatch(/^(good|low)$/);
  expect(values.has("xgm_pulses")).toBe(false); // transient
}

describe.skipIf(!ready)("the listener with a Python context", () => {
  let kafka: TestKafka | undefined;
  afterAll(async () => {
    await kafka?.stop();
  });

  it("watching the run directories: processes a new run's raw and proc data with context.py", async () => {
    const tmp = tempDir();
    const db = pythonDemo(tmp);
    const dir = listenerDir(tmp, 1234, db, { watch_interval_seconds: "0.3", watch_settle_seconds: "0.5" });
    // The listener found run 2 already on disk at its first look: that is a known run. Write run 3 while it watches.
    const listener = new ListenerProcess(dir, { PATH: pathWithoutSlurm(tmp), DAMNIT_KAFKA_BROKERS: undefined });
    try {
      await listener.waitFor(/watching the raw\/ and proc\/ directories/);
      const synth = damnit(["synth", join(db, "data"), "--proposal", "1234", "--runs", "1", "--first-run", "3"]);
      expect(synth.status, synth.stderr).toBe(0);
      await listener.waitFor(/Processed p1234 r3 \(raw\)/, 90_000);
      await listener.waitFor(/Processed p1234 r3 \(proc\)/, 90_000);
      expectPythonResults(db, 3);
      expect(typeof rows(db, 3).get("agipd_corrected_mean")?.value).toBe("number");
    } finally {
      expect((await listener.stop()).code).toBe(0);
    }
  }, 180_000);

  it("hearing Kafka: a migration_complete notification is processed here with context.py", async () => {
    kafka = await startKafka([], { groupRebalanceDelayMs: 1500 });
    const tmp = tempDir();
    const db = pythonDemo(tmp);
    const rawTopic = uniqueTopic("test.r2d2");
    const procTopic = uniqueTopic("cal.offline-corrections");
    const sqlite = new Database(join(db, "runs.sqlite"), { readonly: true });
    const dbId = String((sqlite.prepare("SELECT value FROM metameta WHERE key = 'db_id'").get() as { value: string }).value);
    sqlite.close();
    await kafka.addTopics([rawTopic, procTopic, `test.damnit.db-${dbId}`]);
    const dir = listenerDir(tmp, 1234, db, { kafka_raw_topic: rawTopic, kafka_proc_topic: procTopic, allow_local_processing: "1" });
    const listener = new ListenerProcess(dir, { PATH: pathWithoutSlurm(tmp), DAMNIT_KAFKA_BROKERS: kafka.brokers.join(",") });
    try {
      await listener.waitFor(/Listening to Kafka/, 30_000);
      expect(rows(db, 2).size).toBe(0);
      await produceJson(kafka.brokers, rawTopic, [{ event: "migration_complete", proposal: 1234, run: 2, path: "/ignored", instrument: "SPB" }]);
      await listener.waitFor(/Processed p1234 r2 \(raw\)/, 90_000);
      expectPythonResults(db, 2);
    } finally {
      expect((await listener.stop()).code).toBe(0);
    }
  }, 180_000);
});
