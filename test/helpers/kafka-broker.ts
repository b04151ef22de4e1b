/**
 * A Kafka broker for tests: mokapi (npm devDependency `go-mokapi`, a Kafka-protocol mock configured by an AsyncAPI 3
 * file), or the real cluster named by `KAFKA_BROKERS` (comma-separated host:port). Clients use kafkajs 2.2.4.
 *
 * What mokapi 0.52 does with kafkajs (measured by test/kafka-broker.test.ts and experiments; single broker,
 * in-memory, everything lost when the process ends):
 *  a. produce/consume: works (producer.send; consumer with groupId, subscribe fromBeginning, eachMessage). Keys,
 *     headers, several partitions (channel binding `partitions`), acks 1/-1 and gzip work. A message with an empty
 *     value ("") is read back as null.
 *  b. consumer-group offsets: work. autoCommit:false + consumer.commitOffsets([{topic, partition, offset: n+1}])
 *     after message 1 of 3, disconnect, new consumer with the same groupId → it gets messages 2 and 3 only (offsets
 *     1, 2). autoCommit:true also resumes after what was consumed. BUT admin.fetchOffsets() fails with
 *     UNKNOWN_MEMBER_ID (mokapi only answers OffsetFetch from group members) and admin.setOffsets()/deleteTopics()
 *     are unsupported API versions: check committed offsets by consuming with the same group instead.
 *  c. record timestamps: preserved exactly (producer `timestamp: "1700000000000"` → message.timestamp the same);
 *     without one, kafkajs stamps Date.now() (CreateTime).
 *  d. producing to a topic missing from the AsyncAPI file: KafkaJSNumberOfRetriesExceeded whose cause is
 *     KafkaJSProtocolError UNKNOWN_TOPIC_OR_PARTITION ("This server does not host this topic-partition"). With
 *     kafkajs default retries it takes ~9.5 s; with producer `retry: { retries: 0 }` (or client retries 0) it fails in
 *     ~1 ms. allowAutoTopicCreation:false alone changes nothing (mokapi never auto-creates). consumer.subscribe to an
 *     unknown topic fails at once with UNKNOWN_TOPIC_OR_PARTITION.
 *     Value validation: a channel message with `contentType: application/json` + `payload: {}` makes mokapi reject
 *     non-JSON, null and empty values with INVALID_RECORD (valid JSON of any shape passes). A real broker accepts
 *     anything, so by default the channels here also set the binding `confluent.value.schema.validation: false`
 *     (everything accepted); pass `{ validateJson: true }` to get mokapi's check.
 *  e. group join latency is set by mokapi, not by kafkajs: the first rebalance of a group waits the broker binding
 *     `group.initial.rebalance.delay.ms` (mokapi default 3000 ms → first message ~3.0 s after consumer.run with any
 *     kafkajs settings; 0 also means 3000). With 1 ms the first message arrives ~10 ms after run(). But a delay shorter
 *     than the members' heartbeat interval breaks groups with 2+ members: the old member never learns of the
 *     rebalance and both members consume every partition (duplicates, plus a kafkajs CRASH "Attempt to access memory
 *     outside buffer bounds"). Default here: 300 ms with FAST_CONSUMER (heartbeatInterval 100 ms) → a second member
 *     gets a correct split every time (5/5 runs), and a fresh group's first message comes ~0.3-0.6 s after run().
 *     Throughput: 5,000 JSON messages of ~190 bytes are produced in ~0.5 s (10 batches of 500) and drained by one
 *     kafkajs consumer in ~20-200 ms after the first message (>25k msg/s; maxWaitTimeInMs/maxBytes make no real
 *     difference).
 *  f. killing mokapi (SIGKILL) under a running consumer: with kafkajs default retries and mokapi back on the same
 *     port within ~2 s (also 8 s with retries: 1000) the consumer emits no CRASH, rejoins ~0.5-0.7 s after the restart
 *     and consumes new messages. With retries: 2 it emits CRASH (KafkaJSNumberOfRetriesExceeded / ECONNREFUSED,
 *     restart: true) every ~0.5 s and kafkajs restarts it by itself (restartOnFailure default) until the broker is
 *     back, then it rejoins and consumes. The restarted broker is empty: topics come back from the file, but records
 *     and committed offsets are gone (new records start at offset 0).
 *  g. rewriting the AsyncAPI file while mokapi runs works: the new topics are listed ~1 s later, existing records,
 *     groups and running consumers are unaffected. addTopics() does that (write + rename). Do NOT use
 *     admin.createTopics() on mokapi: it succeeds and producing works, but a consumer group on such a topic hangs
 *     (OffsetFetch is never answered; disconnect then waits for the 30 s request timeout).
 * Other: admin.fetchTopicOffsets/fetchTopicOffsetsByTimestamp/describeCluster work.
 * mokapi listens on all interfaces (the file's host gives the port and the advertised address 127.0.0.1). Its HTTP
 * API port stays open even with --api-dashboard=false: `--api-port=0` puts it on a random port; dashboard, search, health (default :8080) and
 * MCP (default :8080) are disabled by flags. An unknown flag makes mokapi exit with code 0.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createWriteStream, existsSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { createServer } from "node:net";
import { arch, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { Kafka, logLevel, type Admin, type KafkaMessage } from "kafkajs";

export interface TestKafka {
  brokers: string[];
  /** true when the brokers come from KAFKA_BROKERS (a real cluster: topics persist, use uniqueTopic) */
  external: boolean;
  /**
   * Add topics and wait until they are listed: mokapi reloads its rewritten AsyncAPI file (~1 s); a real cluster gets
   * admin.createTopics.
   */
  addTopics(topics: string[]): Promise<void>;
  /**
   * mokapi only (throws on a real cluster): kill the broker, keep it down for `downMs`, start it again on the same
   * port with all topics. The new broker is empty: records and committed offsets are lost.
   */
  restart(downMs?: number): Promise<void>;
  /**
   * mokapi only (throws on a real cluster): freeze the broker (SIGSTOP) for `ms`, then let it go on (SIGCONT). It
   * keeps its records and groups: to its clients this is a network partition.
   */
  pause(ms: number): Promise<void>;
  stop(): Promise<void>;
}

