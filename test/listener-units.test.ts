/**
 * The listener's pieces in this process, on real SQLite files and real run directories (src/synth), with a fake
 * Slurm (submitter) and a fake publisher: notification parsing, dispatch and its duplicate detection, the Kafka
 * message handler's redelivery check, and the run watcher's settle logic.
 */
import { appendFileSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Writable } from "node:stream";
import { pino, type Logger } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { RunDatabase } from "../src/db/index.js";
import type { JobRequest } from "../src/jobs/request.js";
import type { SubmitOptions, SubmittedJob } from "../src/jobs/sbatch.js";
import type { UpdateMessage } from "../src/messaging/messages.js";
import type { Publisher } from "../src/messaging/publisher.js";
import { dispatchRun, type DispatchOptions, type ReadyRun, type Submitter } from "../src/listener/dispatch.js";
import type { SourceMessage } from "../src/listener/kafka-source.js";
import { handleReady, kafkaMessageHandler } from "../src/listener/listener.js";
import { LocalQueue } from "../src/listener/local-queue.js";
import { PROFILES, parseNotification, profileFromSettings } from "../src/listener/notification.js";
import { RunWatcher } from "../src/listener/run-watcher.js";
import { ListenerStore } from "../src/listener/store/index.js";
import { writeSyntheticRun } from "../src/synth/write-run.js";
import { tempDir } from "./helpers/tmp.js";

const maxwell = PROFILES.maxwell!;

/** A Slurm that records submissions and keeps each job queued until `finish(id)`. */
class FakeSlurm implements Submitter {
  readonly submitted: Array<{ dbDir: string; request: JobRequest; opts: SubmitOptions; job: SubmittedJob }> = [];
  readonly queued = new Set<string>();
  private nextId = 100;

  async submit(dbDir: string, request: JobRequest, opts: SubmitOptions): Promise<SubmittedJob> {
    const job = { jobId: String(this.nextId++), cluster: "" };
    this.submitted.push({ dbDir, request, opts, job });
    this.queued.add(job.jobId);
    return job;
  }

  async activeJobs(ids: readonly string[]): Promise<Set<string>> {
    return new Set(ids.filter((id) => this.queued.has(id)));
  }

  finish(id: string): void {
    this.queued.delete(id);
  }
}

class FakePublisher implements Publisher {
  readonly sent: Array<{ topic: string; messages: readonly UpdateMessage[] }> = [];
  async send(topic: string, messages: readonly UpdateMessage[]): Promise<void> {
    this.sent.push({ topic, messages });
  }
  async close(): Promise<void> {}
}

/** A logger keeping its lines (JSON), for a failing test to show. */
function memoryLogger(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      lines.push(String(chunk));
      done();
    },
  });
  return { logger: pino({ level: "debug" }, stream), lines };
}

const open: Array<{ close(): void }> = [];
afterEach(() => {
  for (const o of open.splice(0)) o.close();
});

interface Setup {
  store: ListenerStore;
  slurm: FakeSlurm;
  publisher: FakePublisher;
  dispatch: DispatchOptions;
  dbDir: string;
  lines: string[];
}

/** A listener store with one registered database (a real runs.sqlite) and dispatch options with the fakes. */
async function setup(): Promise<Setup> {
  const tmp = tempDir();
  const dbDir = join(tmp, "db");
  const db = await RunDatabase.open(dbDir, { create: true, initialSettings: { proposal: 1234 } });
  db.close();
  const store = ListenerStore.open(join(tmp, "listener"));
  open.push(store);
  store.databases.add(1234, dbDir, false);
  const { logger, lines } = memoryLogger();
  const slurm = new FakeSlurm();
  const publisher = new FakePublisher();
  const local = new LocalQueue(store, publisher, logger, 1);
  open.push(local);
  const dataRoot = join(tmp, "exp");
  mkdirSync(dataRoot);
  const dispatch: DispatchOptions = { store, submitter: slurm, local, publisher, logger, dataRoot, jobEnv: {}, localWithoutSlurm: false };
  return { store, slurm, publisher, dispatch, dbDir, lines };
}

