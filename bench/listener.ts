/**
 * Listener benchmark: a real `damnit listen` process fed by Kafka (mokapi, go-mokapi's broker binary, or the
 * cluster named by KAFKA_BROKERS), with baselines measured in the same run.
 *
 *   npm run build && node dist/bench/listener.js [--messages 20000] [--repeats 3] [--runs 15]
 *
 * 1. Drain rate of notifications for proposals with no registered database (static mode: skipped). The N messages
 *    (+ 1 sentinel for the registered proposal, the stream's last message) are published first; then
 *    - baseline: a bare kafkajs consumer (fresh group, fromBeginning, eachMessage JSON.parse, the listener's
 *      consumer settings), timed from its GROUP_JOIN to its last message;
 *    - `damnit listen` with `kafka_group_id` set to a group whose offset was committed at 0 beforehand (so it reads
 *      the topic from its beginning like the baseline), timed from its `Listening to Kafka` log line (logged on
 *      GROUP_JOIN) to the sentinel's `Added p… r… (raw data)` line (pino's `time` of each line).
 *    Each side runs `--repeats` times (one fresh topic per repeat, read by both); the median counts. Target: the
 *    listener's rate ≥ 80 % of the bare consumer's. The listener runs twice per topic: auditing on (the default:
 *    every skipped notification is a line in its audit/notifications.log, counted after the run) and off (`audit`
 *    0). Target: auditing on ≥ 90 % of off.
 * 2. Notification → values-visible latency with local processing (no sbatch on PATH, allow_local_processing 1,
 *    context runners kept alive): for each of `--runs` runs of a `damnit demo` database, produce its
 *    migration_complete and poll runs.sqlite (read-only, every 10 ms) until the run has rows in run_variables;
 *    the next run is published only after the listener logged `Processed` for this one. The first run (context
 *    runner cold start) is reported apart. Target: p50 ≤ 1 s. Baseline: one `damnit extract <P> <R> raw` process per
 *    run (what a Slurm job runs: Node start, context runner start, extraction), timed from spawn to exit.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import Database from "better-sqlite3";
import type { Consumer, Producer } from "kafkajs";
import { pino } from "pino";
import { ListenerTrail } from "../src/audit/listener-trail.js";
import { updateTopic } from "../src/messaging/messages.js";
import { kafkaClient, startKafka, uniqueTopic, type TestKafka } from "../test/helpers/kafka-broker.js";
import { ListenerProcess } from "../test/helpers/listener.js";
import { DAMNIT_BIN as DAMNIT } from "../test/helpers/paths.js";

const PROPOSAL = 1234; // the registered proposal (both parts)

/** The listener's own consumer settings (src/listener/kafka-source.ts), for the baseline consumer too. */
const LISTENER_CONSUMER = {
  sessionTimeout: 10_000,
  rebalanceTimeout: 10_000,
  heartbeatInterval: 1000,
  maxWaitTimeInMs: 500,
} as const;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** `promise`, or a rejection naming `what()` after `ms`. */
async function within<T>(promise: Promise<T>, ms: number, what: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what()}`)), ms))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Run `damnit` to completion (bounded); throw with its output when it fails. */
function damnit(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): string {
  const result = spawnSync(process.execPath, [DAMNIT, ...args], {
    cwd: opts.cwd,
    encoding: "utf8",
    timeout: 120_000,
    env: { ...process.env, DAMNIT_LOG_FORMAT: "json", ...opts.env },
  });
  if (result.status !== 0) throw new Error(`damnit ${args.join(" ")} failed (${result.status ?? result.signal ?? result.error?.message}):\n${result.stderr}`);
  return result.stdout;
}

// --- Kafka helpers ---------------------------------------------------------------------------------------------

/**
 * Commit offset 0 of partition 0 of `topic` for `groupId` (a member must commit it: mokapi answers only members), so
 * a consumer of that group later starts at the topic's beginning although the listener subscribes fromBeginning:
 * false. Done while the topic is still empty.
 */
async function commitStart(brokers: string[], groupId: string, topic: string): Promise<void> {
  const consumer = kafkaClient(brokers, "damnit-bench-offsets").consumer({ groupId, ...LISTENER_CONSUMER, heartbeatInterval: 100 });
  let joined!: () => void;
  const join = new Promise<void>((resolve) => (joined = resolve));
  consumer.on(consumer.events.GROUP_JOIN, () => joined());
  try {
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({ autoCommit: false, eachBatchAutoResolve: false, eachBatch: async () => undefined });
    await within(join, 30_000, () => `group ${groupId} join`);
    await consumer.commitOffsets([{ topic, partition: 0, offset: "0" }]);
  } finally {
    await within(consumer.disconnect(), 15_000, () => `disconnecting from group ${groupId}`).catch(() => undefined);
  }
}

/** ~150-byte migration_complete notifications (a few of the fields a real one carries). */
function notification(proposal: number, run: number): string {
  const p = String(proposal).padStart(6, "0");
  const r = String(run).padStart(4, "0");
  return JSON.stringify({ event: "migration_complete", proposal, run, instrument: "SPB", cycle: "202601", path: `/gpfs/exfel/exp/SPB/202601/p${p}/raw/r${r}` });
}

/** Publish `values` in batches of 1000; seconds taken. */
async function publish(producer: Producer, topic: string, values: string[]): Promise<number> {
  const started = performance.now();
  for (let i = 0; i < values.length; i += 1000) {
    await within(producer.send({ topic, messages: values.slice(i, i + 1000).map((value) => ({ value })) }), 60_000, () => `producing to ${topic} (${i}/${values.length} sent)`);
  }
  return (performance.now() - started) / 1000;
}

interface Drain {
  /** ms from group join to the last message handled */
  ms: number;
  /** ms from group join to the first message (bare consumer only) */
  firstMs?: number;
}

/** Bare kafkajs consumer: fresh group, fromBeginning, JSON.parse each value; until it has seen `expected`. */
async function drainBare(brokers: string[], topic: string, expected: number): Promise<Drain> {
  const consumer: Consumer = kafkaClient(brokers, "damnit-bench-bare").consumer({ groupId: uniqueTopic("damnit-bench-bare"), ...LISTENER_CONSUMER });
  let joinedAt: number | undefined;
  let firstAt: number | undefined;
  let seen = 0;
  let parsed = 0;
  let done!: (lastAt: number) => void;
  const finished = new Promise<number>((resolve) => (done = resolve));
  consumer.on(consumer.events.GROUP_JOIN, () => (joinedAt ??= Date.now()));
  try {
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ message }) => {
        if (seen === 0) firstAt = Date.now();
        const value = JSON.parse(message.value!.toString("utf8")) as { proposal?: unknown };
        if (value.proposal !== undefined) parsed++;
        if (++seen === expected) done(Date.now());
      },
    });
    const lastAt = await within(finished, 120_000, () => `bare consumer saw ${seen}/${expected} messages of ${topic}`);
    if (joinedAt === undefined || firstAt === undefined) throw new Error("bare consumer: no GROUP_JOIN event before its messages");
    if (parsed !== expected) throw new Error(`bare consumer parsed ${parsed} of ${expected} messages`);
    return { ms: lastAt - joinedAt, firstMs: firstAt - joinedAt };
  } finally {
    await within(consumer.disconnect(), 15_000, () => "disconnecting the bare consumer").catch(() => undefined);
  }
}

/**
 * The bare consumer in a fresh Node process, as the listener always is: both then pay the same start-up (module
 * loading, a cold JIT for kafkajs's decoding), and the comparison is of the work per message.
 */
function drainBareFresh(brokers: string[], topic: string, expected: number): Drain {
  const out = execFileSync(process.execPath, [fileURLToPath(import.meta.url), "--bare-child", topic, String(expected), brokers.join(",")], {
    encoding: "utf8",
    timeout: 180_000,
    stdio: ["ignore", "pipe", "inherit"],
  });
  return JSON.parse(out.trim().split("\n").at(-1)!) as Drain;
}

/** A listener directory for `dbDir` (proposal 1234) with these settings. */
function listenerDir(parent: string, name: string, dbDir: string, settings: Record<string, string>): string {
  const dir = join(parent, name);
  mkdirSync(dir, { recursive: true });
  damnit(["listener", "add", String(PROPOSAL), dbDir, "-C", dir]);
  for (const [key, value] of Object.entries(settings)) damnit(["listener", "config", key, value, "-C", dir]);
  return dir;
}

/**
 * What one line of the listener's trail costs, measured directly (µs): `count` skipped notifications written by a
 * ListenerTrail in `dir`, in batches of 100 (a Kafka fetch's worth; the listener writes a batch at a time), after a
 * warm-up. Noise from other load only adds to it.
 */
function trailLineMicroseconds(dir: string, count: number): number {
  const trail = new ListenerTrail(dir, true, pino({ level: "silent" }));
  const line = (i: number) => ({ reason: "no database registered for this proposal", source: `kafka bench[0]@${i} 1796227064916`, proposal: 3000 + (i % 1000), run: 1, kind: "raw" });
  try {
    for (let i = 0; i < 2000; i++) trail.skipped(line(i));
    const started = performance.now();
    for (let i = 0; i < count; i++) {
      trail.skipped(line(i));
      if (i % 100 === 99) trail.flush(); // as the listener writes them: a batch at a time
    }
    trail.flush();
    return ((performance.now() - started) * 1000) / count;
  } finally {
    trail.close();
  }
}

// --- statistics and printing -----------------------------------------------------------------------------------

const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);
const median = (xs: number[]) => {
  const s = sorted(xs);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
/** nearest-rank percentile */
const percentile = (xs: number[], p: number) => sorted(xs)[Math.max(0, Math.ceil((p / 100) * xs.length) - 1)]!;
const s3 = (ms: number) => (ms / 1000).toFixed(3);
const int = (x: number) => Math.round(x).toLocaleString("en-US");

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd();
  return `${line(header)}\n${widths.map((w) => "-".repeat(w)).join("  ")}\n${rows.map(line).join("\n")}\n`;
}

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  const value = i >= 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name} wants a positive whole number`);
  return value;
}

