/**
 * Chaos against the real broker protocol (go-mokapi's broker): poison messages of every kind mixed with valid
 * notifications, a handler that throws for one run, the broker frozen (a network partition, data kept) and killed
 * and restarted empty, the listener stopped with SIGSTOP beyond its session timeout, and all of it again under
 * supervisord. Every valid notification is handled exactly once, every poison one is quarantined, the listener never
 * exits. Each test prints its figures (sent / processed / quarantined / lost / duplicated / restarts).
 */
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KafkaSource, type ConsumerHealth } from "../src/listener/kafka-source.js";
import { parseNotification, PROFILES } from "../src/listener/notification.js";
import { ListenerStore } from "../src/listener/store/index.js";
import { damnit } from "./helpers/cli.js";
import { kafkaClient, produceJson, startKafka, uniqueTopic, type TestKafka } from "./helpers/kafka-broker.js";
import { ListenerProcess, listenerDir } from "./helpers/listener.js";
import { tempDir } from "./helpers/tmp.js";
import { sleep, until as waitUntil } from "./helpers/wait.js";

let kafka: TestKafka;
const haveSupervisord = spawnSync("supervisord", ["--version"], { timeout: 10_000 }).status === 0;

beforeAll(async () => {
  kafka = await startKafka([], { groupRebalanceDelayMs: 1500 });
}, 60_000);

afterAll(async () => {
  await kafka?.stop();
});

/** Wait (bounded) until `check` holds; the last value of `describe` in the error otherwise. */
const until = (check: () => boolean, timeoutMs: number, describe: () => string) => waitUntil(check, timeoutMs, describe, 100);

const notification = (run: number, proposal: number | string = 1234) => ({ event: "migration_complete", proposal, run });

/**
 * Every kind of poison, as raw values: none of them may stop the listener, each is quarantined once. A 5 MB one
 * only on a real cluster (KAFKA_BROKERS): go-mokapi stalls on records above ~64 KB (checked: 60 KB is delivered,
 * 120 KB never, and the partition is stuck behind it), so there its place is taken by the guard's unit test
 * (test/notification-guard.test.ts).
 */
function poison(tag: string): Buffer[] {
  const huge = kafka.external ? [Buffer.from(JSON.stringify({ event: "migration_complete", proposal: 1234, run: 1, tag, pad: "x".repeat(5 * 2 ** 20) }))] : [];
  return [
    Buffer.from(`{"event":"migration_complete","proposal":${"[".repeat(5000)}1${"]".repeat(5000)},"run":1,"tag":"${tag}"}`),
    ...huge,
    Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x00, 0x01, 0x22, 0x7d]),
    Buffer.from(`{"event":"migration_complete","proposal":1234,"run":"\u0000","tag":"${tag}"}`),
    Buffer.from(`{"event":"migration_complete","proposal":9007199254740993,"run":1,"tag":"${tag}"}`),
    Buffer.from(`{"event":"migration_complete","proposal":1234,"run":18446744073709551617,"tag":"${tag}"}`),
    Buffer.from(`not json at all ${tag}`),
    Buffer.from(JSON.stringify([notification(1)])),
  ];
}

async function produceRaw(topic: string, values: Buffer[]): Promise<void> {
  const producer = kafkaClient(kafka.brokers).producer();
  await producer.connect();
  try {
    for (const value of values) await producer.send({ topic, messages: [{ value }] });
  } finally {
    await producer.disconnect();
  }
}

/** Runs in `list` seen more than once, and runs of `sent` never seen. */
function tally(sent: readonly number[], seen: readonly number[]): { processed: number; lost: number[]; duplicated: number[] } {
  const counts = new Map<number, number>();
  for (const r of seen) counts.set(r, (counts.get(r) ?? 0) + 1);
  return {
    processed: [...counts.keys()].filter((r) => sent.includes(r)).length,
    lost: sent.filter((r) => !counts.has(r)),
    duplicated: [...counts].filter(([, n]) => n > 1).map(([r]) => r),
  };
}

function figures(name: string, f: { sent: number; poison: number; processed: number; quarantined: number; lost: number; duplicated: number; restarts: number }): void {
  console.log(
    `chaos ${name}: sent ${f.sent} valid + ${f.poison} poison; processed ${f.processed}; quarantined ${f.quarantined}; ` +
      `lost ${f.lost}; duplicated ${f.duplicated}; consumer restarts ${f.restarts}`,
  );
}

