/**
 * The listener against a Kafka-protocol broker (go-mokapi here; a real cluster when KAFKA_BROKERS is set): real
 * notifications, real Slurm jobs where marked, update messages observed on the database's topic.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync, symlinkSync, chmodSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { damnit } from "./helpers/cli.js";
import { consumeUntil, kafkaClient, produceJson, startKafka, uniqueTopic, type TestKafka } from "./helpers/kafka-broker.js";
import { ListenerProcess, demoDatabase, listenerDir } from "./helpers/listener.js";
import { itSlurm } from "./helpers/slurm.js";
import { tempDir } from "./helpers/tmp.js";

let kafka: TestKafka;

beforeAll(async () => {
  // Longer than the listener's heartbeat interval (1 s): a group's first rebalance waits for every member.
  kafka = await startKafka([], { groupRebalanceDelayMs: 1500 });
}, 60_000);

afterAll(async () => {
  await kafka?.stop();
});

function dbId(dbDir: string): string {
  const db = new Database(join(dbDir, "runs.sqlite"), { readonly: true });
  try {
    return String((db.prepare("SELECT value FROM metameta WHERE key = 'db_id'").get() as { value: string }).value);
  } finally {
    db.close();
  }
}

function runValues(dbDir: string, run: number): Map<string, unknown> {
  const db = new Database(join(dbDir, "runs.sqlite"), { readonly: true });
  try {
    const rows = db.prepare("SELECT name, value FROM run_variables WHERE run = ?").all(run) as Array<{ name: string; value: unknown }>;
    return new Map(rows.map((r) => [r.name, r.value]));
  } finally {
    db.close();
  }
}

function addedAt(dbDir: string, run: number): number | undefined {
  const db = new Database(join(dbDir, "runs.sqlite"), { readonly: true });
  try {
    return (db.prepare("SELECT added_at FROM run_info WHERE run = ?").get(run) as { added_at: number } | undefined)?.added_at;
  } finally {
    db.close();
  }
}

/** A PATH with node and, optionally, a fake sbatch script; no real Slurm. */
function fakePath(parent: string, sbatchScript?: string): string {
  const bin = join(parent, "bin");
  mkdirSync(bin, { recursive: true });
  symlinkSync(process.execPath, join(bin, "node"));
  if (sbatchScript) {
    writeFileSync(join(bin, "sbatch"), sbatchScript);
    chmodSync(join(bin, "sbatch"), 0o755);
  }
  return bin;
}

interface Setup {
  tmp: string;
  db: string;
  dir: string;
  rawTopic: string;
  procTopic: string;
  updates: string;
}

/** A demo database (runs 1 and 2 on disk, run 1 processed), a listener dir for it, and unique topics. */
async function setup(settings: Record<string, string> = {}): Promise<Setup> {
  const tmp = tempDir();
  const db = demoDatabase(tmp, 1);
  const synth = damnit(["synth", join(db, "data"), "--proposal", "1234", "--runs", "1", "--first-run", "2"]);
  expect(synth.status, synth.stderr).toBe(0);
  const rawTopic = uniqueTopic("test.r2d2");
  const procTopic = uniqueTopic("cal.offline-corrections");
  const updates = `test.damnit.db-${dbId(db)}`;
  await kafka.addTopics([rawTopic, procTopic, updates]);
  const dir = listenerDir(tmp, 1234, db, { kafka_raw_topic: rawTopic, kafka_proc_topic: procTopic, ...settings });
  return { tmp, db, dir, rawTopic, procTopic, updates };
}

function start(s: Setup, env: Record<string, string | undefined> = {}): ListenerProcess {
  return new ListenerProcess(s.dir, { DAMNIT_KAFKA_BROKERS: kafka.brokers.join(","), ...env });
}

const migration = (run: number, proposal: number | string = 1234) => ({ event: "migration_complete", proposal, run, path: "/ignored", instrument: "SPB" });