const ready = (run: number, source: string): ReadyRun => ({ proposal: 1234, run, kind: "raw", addedAt: 1_700_000_000, source });

describe("notification parsing", () => {
  it("reads the proposal, run and kind of the profile's raw and proc events, numbers also as strings", () => {
    expect(parseNotification("test.r2d2", JSON.stringify({ event: "migration_complete", proposal: 1234, run: 5 }), maxwell)).toEqual({
      ok: true,
      notification: { proposal: 1234, run: 5, kind: "raw" },
    });
    expect(parseNotification("cal.offline-corrections", Buffer.from(JSON.stringify({ event: "run_corrections_complete", proposal: "1234", run: " 6 " })), maxwell)).toEqual({
      ok: true,
      notification: { proposal: 1234, run: 6, kind: "proc" },
    });
  });

  it("refuses malformed messages with a reason, and other events as ignorable", () => {
    const refused = (topic: string, value: string | Buffer | null) => {
      const parsed = parseNotification(topic, value, maxwell);
      if (parsed.ok) throw new Error(`accepted ${String(value)}`);
      return parsed;
    };
    expect(refused("test.r2d2", null)).toMatchObject({ reason: "empty message", ignorable: false });
    expect(refused("test.r2d2", "")).toMatchObject({ ignorable: false });
    expect(refused("test.r2d2", "{not json").reason).toMatch(/^not JSON/);
    expect(refused("test.r2d2", "[1, 2]")).toMatchObject({ reason: "not a JSON object", ignorable: false });
    expect(refused("test.r2d2", "null")).toMatchObject({ reason: "not a JSON object" });
    expect(refused("test.r2d2", "x".repeat(1_000_001)).reason).toMatch(/too large/);
    expect(refused("test.r2d2", JSON.stringify({ event: "something_else", proposal: 1, run: 1 }))).toMatchObject({ ignorable: true });
    // The raw event on the proc topic is not a raw notification.
    expect(refused("cal.offline-corrections", JSON.stringify({ event: "migration_complete", proposal: 1, run: 1 }))).toMatchObject({ ignorable: true });
    for (const proposal of [-1, 1.5, "12a", null, undefined, "", 1e300]) {
      const parsed = refused("test.r2d2", JSON.stringify({ event: "migration_complete", proposal, run: 1 }));
      expect(parsed.ignorable).toBe(false);
      expect(parsed.reason).toMatch(/'proposal' is .*, not a whole number/);
    }
    expect(refused("test.r2d2", JSON.stringify({ event: "migration_complete", proposal: 1, run: "two" })).reason).toMatch(/'run' is "two", not a whole number/);
  });

  it("takes the profile, topics and events from the listener's settings", () => {
    const store = ListenerStore.open(tempDir());
    open.push(store);
    expect(profileFromSettings(store.settings)).toEqual(maxwell);
    store.settings.set("kafka_profile", "onc");
    store.settings.set("kafka_raw_topic", "my.topic");
    expect(profileFromSettings(store.settings)).toEqual({ ...PROFILES.onc, rawTopic: "my.topic" });
    store.settings.set("kafka_profile", "nowhere");
    expect(() => profileFromSettings(store.settings)).toThrow(/kafka_profile 'nowhere' is not one of maxwell, onc/);
  });
});