describe("the Kafka consumer under chaos (in process, real broker, real store)", () => {
  it("poison of every kind and a handler that throws for one run: valid ones once, poison quarantined, consumption goes on", async () => {
    const topic = uniqueTopic("chaos.unit");
    await kafka.addTopics([topic]);
    const store = ListenerStore.open(tempDir());
    const profile = { ...PROFILES.maxwell!, rawTopic: topic };
    const handled: number[] = [];
    let flaky = 0;
    const source = new KafkaSource({
      brokers: kafka.brokers,
      topics: [topic],
      groupId: uniqueTopic("chaos-unit-group"),
      logger: pino({ level: "silent" }),
      quarantine: store.quarantine,
      maxDeliveryAttempts: 3,
      retryDelayMs: 50,
      handle: async (m) => {
        const parsed = parseNotification(m.topic, m.value, profile);
        if (!parsed.ok) return parsed.ignorable ? false : { reject: parsed.reason };
        const { run } = parsed.notification;
        if (run === 13) throw new RangeError("Maximum call stack size exceeded (for run 13 only)");
        if (run === 7 && flaky++ === 0) throw new Error("a passing hiccup");
        handled.push(run);
        return true;
      },
    });
    const running = source.run();
    try {
      await until(() => source.state.member, 30_000, () => JSON.stringify(source.state));
      const valid = Array.from({ length: 20 }, (_, i) => i + 1);
      const bad = poison("unit");
      // Interleaved: each poison message sits between valid ones.
      for (const run of valid) {
        await produceJson(kafka.brokers, topic, [notification(run)]);
        if (run <= bad.length) await produceRaw(topic, [bad[run - 1]!]);
      }
      const expected = valid.filter((r) => r !== 13);
      await until(() => expected.every((r) => handled.includes(r)) && store.quarantine.count() === bad.length + 1, 60_000, () => `handled ${handled.join(",")}; quarantined ${store.quarantine.count()}`);
      const t = tally(expected, handled);
      const q = store.quarantine.list(100);
      figures("in-process", { sent: valid.length, poison: bad.length + 1, processed: t.processed, quarantined: q.length, lost: t.lost.length, duplicated: t.duplicated.length, restarts: source.state.restarts });
      expect(t.lost).toEqual([]);
      expect(t.duplicated).toEqual([]);
      expect(handled.filter((r) => r === 7)).toHaveLength(1); // succeeded on its second attempt
      const thrower = q.filter((m) => m.error.includes("run 13"));
      expect(thrower).toHaveLength(1);
      expect(thrower[0]!.attempts).toBe(3);
      expect(thrower[0]!.error).toBe("RangeError: Maximum call stack size exceeded (for run 13 only)");
      // The malformed ones were put aside at once, each with its reason.
      expect(q.filter((m) => m.attempts === 1)).toHaveLength(bad.length);
      expect(q.map((m) => m.error)).toEqual(
        expect.arrayContaining([
          `JSON nested deeper than 32 levels`,
          "not UTF-8 text",
          expect.stringMatching(/^not JSON/),
          expect.stringMatching(/'proposal' is 9007199254740992, not a whole number/),
          "not a JSON object",
        ]),
      );
      if (kafka.external) {
        const big = q.find((m) => m.valueBytes > 5 * 2 ** 20)!;
        expect(big.value!.length).toBe(64 * 1024); // only a prefix is kept
      }
      expect(source.state.quarantined).toBe(bad.length + 1);
    } finally {
      await source.stop();
      await running;
      store.close();
    }
  }, 120_000);
});

interface ChaosSetup {
  tmp: string;
  dir: string;
  topic: string;
  submissions: string;
  env: Record<string, string>;
}

/**
 * A listener directory for proposal 1234 whose jobs go to a fake sbatch that records each submission (and a squeue
 * that reports every job finished): what is measured is the listener, not the jobs.
 */
async function chaosSetup(): Promise<ChaosSetup> {
  const tmp = tempDir();
  const db = join(tmp, "db");
  expect(damnit(["proposal", "1234", db]).status).toBe(0);
  const bin = join(tmp, "bin");
  mkdirSync(bin);
  symlinkSync(process.execPath, join(bin, "node"));
  const submissions = join(tmp, "submissions.log");
  const counter = join(tmp, "job-counter");
  writeFileSync(
    join(bin, "sbatch"),
    `#!/bin/sh\nif [ "$1" = "--version" ]; then echo "slurm 22.05.8"; exit 0; fi\n` +
      `n=$(( $(/bin/cat ${counter} 2>/dev/null || echo 1000) + 1 )); echo $n > ${counter}\necho "$*" >> ${submissions}\necho $n\n`,
  );
  writeFileSync(join(bin, "squeue"), "#!/bin/sh\nexit 0\n");
  chmodSync(join(bin, "sbatch"), 0o755);
  chmodSync(join(bin, "squeue"), 0o755);
  const topic = uniqueTopic("test.r2d2");
  const procTopic = uniqueTopic("cal.offline-corrections");
  await kafka.addTopics([topic, procTopic]);
  const dir = listenerDir(tmp, 1234, db, {
    kafka_raw_topic: topic,
    kafka_proc_topic: procTopic,
    max_delivery_attempts: "3",
    kafka_join_timeout_seconds: "20",
  });
  return { tmp, dir, topic, submissions, env: { DAMNIT_KAFKA_BROKERS: kafka.brokers.join(","), PATH: `${bin}:/usr/bin:/bin` } };
}