export interface StartKafkaOptions {
  /** partitions per topic (default 1) */
  partitions?: number;
  /**
   * mokapi: wait for more members before a group's first rebalance (default 300 ms). Every fresh consumer group waits
   * this long before its first message; it must exceed the members' heartbeatInterval if a group has 2+ members.
   */
  groupRebalanceDelayMs?: number;
  /** mokapi: reject values that are not JSON (default false, like a real broker) */
  validateJson?: boolean;
}

/**
 * Consumer settings that work well with mokapi (and a real cluster): heartbeats often enough to take part in a
 * rebalance within mokapi's group delay, short fetch waits.
 */
export const FAST_CONSUMER = {
  sessionTimeout: 10_000,
  rebalanceTimeout: 5_000,
  heartbeatInterval: 100,
  maxWaitTimeInMs: 100,
} as const;

const DEFAULT_GROUP_REBALANCE_DELAY_MS = 300;
const START_TIMEOUT_MS = 20_000;
const START_ATTEMPTS = 3;

/** A kafkajs client with quiet logging and short retries. */
export function kafkaClient(brokers: string[], clientId = "damnit-test"): Kafka {
  return new Kafka({ clientId, brokers, logLevel: logLevel.NOTHING, retry: { retries: 3, initialRetryTime: 100 } });
}