describe("dispatch", () => {
  it("submits one Slurm job per ready run, records it, adds the run, and announces it", async () => {
    const s = await setup();
    const outcomes = await dispatchRun(ready(5, "watch p1234 r5 raw"), s.dispatch);
    expect(outcomes).toEqual([{ dbDir: s.dbDir, action: "slurm", detail: "100" }]);
    expect(s.slurm.submitted.length).toBe(1);
    expect(s.slurm.submitted[0]!.request).toMatchObject({ proposal: 1234, run: 5, data: "raw", updateVars: true });
    const [request] = s.store.requests.latest();
    expect(request).toMatchObject({ dbDir: s.dbDir, proposal: 1234, run: 5, data: "raw", via: "slurm", slurmJobId: "100", state: "submitted" });
    const db = await RunDatabase.open(s.dbDir, { readonly: true });
    try {
      expect(db.listRuns()).toEqual([{ proposal: 1234, run: 5 }]);
    } finally {
      db.close();
    }
    expect(s.publisher.sent.length).toBe(1);
  });

  it("a notification delivered twice, or again while its job is queued, starts exactly one job", async () => {
    const s = await setup();
    // The same notification twice through the Kafka handler: the second is recognised as handled.
    const handle = kafkaMessageHandler({ profile: maxwell, since: 0, dispatch: s.dispatch });
    const message: SourceMessage = {
      topic: "test.r2d2",
      partition: 0,
      offset: "17",
      value: Buffer.from(JSON.stringify({ event: "migration_complete", proposal: 1234, run: 5 })),
      timestamp: 1_700_000_000,
    };
    expect(await handle(message)).toBe(true);
    expect(await handle(message)).toBe(true);
    expect(s.slurm.submitted.length).toBe(1);
    // The same run again under another offset (a second notification) while the job is queued: still one job.
    expect(await handle({ ...message, offset: "18" })).toBe(true);
    // And through the watcher's path.
    await handleReady(ready(5, "watch p1234 r5 raw"), s.dispatch);
    const outcome = await dispatchRun(ready(5, "watch p1234 r5 raw"), s.dispatch);
    expect(outcome.map((o) => o.action)).toEqual(["duplicate"]);
    expect(s.slurm.submitted.length).toBe(1);
    expect(s.store.requests.latest().length).toBe(1);
    expect(s.store.inbox.pending()).toEqual([]);

    // Once the job left the queue, a new notification starts a new job, and the old request is marked finished.
    s.slurm.finish("100");
    await dispatchRun(ready(5, "watch p1234 r5 raw"), s.dispatch);
    expect(s.slurm.submitted.length).toBe(2);
    const states = new Map(s.store.requests.latest().map((r) => [r.slurmJobId, r.state]));
    expect(states).toEqual(new Map([["100", "finished"], ["101", "submitted"]]));
  });

  it("skips messages of other proposals, from before the listener listened, and malformed ones without a job", async () => {
    const s = await setup();
    const handle = kafkaMessageHandler({ profile: maxwell, since: 1_700_000_000, dispatch: s.dispatch });
    const base = { topic: "test.r2d2", partition: 0, timestamp: 1_700_000_001 };
    const value = (fields: object) => Buffer.from(JSON.stringify({ event: "migration_complete", ...fields }));
    expect(await handle({ ...base, offset: "1", value: value({ proposal: 999, run: 1 }) })).toBe(false);
    expect(await handle({ ...base, offset: "2", value: value({ proposal: 1234, run: 1 }), timestamp: 1_699_999_999 })).toBe(false);
    // Malformed: refused with the reason (KafkaSource quarantines them at once).
    expect(await handle({ ...base, offset: "3", value: Buffer.from("{oops") })).toEqual({ reject: expect.stringMatching(/^not JSON/) });
    expect(await handle({ ...base, offset: "4", value: value({ proposal: 1234, run: "x" }) })).toEqual({
      reject: `migration_complete: 'run' is "x", not a whole number`,
    });
    expect(s.slurm.submitted.length).toBe(0);
    expect(s.store.inbox.pending()).toEqual([]);
  });
});