/** The runs submitted so far, one entry per submission. */
function submittedRuns(s: ChaosSetup): number[] {
  if (!existsSync(s.submissions)) return [];
  return readFileSync(s.submissions, "utf8")
    .split("\n")
    .map((line) => /\bextract 1234 (\d+) raw\b/.exec(line)?.[1])
    .filter((r): r is string => r !== undefined)
    .map(Number);
}

function quarantined(dir: string): number {
  const store = ListenerStore.open(dir, { create: false });
  try {
    return store.quarantine.count();
  } finally {
    store.close();
  }
}

function consumerHealth(dir: string): ConsumerHealth | undefined {
  const store = ListenerStore.open(dir, { create: false });
  try {
    return store.health.get<ConsumerHealth>("kafka")?.value;
  } finally {
    store.close();
  }
}

/** Publish `runs` with a poison message after every other one; the runs sent and the number of poison messages. */
async function stream(s: ChaosSetup, runs: readonly number[], tag: string): Promise<number> {
  const bad = poison(tag);
  let n = 0;
  for (const [i, run] of runs.entries()) {
    await produceJson(kafka.brokers, s.topic, [notification(run)]);
    if (i % 2 === 1 && n < bad.length) await produceRaw(s.topic, [bad[n++]!]);
  }
  return n;
}