// --- main ------------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const messages = arg("--messages", 20_000);
  const repeats = arg("--repeats", 3);
  const runs = arg("--runs", 15);
  const root = mkdtempSync(join(tmpdir(), "damnit-bench-listener-"));
  let kafka: TestKafka | undefined;
  let producer: Producer | undefined;
  let readDb: Database.Database | undefined;
  const cleanUp = () => {
    for (const l of ListenerProcess.live) void l.kill9();
    rmSync(root, { recursive: true, force: true });
  };
  const onSignal = (signal: NodeJS.Signals) => {
    process.stderr.write(`\n${signal}: cleaning up\n`);
    cleanUp();
    // stop() removes mokapi's directory too; exit anyway after 6 s (the broker helper kills mokapi on exit)
    void within(kafka?.stop() ?? Promise.resolve(), 6000, () => "stopping the broker")
      .catch(() => undefined)
      .finally(() => process.exit(130));
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  const progress = (text: string) => process.stderr.write(`${text}\n`);

  try {
    // No sbatch on PATH: the listener processes runs itself (a temp bin holding only node).
    const bin = join(root, "bin");
    mkdirSync(bin);
    symlinkSync(process.execPath, join(bin, "node"));

    // Databases first: their update-message topics must exist on mokapi (it never creates topics).
    progress(`Setting up databases in ${root} …`);
    const drainDb = join(root, "drain-db");
    damnit(["proposal", String(PROPOSAL), drainDb]);
    const demoDb = join(root, "demo-db");
    damnit(["demo", demoDb, "--runs", "1", "--proposal", String(PROPOSAL)]);
    const firstRun = 2;
    const lastRun = firstRun + runs - 1;
    damnit(["synth", join(demoDb, "data"), "--proposal", String(PROPOSAL), "--runs", String(runs), "--first-run", String(firstRun), "--size", "small"]);
    const dbIdOf = (dir: string) => {
      const db = new Database(join(dir, "runs.sqlite"), { readonly: true, fileMustExist: true });
      try {
        return String((db.prepare("SELECT value FROM metameta WHERE key = 'db_id'").get() as { value: unknown }).value);
      } finally {
        db.close();
      }
    };

    const drainTopics = Array.from({ length: repeats }, () => uniqueTopic("bench-r2d2"));
    const sentinelTopic = uniqueTopic("bench-r2d2-sentinel");
    const latencyTopic = uniqueTopic("bench-r2d2-latency");
    const procTopic = uniqueTopic("bench-cal"); // subscribed by every listener, never written
    const topics = [...drainTopics, sentinelTopic, latencyTopic, procTopic, updateTopic(dbIdOf(drainDb)), updateTopic(dbIdOf(demoDb))];
    kafka = await startKafka(topics);
    const brokers = kafka.brokers;
    progress(`Kafka: ${kafka.external ? "KAFKA_BROKERS" : "mokapi"} ${brokers.join(",")}`);
    producer = kafkaClient(brokers, "damnit-bench-producer").producer({ allowAutoTopicCreation: false });
    await within(producer.connect(), 30_000, () => "producer connect");
    const listenerEnv = { DAMNIT_KAFKA_BROKERS: brokers.join(","), PATH: bin };

    // ---- 1. drain rate ----------------------------------------------------------------------------------------
    const values = Array.from({ length: messages }, (_, i) => notification(3000 + (i % 1000), 1 + Math.floor(i / 1000)));
    const sentinel = notification(PROPOSAL, 1);
    const stream = [...values, sentinel];
    const bytes = values.reduce((n, v) => n + Buffer.byteLength(v), 0) / values.length;
    const bare: Drain[] = [];
    const bareFresh: Drain[] = [];
    const listen: Drain[] = [];
    const listenNoAudit: Drain[] = [];
    /** lines in the auditing listener's notifications.log, per run */
    const auditLines: number[] = [];
    const produceSeconds: number[] = [];

    /** One listener on `topic` (its group committed at 0 before the topic was written): join → sentinel handled. */
    const listenerDrain = async (name: string, topic: string, groupId: string, extra: Record<string, string> = {}): Promise<Drain> => {
      const dir = listenerDir(root, name, drainDb, { kafka_raw_topic: topic, kafka_proc_topic: procTopic, kafka_group_id: groupId, kafka_since: "0", ...extra });
      const listener = new ListenerProcess(dir, listenerEnv);
      try {
        const joined = await listener.waitFor(/^Listening to Kafka/, 60_000);
        const added = await listener.waitFor(new RegExp(`^Added p${PROPOSAL} r1 \\(raw data\\)`), 120_000, joined.index);
        return { ms: added.time - joined.time };
      } finally {
        await listener.stop();
        const trail = join(dir, "audit", "notifications.log");
        if (name.startsWith("listener-drain-") && extra.audit !== "0") auditLines.push(existsSync(trail) ? readFileSync(trail, "utf8").split("\n").length - 1 : 0);
      }
    };

    for (const [i, topic] of drainTopics.entries()) {
      const groupId = uniqueTopic("damnit-bench-listener");
      const groupIdNoAudit = uniqueTopic("damnit-bench-listener");
      await commitStart(brokers, groupId, topic);
      await commitStart(brokers, groupIdNoAudit, topic);
      produceSeconds.push(await publish(producer, topic, stream));
      progress(`drain ${i + 1}/${repeats}: published ${stream.length} messages to ${topic} in ${produceSeconds.at(-1)!.toFixed(2)} s`);
      // Alternate which side reads first, so neither always gets the broker's warmer state.
      const sides = [
        async () => bare.push(await drainBare(brokers, topic, stream.length)),
        async () => bareFresh.push(drainBareFresh(brokers, topic, stream.length)),
        async () => listen.push(await listenerDrain(`listener-drain-${i}`, topic, groupId)),
        async () => listenNoAudit.push(await listenerDrain(`listener-drain-noaudit-${i}`, topic, groupIdNoAudit, { audit: "0" })),
      ];
      for (const side of i % 2 ? sides.reverse() : sides) await side();
      progress(
        `  bare ${s3(bare.at(-1)!.ms)} s, bare (fresh process) ${s3(bareFresh.at(-1)!.ms)} s, listener ${s3(listen.at(-1)!.ms)} s, ` +
          `listener without auditing ${s3(listenNoAudit.at(-1)!.ms)} s`,
      );
    }

    // Fixed cost in each figure: a stream of the sentinel only.
    const sentinelGroup = uniqueTopic("damnit-bench-listener");
    await commitStart(brokers, sentinelGroup, sentinelTopic);
    await publish(producer, sentinelTopic, [sentinel]);
    const bareFixed = await drainBare(brokers, sentinelTopic, 1);
    const bareFreshFixed = drainBareFresh(brokers, sentinelTopic, 1);
    const listenFixed = await listenerDrain("listener-sentinel", sentinelTopic, sentinelGroup);

    // ---- 2. notification → values visible -------------------------------------------------------------------
    const latencyGroup = uniqueTopic("damnit-bench-listener");
    await commitStart(brokers, latencyGroup, latencyTopic);
    const dir = listenerDir(root, "listener-latency", demoDb, {
      kafka_raw_topic: latencyTopic,
      kafka_proc_topic: procTopic,
      kafka_group_id: latencyGroup,
      allow_local_processing: "1",
    });
    readDb = new Database(join(demoDb, "runs.sqlite"), { readonly: true, fileMustExist: true });
    const visibleRows = readDb.prepare("SELECT count(*) AS n FROM run_variables WHERE run = ?");
    const rowsOf = (run: number) => (visibleRows.get(run) as { n: number }).n;
    interface RunTiming {
      run: number;
      sendMs: number;
      addedMs: number;
      processingMs: number;
      visibleMs: number;
      processedMs: number;
      jobSeconds: number;
    }
    const timings: RunTiming[] = [];
    const listener = new ListenerProcess(dir, listenerEnv);
    try {
      await listener.waitFor(/^Listening to Kafka/, 60_000);
      progress(`latency: listener listening; ${runs} runs (r${firstRun}–r${lastRun}) one at a time`);
      for (let run = firstRun; run <= lastRun; run++) {
        if (rowsOf(run) > 0) throw new Error(`run ${run} has values before its notification`);
        const from = listener.lines.length;
        const wallStart = Date.now();
        const t0 = performance.now();
        await within(producer.send({ topic: latencyTopic, messages: [{ value: notification(PROPOSAL, run) }] }), 30_000, () => `producing r${run}`);
        const sendMs = performance.now() - t0;
        const deadline = t0 + 60_000;
        while (rowsOf(run) === 0) {
          if (performance.now() > deadline) throw new Error(`r${run}: no values in run_variables 60 s after its notification; listener log:\n${listener.tail()}`);
          await sleep(10);
        }
        const visibleMs = performance.now() - t0;
        const failOn = new RegExp(`^Local extraction of p${PROPOSAL}, r${run}\\b`);
        const added = await listener.waitFor(new RegExp(`^Added p${PROPOSAL} r${run} \\(raw data\\)`), 60_000, from, failOn);
        const processing = await listener.waitFor(new RegExp(`^Processing p${PROPOSAL} r${run} \\(raw\\)`), 60_000, from, failOn);
        const processed = await listener.waitFor(new RegExp(`^Processed p${PROPOSAL} r${run} \\(raw\\)`), 60_000, from, failOn);
        const jobSeconds = Number(/ in ([\d.]+) s$/.exec(processed.msg)?.[1] ?? NaN);
        timings.push({
          run,
          sendMs,
          addedMs: added.time - wallStart,
          processingMs: processing.time - wallStart,
          visibleMs,
          processedMs: processed.time - wallStart,
          jobSeconds,
        });
        progress(`  r${run}: values visible after ${s3(visibleMs)} s (job ${jobSeconds.toFixed(2)} s)`);
      }
    } finally {
      await listener.stop();
    }
    const complaints = listener.lines.filter((l) => l.level >= 40);
    if (complaints.length) progress(`latency listener logged ${complaints.length} warnings/errors, e.g.:\n${complaints.slice(0, 5).map((l) => `  ${l.msg}`).join("\n")}`);

    // Baseline: one `damnit extract` process per run, as a Slurm job runs it (same broker for its update messages).
    const extractMs: number[] = [];
    for (const run of [firstRun, firstRun + 1, firstRun + 2].filter((r) => r <= lastRun)) {
      const t = performance.now();
      execFileSync(process.execPath, [DAMNIT, "extract", String(PROPOSAL), String(run), "raw"], {
        cwd: demoDb,
        env: { ...process.env, DAMNIT_LOG_FORMAT: "json", DAMNIT_KAFKA_BROKERS: brokers.join(","), PATH: bin },
        stdio: "ignore",
        timeout: 120_000,
      });
      extractMs.push(performance.now() - t);
    }

    // ---- report -------------------------------------------------------------------------------------------
    const out = (text: string) => process.stdout.write(text);
    out(`Kafka: ${kafka.external ? `KAFKA_BROKERS=${brokers.join(",")}` : `mokapi (go-mokapi) on ${brokers.join(",")}`}, 1 partition per topic\n\n`);
    out(
      `1. Drain rate: ${int(stream.length)} notifications per topic (${int(messages)} migration_complete for unregistered proposals, ` +
        `${bytes.toFixed(0)} B each, + 1 for the registered proposal last), published before the consumer starts ` +
        `(${median(produceSeconds).toFixed(2)} s to publish); from group join to the last message handled. Median of ${repeats}.\n\n`,
    );
    const rate = (d: Drain[]) => stream.length / (median(d.map((x) => x.ms)) / 1000);
    const drainRow = (name: string, d: Drain[], fixed: Drain) => [
      name,
      d.map((x) => s3(x.ms)).join(" / "),
      s3(median(d.map((x) => x.ms))),
      int(rate(d)),
      String(fixed.ms),
      d[0]!.firstMs === undefined ? "—" : String(median(d.map((x) => x.firstMs!))),
    ];
    out(
      table(
        ["consumer", "join → last handled, s (each run)", "median s", "msg/s", "1 message only, ms", "join → first message, ms"],
        [
          drainRow("bare kafkajs, fresh process (eachMessage + JSON.parse)", bareFresh, bareFreshFixed),
          drainRow("bare kafkajs, in this warmed-up process", bare, bareFixed),
          drainRow("damnit listen (static mode, 1 registered proposal)", listen, listenFixed),
          drainRow("damnit listen, auditing off (audit 0)", listenNoAudit, listenFixed),
        ],
      ),
    );
    const ratio = rate(listen) / rate(bareFresh);
    out(`\nlistener ÷ bare (both fresh processes): ${(ratio * 100).toFixed(0)} % (target ≥ 80 %) ${ratio >= 0.8 ? "✓" : "✗"}`);
    out(`; against the warmed-up in-process consumer: ${((rate(listen) / rate(bare)) * 100).toFixed(0)} %\n`);
    const auditRatio = rate(listen) / rate(listenNoAudit);
    const best = (d: Drain[]) => Math.min(...d.map((x) => x.ms));
    const bestRatio = best(listenNoAudit) / best(listen);
    const lineUs = trailLineMicroseconds(join(root, "trail-cost"), messages);
    const perMessageUs = (best(listen) * 1000) / stream.length;
    out(
      `auditing on ÷ off: medians ${(auditRatio * 100).toFixed(0)} %, best of ${repeats} ${(bestRatio * 100).toFixed(0)} % (target ≥ 90 %) ` +
        `${bestRatio >= 0.9 ? "✓" : "✗"}; one trail line costs ${lineUs.toFixed(1)} µs (measured here), ` +
        `${((lineUs / perMessageUs) * 100).toFixed(1)} % of the auditing listener's best ${perMessageUs.toFixed(0)} µs per message\n`,
    );
    out(`lines in the listener's audit/notifications.log per run: ${auditLines.join(" / ")} (expected ${messages}: one per skipped notification)\n`);
    out("The listener starts a new process for each figure, so its like-for-like baseline is a bare consumer that does too.\n");
    out(
      "The listener's figure ends at its `Added` log line for the last message: that message is registered, so it\n" +
        "includes opening the database and adding the run (see the 1-message column for that fixed cost in both).\n\n",
    );

    const first = timings[0]!;
    const steady = timings.slice(1);
    const vis = steady.map((t) => t.visibleMs);
    out(`2. Notification → values visible, local processing (${runs} runs of the demo context, small synthetic runs, one at a time)\n\n`);
    const latencyRows: string[][] = [
      ["first run (context runner cold start)", "1", s3(first.visibleMs), "", "", ""],
      ...(steady.length
        ? [[`runs after the first`, String(steady.length), s3(median(vis)), s3(percentile(vis, 95)), s3(Math.min(...vis)), s3(Math.max(...vis))]]
        : []),
      [
        "baseline: one `damnit extract … raw` process per run",
        String(extractMs.length),
        s3(median(extractMs)),
        "",
        s3(Math.min(...extractMs)),
        s3(Math.max(...extractMs)),
      ],
    ];
    out(table(["", "runs", "p50 s", "p95 s", "min s", "max s"], latencyRows));
    const mid = (f: (t: RunTiming) => number) => s3(median(steady.map(f)));
    if (steady.length) {
      out(`\np50 ${s3(median(vis))} s (target ≤ 1 s) ${median(vis) <= 1000 ? "✓" : "✗"}; keeping runners alive: ${(median(extractMs) / median(vis)).toFixed(1)}× faster than a process per run\n\n`);
      out("Where the time goes (medians over the runs after the first, from the produce call's start; log times from the listener's lines):\n");
      out(
        table(
          ["step", "median s", "first run s"],
          [
            ["produce call returns", mid((t) => t.sendMs), s3(first.sendMs)],
            ["listener logs `Added` (delivery + database open + run added)", mid((t) => t.addedMs), s3(first.addedMs)],
            ["listener logs `Processing … here` (request recorded, queued)", mid((t) => t.processingMs), s3(first.processingMs)],
            ["values visible in runs.sqlite (10 ms polls)", mid((t) => t.visibleMs), s3(first.visibleMs)],
            ["listener logs `Processed`", mid((t) => t.processedMs), s3(first.processedMs)],
            ["(the job's own time, from the `Processed` line)", (median(steady.map((t) => t.jobSeconds))).toFixed(3), first.jobSeconds.toFixed(3)],
          ],
        ),
      );
    }
  } finally {
    readDb?.close();
    await producer?.disconnect().catch(() => undefined);
    for (const l of [...ListenerProcess.live]) await l.stop().catch(() => undefined);
    await kafka?.stop().catch(() => undefined);
    cleanUp();
    process.removeListener("SIGINT", onSignal);
    process.removeListener("SIGTERM", onSignal);
  }
}

if (process.argv[2] === "--bare-child") {
  // The child of drainBareFresh: one drain, its figures as JSON on stdout.
  const [, , , topic, expected, brokers] = process.argv;
  const drain = await drainBare(brokers!.split(","), topic!, Number(expected));
  process.stdout.write(`${JSON.stringify(drain)}\n`);
} else {
  await main();
}