describe("run watcher", () => {
  /** A watcher of proposal 1234 under `root` in a fresh store; `known` runs are those the databases hold. */
  function watcher(root: string, settleSeconds: number, known: Set<number>, store = ListenerStore.open(tempDir())): { watch: RunWatcher; store: ListenerStore } {
    open.push(store);
    const watch = new RunWatcher(store.watcher, { settleSeconds, proposals: () => [{ proposal: 1234, dataRoot: root }], known: (_p, run) => known.has(run) });
    return { watch, store };
  }
  const found = (runs: ReturnType<RunWatcher["scan"]>) => runs.map((r) => `r${r.run} ${r.kind}`);

  it("takes a run once its files were unchanged for watch_settle_seconds, and again when they change", async () => {
    const root = join(tempDir(), "exp");
    const { rawDir } = await writeSyntheticRun({ root, proposal: 1234, run: 2, proc: false });
    const { watch } = watcher(root, 2, new Set());
    const t0 = 1_000_000;
    expect(watch.scan(t0)).toEqual([]);
    expect(watch.scan(t0 + 1999)).toEqual([]);
    const ready = watch.scan(t0 + 2000);
    expect(found(ready)).toEqual(["r2 raw"]);
    expect(ready[0]!.runDir).toBe(rawDir);
    // Taken once: not offered again while it is being handled, nor after it was.
    watch.seen(ready[0]!);
    expect(watch.scan(t0 + 5000)).toEqual([]);

    // A new file (e.g. a late sequence file): the run changed; it is offered once it settled again.
    writeFileSync(join(rawDir, "RAW-R0002-DA03-S00000.h5"), "late");
    expect(watch.scan(t0 + 6000)).toEqual([]);
    // Changing again within the settle time starts the wait again.
    appendFileSync(join(rawDir, "RAW-R0002-DA03-S00000.h5"), " and growing");
    expect(watch.scan(t0 + 7000)).toEqual([]);
    expect(watch.scan(t0 + 8500)).toEqual([]);
    expect(found(watch.scan(t0 + 9000))).toEqual(["r2 raw"]);
  });

  it("with watch_settle_seconds 0 takes a complete run at the first scan; partial copies are not runs", async () => {
    const root = join(tempDir(), "exp");
    const { rawDir } = await writeSyntheticRun({ root, proposal: 1234, run: 3, proc: true });
    mkdirSync(`${rawDir.replace(/r0003$/, "r0004")}.partial-123`);
    writeFileSync(join(`${rawDir.replace(/r0003$/, "r0004")}.partial-123`, "RAW-R0004-DA01-S00000.h5"), "half");
    const { watch } = watcher(root, 0, new Set());
    expect(found(watch.scan(1_000_000)).sort()).toEqual(["r3 proc", "r3 raw"]);
  });

  it("takes the runs the databases already hold as done on the first scan, and only then", async () => {
    const root = join(tempDir(), "exp");
    await writeSyntheticRun({ root, proposal: 1234, run: 1, proc: false });
    await writeSyntheticRun({ root, proposal: 1234, run: 2, proc: false });
    const known = new Set([1]);
    const { watch, store } = watcher(root, 0, known);
    const first = watch.scan(1_000_000);
    expect(found(first)).toEqual(["r2 raw"]);
    expect(store.watcher.seenSignature(1234, 1, "raw")).toBeDefined();
    expect(store.watcher.isWatched(1234)).toBe(true);
    // Not handled yet (seen() not called): offered again; once handled, not.
    expect(found(watch.scan(1_001_000))).toEqual(["r2 raw"]);
    watch.seen(first[0]!);
    expect(watch.scan(1_002_000)).toEqual([]);

    // After a restart (a new watcher on the same store): what was handled stays handled; a run appearing now is new
    // even if a database has it (the proposal is no longer watched for the first time).
    await writeSyntheticRun({ root, proposal: 1234, run: 3, proc: false });
    known.add(3);
    const again = watcher(root, 0, known, ListenerStore.open(store.dir));
    expect(found(again.watch.scan(1_003_000))).toEqual(["r3 raw"]);
  });
});