/** A topic (or group) name that does not collide with earlier runs (topics persist on a real cluster). */
export function uniqueTopic(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${randomBytes(4).toString("hex")}`;
}

/** Bind port 0 on 127.0.0.1 and release it. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** The mokapi executable from go-mokapi's platform package (a devDependency; the go-mokapi wrapper itself breaks npm ci). */
export function mokapiBinary(): string {
  const require = createRequire(import.meta.url);
  const pkg = `@go-mokapi/${process.platform}-${arch()}`;
  try {
    const dir = dirname(require.resolve(`${pkg}/package.json`));
    const bin = join(dir, "bin", process.platform === "win32" ? "mokapi.exe" : "mokapi");
    if (existsSync(bin)) return bin;
  } catch {
    // reported below
  }
  throw new Error(`mokapi binary not found: is the devDependency ${pkg} (go-mokapi's binary) installed?`);
}

/** An AsyncAPI 3 document (JSON, which is also YAML) with the Kafka server and one channel per topic. */
export function asyncApiDocument(port: number, topics: string[], opts: StartKafkaOptions = {}): string {
  const channels: Record<string, unknown> = {};
  topics.forEach((topic, i) => {
    channels[`topic${i}`] = {
      address: topic,
      bindings: {
        kafka: { partitions: opts.partitions ?? 1, "confluent.value.schema.validation": opts.validateJson ?? false },
      },
      messages: { json: { contentType: "application/json", payload: {} } },
    };
  });
  const doc = {
    asyncapi: "3.0.0",
    info: { title: "damnit test broker", version: "1.0.0" },
    servers: {
      broker: {
        host: `127.0.0.1:${port}`,
        protocol: "kafka",
        bindings: {
          kafka: { "group.initial.rebalance.delay.ms": Math.max(1, opts.groupRebalanceDelayMs ?? DEFAULT_GROUP_REBALANCE_DELAY_MS) },
        },
      },
    },
    channels,
  };
  return JSON.stringify(doc, null, 2) + "\n";
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function createTopics(admin: Admin, topics: string[], partitions: number): Promise<void> {
  const existing = new Set(await admin.listTopics());
  const missing = [...new Set(topics)].filter((t) => !existing.has(t));
  if (missing.length === 0) return;
  try {
    await admin.createTopics({ waitForLeaders: true, topics: missing.map((topic) => ({ topic, numPartitions: partitions })) });
  } catch (err) {
    // TOPIC_ALREADY_EXISTS (a concurrent creator) is fine
    const errors = (err as { errors?: { type?: string }[] }).errors;
    if (!errors?.length || !errors.every((e) => e.type === "TOPIC_ALREADY_EXISTS")) throw err;
  }
}

async function withAdmin<T>(brokers: string[], fn: (admin: Admin) => Promise<T>): Promise<T> {
  const admin = kafkaClient(brokers, "damnit-test-admin").admin();
  await admin.connect();
  try {
    return await fn(admin);
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

/** Poll until an admin lists every topic; `failFast()` returning a reason stops early. */
async function waitForTopics(brokers: string[], topics: string[], timeoutMs: number, failFast: () => string | undefined): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = "no attempt";
  while (Date.now() < deadline) {
    const reason = failFast();
    if (reason) throw new Error(reason);
    const probe = new Kafka({ clientId: "damnit-test-probe", brokers, logLevel: logLevel.NOTHING, retry: { retries: 0 }, connectionTimeout: 1000 });
    const admin = probe.admin();
    try {
      await admin.connect();
      const listed = new Set(await admin.listTopics());
      const missing = topics.filter((t) => !listed.has(t));
      if (missing.length === 0) return;
      last = `missing topics: ${missing.join(", ")}`;
    } catch (err) {
      last = String(err);
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
    await sleep(100);
  }
  throw new Error(`not ready after ${timeoutMs} ms (${last})`);
}

function tail(path: string, lines = 30): string {
  try {
    return readFileSync(path, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

interface MokapiProcess {
  child: ChildProcess;
  exited: Promise<void>;
  hasExited(): boolean;
}

/** Spawn mokapi serving `specFile` (its HTTP API on a random port), output appended to `logFile`. */
function spawnMokapi(dir: string, specFile: string, logFile: string): MokapiProcess {
  const log = createWriteStream(logFile, { flags: "a" });
  const child = spawn(
    mokapiBinary(),
    [
      `--providers-file-filename=${specFile}`,
      "--api-port=0",
      "--api-dashboard=false",
      "--api-search-enabled=false",
      "--health-enabled=false",
      "--mcp-server-enabled=false",
      "--log-level=warn",
    ],
    { cwd: dir, stdio: ["ignore", "pipe", "pipe"] },
  );
  child.stdout!.pipe(log, { end: false });
  child.stderr!.pipe(log, { end: false });
  let done = false;
  const exited = new Promise<void>((resolve) => {
    const finish = (note: string) => {
      if (done) return;
      done = true;
      log.end(`\n[${note}]\n`);
      resolve();
    };
    child.on("exit", (code, signal) => finish(`mokapi exited: code=${code} signal=${signal}`));
    child.on("error", (err) => finish(`mokapi spawn error: ${err.message}`));
  });
  return { child, exited, hasExited: () => done };
}

/** Kill mokapi and wait (bounded) for it to exit. */
async function killMokapi(proc: MokapiProcess, signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
  if (proc.hasExited()) return;
  proc.child.kill(signal);
  const timedOut = await Promise.race([proc.exited.then(() => false), sleep(5000).then(() => true)]);
  if (timedOut) {
    proc.child.kill("SIGKILL");
    await Promise.race([proc.exited, sleep(2000)]);
  }
}

/**
 * A broker with `topics`: the real cluster of KAFKA_BROKERS (missing topics created) or a fresh mokapi on a free
 * port, ready when an admin lists all topics.
 */
export async function startKafka(topics: string[], opts: StartKafkaOptions = {}): Promise<TestKafka> {
  const partitions = opts.partitions ?? 1;
  const external = process.env.KAFKA_BROKERS?.trim();
  if (external) {
    const brokers = external.split(",").map((s) => s.trim()).filter(Boolean);
    await withAdmin(brokers, (admin) => createTopics(admin, topics, partitions));
    return {
      brokers,
      external: true,
      addTopics: (more) => withAdmin(brokers, (admin) => createTopics(admin, more, partitions)),
      restart: async () => {
        throw new Error("restart() needs the mokapi broker (KAFKA_BROKERS is set)");
      },
      pause: async () => {
        throw new Error("pause() needs the mokapi broker (KAFKA_BROKERS is set)");
      },
      stop: async () => undefined,
    };
  }

  const dir = mkdtempSync(join(tmpdir(), "damnit-kafka-"));
  const specFile = join(dir, "asyncapi.yaml");
  const logFile = join(dir, "mokapi.log");
  const allTopics = [...new Set(topics)];
  let port = 0;
  let proc: MokapiProcess | undefined;
  const killOnExit = () => proc?.child.kill("SIGKILL");
  process.once("exit", killOnExit);

  // write-and-rename: mokapi watches the file and must never read it half-written
  const writeSpec = () => {
    writeFileSync(`${specFile}.tmp`, asyncApiDocument(port, allTopics, opts));
    renameSync(`${specFile}.tmp`, specFile);
  };
  const launch = async (): Promise<void> => {
    writeSpec();
    const p = spawnMokapi(dir, specFile, logFile);
    proc = p;
    await waitForTopics([`127.0.0.1:${port}`], allTopics, START_TIMEOUT_MS, () => (p.hasExited() ? "mokapi exited" : undefined));
  };

  let lastError: unknown;
  for (let attempt = 1; attempt <= START_ATTEMPTS; attempt++) {
    port = await freePort();
    try {
      await launch();
      lastError = undefined;
      break;
    } catch (err) {
      lastError = err;
      if (proc) await killMokapi(proc);
      // another process may have taken the port between freePort() and mokapi's bind: try another one
    }
  }
  if (lastError !== undefined) {
    const log = tail(logFile);
    process.removeListener("exit", killOnExit);
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`mokapi Kafka test broker failed to start: ${(lastError as Error).message}\nmokapi log (tail):\n${log}`);
  }

  const brokers = [`127.0.0.1:${port}`];
  return {
    brokers,
    external: false,
    async addTopics(more) {
      for (const t of more) if (!allTopics.includes(t)) allTopics.push(t);
      writeSpec();
      await waitForTopics(brokers, allTopics, START_TIMEOUT_MS, () => (proc?.hasExited() ? "mokapi exited" : undefined));
    },
    async restart(downMs = 0) {
      if (proc) await killMokapi(proc, "SIGKILL");
      await sleep(downMs);
      try {
        await launch();
      } catch (err) {
        throw new Error(`mokapi restart failed: ${(err as Error).message}\nmokapi log (tail):\n${tail(logFile)}`);
      }
    },
    async pause(ms) {
      const child = proc?.child;
      if (!child || proc?.hasExited()) throw new Error("mokapi is not running");
      child.kill("SIGSTOP");
      try {
        await sleep(ms);
      } finally {
        child.kill("SIGCONT");
      }
    },
    async stop() {
      if (proc) await killMokapi(proc);
      process.removeListener("exit", killOnExit);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface SeenMessage<T = any> {
  /** the value parsed as JSON (the raw string if it is not JSON, null for a null value) */
  value: T;
  partition: number;
  offset: string;
  /** record timestamp, ms since the epoch as a string (kafkajs) */
  timestamp: string;
  key: string | null;
}

/**
 * Read `topic` from the beginning with a fresh consumer group until `predicate` matches a message; resolve with all
 * messages seen so far (arrival order, the matching one last). Reject after `timeoutMs` with what was seen.
 */
export async function consumeUntil<T = any>(
  brokers: string[],
  topic: string,
  predicate: (value: any, message: SeenMessage<T>) => boolean,
  timeoutMs: number,
): Promise<SeenMessage<T>[]> {
  const consumer = kafkaClient(brokers, "damnit-test-consumer").consumer({ groupId: uniqueTopic("damnit-test"), ...FAST_CONSUMER });
  const seen: SeenMessage<T>[] = [];
  let timer: NodeJS.Timeout | undefined;
  try {
    return await new Promise<SeenMessage<T>[]>((resolve, reject) => {
      let done = false;
      const finish = (err: unknown, result?: SeenMessage<T>[]) => {
        if (done) return;
        done = true;
        if (err) reject(err);
        else resolve(result!);
      };
      timer = setTimeout(() => {
        const values = JSON.stringify(seen.map((m) => m.value)).slice(0, 2000);
        finish(new Error(`no matching message on ${topic} within ${timeoutMs} ms; saw ${seen.length}: ${values}`));
      }, timeoutMs);
      const run = async () => {
        await consumer.connect();
        await consumer.subscribe({ topic, fromBeginning: true });
        await consumer.run({
          eachMessage: async ({ partition, message }) => {
            if (done) return;
            const entry = toSeen<T>(partition, message);
            seen.push(entry);
            try {
              if (predicate(entry.value, entry)) finish(undefined, [...seen]);
            } catch (err) {
              finish(err);
            }
          },
        });
      };
      run().catch(finish);
    });
  } finally {
    clearTimeout(timer);
    await consumer.disconnect().catch(() => undefined);
  }
}

function toSeen<T>(partition: number, message: KafkaMessage): SeenMessage<T> {
  let value: unknown = null;
  if (message.value !== null) {
    const text = message.value.toString("utf8");
    try {
      value = JSON.parse(text);
    } catch {
      value = text;
    }
  }
  return { value: value as T, partition, offset: message.offset, timestamp: message.timestamp, key: message.key?.toString("utf8") ?? null };
}

/** Produce each value as one JSON message, optionally all with the record timestamp `timestamp` (ms, as a string). */
export async function produceJson(brokers: string[], topic: string, values: unknown[], opts: { timestamp?: string } = {}): Promise<void> {
  const producer = kafkaClient(brokers, "damnit-test-producer").producer({ allowAutoTopicCreation: false });
  await producer.connect();
  try {
    await producer.send({
      topic,
      messages: values.map((v) => ({ value: JSON.stringify(v), ...(opts.timestamp === undefined ? {} : { timestamp: opts.timestamp }) })),
    });
  } finally {
    await producer.disconnect();
  }
}