describe("listener with Kafka", () => {
  it("exits non-zero with the reason when a notification topic does not exist", async () => {
    const s = await setup({ kafka_proc_topic: uniqueTopic("no-such-topic") });
    const listener = start(s);
    const exit = await new Promise<{ code: number | null }>((resolve) => listener.child.on("exit", (code) => resolve({ code })));
    expect(exit.code).toBeGreaterThan(0);
    expect(listener.output).toMatch(/cannot subscribe to Kafka topics .*no-such-topic/);
  }, 60_000);

  itSlurm(
    "migration_complete → a Slurm job → rows, HDF5 and update messages; a duplicate delivery starts no second job",
    async () => {
      const s = await setup();
      const listener = start(s);
      try {
        await listener.waitFor(/Listening to Kafka/, 30_000);
        const finished = consumeUntil(kafka.brokers, s.updates, (v) => v?.msg_kind === "processing_finished", 90_000);
        // A record time of its own (the listener ignores notifications sent before it first listened).
        const timestamp = String(Date.now() + 1234);
        await produceJson(kafka.brokers, s.rawTopic, [migration(2), migration(2)], { timestamp });
        const submitted = await listener.waitFor(/Submitted Slurm job (\d+) for p1234 r2 \(raw\)/);
        await listener.waitFor(/already queued or running \(Slurm job \d+\); not starting another job/);
        const messages = await finished;

        const jobId = /job (\d+)/.exec(submitted.msg)![1];
        expect(listener.lines.filter((l) => /Submitted Slurm job/.test(l.msg))).toHaveLength(1);
        const values = runValues(s.db, 2);
        expect(values.get("n_trains")).toBe(40);
        expect(values.has("agipd_corrected_mean")).toBe(false); // a raw job leaves proc variables alone
        expect(existsSync(join(s.db, "extracted_data", "p1234_r2.h5"))).toBe(true);
        expect(addedAt(s.db, 2)).toBeCloseTo(Number(timestamp) / 1000, 3);

        const kinds = messages.map((m) => m.value.msg_kind);
        const pending = messages.find((m) => m.value.msg_kind === "processing_state_set" && m.value.data.status === "PENDING")!.value.data;
        expect(pending).toMatchObject({ proposal: 1234, run: 2, data: "raw", slurm_job_id: jobId });
        const running = messages.find((m) => m.value.msg_kind === "processing_state_set" && m.value.data.status === "RUNNING")!.value.data;
        expect(running).toMatchObject({ processing_id: pending.processing_id, proposal: 1234, run: 2, data: "raw", slurm_job_id: jobId });
        expect(running.hostname).not.toBe("");
        expect(kinds).toContain("variable_set");
        const updated = messages.find((m) => m.value.msg_kind === "run_values_updated")!.value.data;
        expect(updated.run).toBe(2);
        expect(Object.keys(updated.values)).toEqual(expect.arrayContaining(["n_trains", "xgm_mean", "start_time"]));
        expect(messages.at(-1)!.value.data.processing_id).toBe(pending.processing_id);
        expect(damnit(["listener", "requests", "-C", s.dir]).stdout).toMatch(new RegExp(`p1234 r2 raw\\s+(submitted|finished)\\s+Slurm ${jobId}`));
      } finally {
        expect((await listener.stop()).code).toBe(0);
      }
    },
    150_000,
  );

  it("survives 1,000 malformed or foreign messages and then processes a good one here (no Slurm)", async () => {
    const s = await setup({ allow_local_processing: "1" });
    const listener = start(s, { PATH: fakePath(s.tmp) });
    try {
      await listener.waitFor(/Listening to Kafka/, 30_000);
      const junk: unknown[] = [];
      for (let i = 0; i < 1000; i++) {
        const kinds = [
          `not json ${i}`,
          [1, 2, 3],
          null,
          { event: "migration_complete", proposal: 1234 },
          { event: "migration_complete", proposal: "abc", run: 2 },
          { event: "migration_complete", proposal: 1234, run: -5 },
          { event: "migration_complete", proposal: 1e300, run: 2 },
          { event: "something_else", proposal: 1234, run: 2 },
          { event: "migration_complete", proposal: 99999, run: i }, // unregistered proposal
          "\u0000\u00ff",
        ];
        junk.push(kinds[i % kinds.length]);
      }
      await produceJson(kafka.brokers, s.rawTopic, junk.slice(0, 990));
      // Ten that are not JSON at all, raw bytes.
      const producer = kafkaClient(kafka.brokers).producer();
      await producer.connect();
      await producer.send({ topic: s.rawTopic, messages: Array.from({ length: 10 }, (_, i) => ({ value: Buffer.from([0x7b, 0xff, 0x00, i]) })) });
      await producer.disconnect();
      await produceJson(kafka.brokers, s.rawTopic, [migration("1234" as unknown as number, "1234")].map(() => ({ event: "migration_complete", proposal: "1234", run: "2" })));
      await listener.waitFor(/Processed p1234 r2 \(raw\)/, 90_000);
      expect(listener.lines.filter((l) => /^Skipping message/.test(l.msg)).length).toBe(802);
      expect(listener.output).toMatch(/'run' is undefined, not a whole number/);
      expect(listener.output).toMatch(/not UTF-8 text/); // the raw bytes (0xff is not UTF-8)
      expect(listener.output).toMatch(/not a JSON object/);
      expect(runValues(s.db, 2).get("n_trains")).toBe(40);
    } finally {
      expect((await listener.stop()).code).toBe(0);
    }
  }, 150_000);

  it("a notification received but not submitted when the listener is killed -9 is processed after the restart", async () => {
    const s = await setup({ allow_local_processing: "1" });
    const marker = join(s.tmp, "sbatch-called");
    // An sbatch that hangs: the listener is killed while it waits for the submission.
    const hanging = `#!/bin/sh\nif [ "$1" = "--version" ]; then echo "slurm 22.05.8"; exit 0; fi\n/usr/bin/touch ${marker}\nexec /bin/sleep 600\n`;
    const first = start(s, { PATH: fakePath(join(s.tmp, "hang"), hanging) });
    try {
      await first.waitFor(/Listening to Kafka/, 30_000);
      await produceJson(kafka.brokers, s.rawTopic, [migration(2)]);
      await first.waitFor(/Added p1234 r2 \(raw data\)/);
      for (let i = 0; i < 200 && !existsSync(marker); i++) await new Promise((r) => setTimeout(r, 50));
      expect(existsSync(marker)).toBe(true);
    } finally {
      await first.kill9();
    }
    expect(runValues(s.db, 2).size).toBe(0);

    const second = start(s, { PATH: fakePath(join(s.tmp, "none")) });
    try {
      await second.waitFor(/received before the last stop/, 30_000);
      await second.waitFor(/Processed p1234 r2 \(raw\)/, 90_000);
      expect(runValues(s.db, 2).get("n_trains")).toBe(40);
      // Kafka may deliver the uncommitted message again; it must not start a second job meanwhile.
      await new Promise((r) => setTimeout(r, 2000));
      expect(second.lines.filter((l) => /Processed p1234 r2 \(raw\)/.test(l.msg)).length).toBe(1);
    } finally {
      expect((await second.stop()).code).toBe(0);
    }
  }, 150_000);

  it("a broken database is skipped with an error and the proposal's other database is still processed", async () => {
    const s = await setup({ allow_local_processing: "1" });
    const broken = join(s.tmp, "broken");
    mkdirSync(broken);
    writeFileSync(join(broken, "runs.sqlite"), "this is not a database, just text that is long enough ".repeat(100));
    expect(damnit(["listener", "add", "1234", broken, "-C", s.dir]).status).toBe(0);
    const listener = start(s, { PATH: fakePath(s.tmp) });
    try {
      await listener.waitFor(/Listening to Kafka/, 30_000);
      await produceJson(kafka.brokers, s.rawTopic, [migration(2)]);
      const error = await listener.waitFor(/Processing p1234, r2 for .*broken failed/);
      expect(error.msg).toMatch(/not .*SQLite|not a database/i);
      await listener.waitFor(/Processed p1234 r2 \(raw\)/, 90_000);
      expect(runValues(s.db, 2).get("n_trains")).toBe(40);
    } finally {
      expect((await listener.stop()).code).toBe(0);
    }
  }, 150_000);

  it("static mode ignores unregistered proposals; dynamic mode registers the official database and processes it", async () => {
    const tmp = tempDir();
    const root = join(tmp, "exp");
    const official = join(root, "SPB", "202601", "p005678", "usr", "Shared", "amore");
    const demo = damnit(["demo", official, "--runs", "1", "--proposal", "5678"]);
    expect(demo.status, demo.stderr).toBe(0);
    const rawTopic = uniqueTopic("test.r2d2");
    const procTopic = uniqueTopic("cal.offline-corrections");
    await kafka.addTopics([rawTopic, procTopic, `test.damnit.db-${dbId(official)}`]);
    const dir = join(tmp, "listener");
    mkdirSync(dir);
    for (const [k, v] of Object.entries({ kafka_raw_topic: rawTopic, kafka_proc_topic: procTopic, data_root: root, allow_local_processing: "1" })) {
      expect(damnit(["listener", "config", k, v, "-C", dir]).status).toBe(0);
    }
    const env = { DAMNIT_KAFKA_BROKERS: kafka.brokers.join(","), PATH: fakePath(tmp) };
    const staticListener = new ListenerProcess(dir, env);
    try {
      await staticListener.waitFor(/Listening to Kafka/, 30_000);
      await produceJson(kafka.brokers, rawTopic, [migration(1, 5678)]);
      await new Promise((r) => setTimeout(r, 3000));
      expect(damnit(["listener", "databases", "-C", dir]).stdout).toMatch(/No databases registered/);
    } finally {
      const exit = await staticListener.stop();
      expect(exit.code, staticListener.output).toBe(0);
    }

    expect(damnit(["listener", "config", "static-mode", "0", "-C", dir]).status).toBe(0);
    const dynamic = new ListenerProcess(dir, env);
    try {
      await dynamic.waitFor(/Listening to Kafka/, 30_000);
      await produceJson(kafka.brokers, rawTopic, [migration(1, 5678)]);
      await dynamic.waitFor(/Registered the official database of p5678/, 30_000);
      await dynamic.waitFor(/Processed p5678 r1 \(raw\)/, 90_000);
      expect(damnit(["listener", "databases", "-C", dir]).stdout.trim()).toBe(`p5678: ${official}`);
    } finally {
      expect((await dynamic.stop()).code).toBe(0);
    }
  }, 150_000);

  it("rides out a broker outage: reconnects with backoff and processes notifications once the broker is back", async (ctx) => {
    if (process.env.KAFKA_BROKERS) ctx.skip(); // a real cluster cannot be restarted from here
    const s = await setup({ allow_local_processing: "1" });
    const own = await startKafka([s.rawTopic, s.procTopic, s.updates], { groupRebalanceDelayMs: 1500 });
    const listener = new ListenerProcess(s.dir, { DAMNIT_KAFKA_BROKERS: own.brokers.join(","), PATH: fakePath(s.tmp) });
    try {
      await listener.waitFor(/Listening to Kafka/, 30_000);
      const joined = listener.lines.length;
      await own.restart(5000);
      // Rejoined the group on the new broker (the old one's offsets are gone with it).
      await listener.waitFor(/Listening to Kafka/, 60_000, joined);
      await produceJson(own.brokers, s.rawTopic, [migration(2)]);
      await listener.waitFor(/Processed p1234 r2 \(raw\)/, 90_000);
      expect(listener.child.exitCode).toBeNull();
    } finally {
      expect((await listener.stop()).code).toBe(0);
      await own.stop();
    }
  }, 180_000);

  it("runs user code through the sandbox wrapper: <sandbox_args> <proposal> -- <command>", async () => {
    const tmp0 = tempDir();
    const wrapper = join(tmp0, "sandbox.sh");
    const calls = join(tmp0, "calls.txt");
    writeFileSync(wrapper, `#!/bin/sh\necho "$@" >> ${calls}\n[ "$1" = "--profile=strict" ] || exit 9\nshift; shift; [ "$1" = "--" ] || exit 9\nshift\nexec "$@"\n`);
    chmodSync(wrapper, 0o755);
    const s = await setup({ allow_local_processing: "1", sandbox_args: `${wrapper} --profile=strict` });
    const listener = start(s, { PATH: fakePath(s.tmp) });
    try {
      await listener.waitFor(/Listening to Kafka/, 30_000);
      await produceJson(kafka.brokers, s.rawTopic, [migration(2)]);
      await listener.waitFor(/Processed p1234 r2 \(raw\)/, 90_000);
      expect(runValues(s.db, 2).get("n_trains")).toBe(40);
      const lines = readFileSync(calls, "utf8").trim().split("\n");
      expect(lines.length).toBeGreaterThanOrEqual(1);
      expect(lines[0]).toMatch(new RegExp(`^--profile=strict 1234 -- ${process.execPath.replaceAll("/", "\\/")} .*runner-main\\.js$`));
    } finally {
      expect((await listener.stop()).code).toBe(0);
    }
  }, 150_000);

  it("a run being processed here when the listener's process group gets SIGTERM is resumed after the restart, with no error stored", async () => {
    const s = await setup({ allow_local_processing: "1" });
    writeFileSync(
      join(s.db, "context.ts"),
      [
        'import { Variable } from "damnit/context";',
        "export const quick = Variable({}, () => 1);",
        "export const slow = Variable({}, async () => { await new Promise((r) => setTimeout(r, 4000)); return 7; });",
        "",
      ].join("\n"),
    );
    const env = { PATH: fakePath(s.tmp) };
    const first = start(s, env);
    try {
      await first.waitFor(/Listening to Kafka/, 30_000);
      await produceJson(kafka.brokers, s.rawTopic, [migration(2)]);
      await first.waitFor(/Processing p1234 r2 \(raw\) .* here/, 30_000);
      await new Promise((r) => setTimeout(r, 1500)); // inside `slow`
      // What supervisord's stopasgroup does: SIGTERM to the listener and its context runners alike.
      process.kill(-first.child.pid!, "SIGTERM");
      expect((await first.stop()).code).toBe(0);
    } finally {
      await first.kill9();
    }
    expect(runValues(s.db, 2).size).toBe(0);

    const second = start(s, env);
    try {
      await second.waitFor(/Resuming p1234 r2 \(raw\)/, 30_000);
      await second.waitFor(/Processed p1234 r2 \(raw\) for .*: 3 results \(0 errors\)/, 60_000);
      const values = runValues(s.db, 2);
      expect(values.get("slow")).toBe(7);
      expect(values.get("quick")).toBe(1);
    } finally {
      expect((await second.stop()).code).toBe(0);
    }
  }, 150_000);
});