describe("damnit listen under chaos", () => {
  it("poison, a frozen broker, an empty broker restart and a SIGSTOP beyond the session timeout: each notification once", async () => {
    const s = await chaosSetup();
    const listener = new ListenerProcess(s.dir, s.env);
    const sent: number[] = [];
    let poisonSent = 0;
    const phase = async (runs: number[], tag: string, timeoutMs = 90_000) => {
      sent.push(...runs);
      poisonSent += await stream(s, runs, tag);
      await until(
        () => runs.every((r) => submittedRuns(s).includes(r)) && quarantined(s.dir) === poisonSent,
        timeoutMs,
        () => `submitted ${submittedRuns(s).join(",")}; quarantined ${quarantined(s.dir)} of ${poisonSent}\n${listener.tail(20)}`,
      );
    };
    try {
      await listener.waitFor(/Listening to Kafka/, 30_000);
      await phase([1, 2, 3, 4, 5, 6, 7, 8], "start");

      // A network partition: the broker frozen, with its data, for longer than the session timeout.
      const frozen = listener.lines.length;
      await kafka.pause(40_000);
      await listener.waitFor(/Kafka unavailable|Restarting the Kafka consumer/, 30_000, frozen);
      await phase([9, 10, 11, 12], "after-pause");

      // The broker killed and started again, empty: offsets and records gone.
      const killed = listener.lines.length;
      await kafka.restart(5000);
      await listener.waitFor(/Kafka unavailable/, 60_000, killed);
      await listener.waitFor(/Listening to Kafka/, 90_000, killed);
      await phase([13, 14, 15, 16], "after-restart");

      // The listener itself frozen for longer than its session timeout (30 s).
      process.kill(listener.child.pid!, "SIGSTOP");
      await sleep(35_000);
      process.kill(listener.child.pid!, "SIGCONT");
      await phase([17, 18, 19, 20], "after-sigstop");

      const t = tally(sent, submittedRuns(s));
      const health = consumerHealth(s.dir);
      figures("damnit listen", {
        sent: sent.length,
        poison: poisonSent,
        processed: t.processed,
        quarantined: quarantined(s.dir),
        lost: t.lost.length,
        duplicated: t.duplicated.length,
        restarts: health?.restarts ?? -1,
      });
      expect(t.lost).toEqual([]);
      expect(t.duplicated).toEqual([]);
      expect(submittedRuns(s)).toHaveLength(sent.length);
      expect(quarantined(s.dir)).toBe(poisonSent);
      expect(health?.restarts).toBeGreaterThanOrEqual(1);
      expect(listener.output).toMatch(/Kafka available again after \d+ s/);
      expect(listener.output).not.toMatch(/Stopping/);
    } finally {
      const stopped = await listener.stop();
      expect(stopped.code, listener.tail(40)).toBe(0);
    }
  }, 420_000);

  it.skipIf(!haveSupervisord && !process.env.REQUIRE_SUPERVISOR)(
    "under supervisord: no FATAL, status RUNNING throughout, the quarantine listed",
    async () => {
      const s = await chaosSetup();
      const started = damnit(["listen", "--daemonize", s.dir], { env: s.env });
      expect(started.status, started.stderr).toBe(0);
      const statuses: number[] = [];
      const poll = setInterval(() => statuses.push(damnit(["listener", "status", "-C", s.dir]).status ?? -1), 2000);
      try {
        const log = join(s.dir, "damnit.log");
        await until(() => existsSync(log) && /Listening to Kafka/.test(readFileSync(log, "utf8")), 60_000, () => (existsSync(log) ? readFileSync(log, "utf8") : "no log"));
        let poisonSent = await stream(s, [1, 2, 3, 4, 5, 6], "supervised");
        await until(() => [1, 2, 3, 4, 5, 6].every((r) => submittedRuns(s).includes(r)) && quarantined(s.dir) === poisonSent, 90_000, () => readFileSync(log, "utf8").slice(-3000));
        await kafka.restart(5000);
        await until(() => (readFileSync(log, "utf8").match(/Listening to Kafka/g) ?? []).length >= 2, 90_000, () => readFileSync(log, "utf8").slice(-3000));
        const before = quarantined(s.dir);
        const more = await stream(s, [7, 8, 9, 10], "supervised-after-restart");
        poisonSent += more;
        await until(() => submittedRuns(s).length >= 10 && quarantined(s.dir) === before + more, 90_000, () => readFileSync(log, "utf8").slice(-3000));

        const status = damnit(["listener", "status", "-C", s.dir]);
        expect(status.status).toBe(0);
        expect(status.stdout).toMatch(/RUNNING/);
        expect(status.stdout).toMatch(/^Kafka: member of its group since/m);
        expect(status.stdout).toMatch(new RegExp(`^Quarantined messages: ${poisonSent} \\(damnit listener quarantine\\)$`, "m"));
        const list = damnit(["listener", "quarantine", "-C", s.dir]);
        expect(list.status).toBe(0);
        expect(list.stdout.match(/^#\d+ /gm)).toHaveLength(poisonSent);
        expect(list.stdout).toMatch(/error: JSON nested deeper than 32 levels/);
        // Handed back to the running listener: malformed messages are refused again and stay; dropped ones go.
        const retry = damnit(["listener", "quarantine", "retry", "--all", "-C", s.dir]);
        expect(retry.stdout).toBe(`Asked the listener to handle ${poisonSent} messages again (it does within a few seconds while it runs)\n`);
        await until(() => (readFileSync(log, "utf8").match(/Retried quarantined message .*: still refused/g) ?? []).length === poisonSent, 30_000, () => readFileSync(log, "utf8").slice(-2000));
        expect(damnit(["listener", "quarantine", "-C", s.dir]).stdout).not.toMatch(/retry requested/);
        const first = /^#(\d+) /m.exec(list.stdout)![1]!;
        expect(damnit(["listener", "quarantine", "drop", first, "-C", s.dir]).stdout).toBe("Dropped 1 message\n");
        const dropped = 1;
        expect(quarantined(s.dir)).toBe(poisonSent - dropped);

        const t = tally([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], submittedRuns(s));
        figures("supervised", {
          sent: 10,
          poison: poisonSent,
          processed: t.processed,
          quarantined: quarantined(s.dir) + dropped, // the test dropped one after checking it
          lost: t.lost.length,
          duplicated: t.duplicated.length,
          restarts: consumerHealth(s.dir)?.restarts ?? -1,
        });
        expect(t.lost).toEqual([]);
        expect(t.duplicated).toEqual([]);
        expect(statuses.length).toBeGreaterThanOrEqual(3);
        expect(statuses.every((code) => code === 0)).toBe(true);
        expect(readFileSync(join(s.dir, "damnit.log"), "utf8")).not.toMatch(/Stopping/);
      } finally {
        clearInterval(poll);
        damnit(["listener", "shutdown", "-C", s.dir]);
      }
    },
    420_000,
  );
});
