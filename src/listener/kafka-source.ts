/**
 * The notification consumer (spec §1.1). Offsets are committed by hand, only after every message before them was
 * handled: its jobs submitted (or queued here, recorded in listener.sqlite), or the message rejected or quarantined.
 * A crash or kill therefore loses no notification; one that is delivered again finds its job still queued and starts
 * none.
 *
 * One message's failure is that message's, never the listener's: a handler that throws is retried with backoff, up
 * to `maxDeliveryAttempts`, and then the message is quarantined and consumption goes on. (A message that kills the
 * process is in the listener's inbox by then, whose replay counts its attempts.) Only faults of the listener itself (`LISTENER_FAULT`, e.g. its
 * store cannot be written) and of its configuration (a topic that does not exist, authentication) stop it.
 *
 * Group membership and broker events are recovered by starting a new consumer, with backoff, for as long as it
 * takes: kafkajs's own retries are kept short, so that an outage reaches this loop and is logged when it starts,
 * every minute while it lasts and when it ends. A watchdog restarts a consumer that has not joined its group (or
 * stopped fetching) within `joinTimeoutMs`. The state is reported to `onHealth` for `damnit listener status`.
 */
import { hostname } from "node:os";
import { Kafka, logLevel, type Consumer, type KafkaMessage } from "kafkajs";
import type { Logger } from "pino";
import { DamnitError, isDamnitError } from "../core/errors.js";

export interface SourceMessage {
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
  readonly key?: Buffer | null;
  readonly value: Buffer | null;
  /** the record's timestamp, seconds since the epoch (the time it was received when the broker gave none) */
  readonly timestamp: number;
  /**
   * The record's timestamp as the broker gave it, "-" when it gave none: part of the message's identity, so it is
   * the same on every delivery (a received-at fallback would make a redelivered message look new). Absent for a
   * message not read from a broker (a quarantined one retried): then `timestamp` is its identity.
   */
  readonly recordTime?: string;
}

/** Where messages the listener gave up on are kept (the listener store). */
export interface QuarantineLog {
  /** Keep `m` aside with why it failed; its offset is committed afterwards. */
  quarantine(m: SourceMessage, error: string, attempts: number): void;
}

export interface ConsumerHealth {
  /** connected to the brokers, as far as the consumer knows */
  readonly connected: boolean;
  /** a member of its group, with partitions assigned */
  readonly member: boolean;
  /** when a message was last taken from Kafka (s since the epoch), null before the first */
  readonly lastConsumedAt: number | null;
  /** when `connected`/`member` last changed (s since the epoch) */
  readonly since: number;
  /** consumers started after the first (rejoins) */
  readonly restarts: number;
  /** messages quarantined by this process */
  readonly quarantined: number;
  readonly lastError: string | null;
}

export interface KafkaSourceOptions {
  readonly brokers: readonly string[];
  readonly topics: readonly string[];
  readonly groupId: string;
  readonly logger: Logger;
  /**
   * Handles one message: true when it did something (its offset is then committed at once), false when it was not
   * for us, `{ reject }` when it is malformed (quarantined at once: trying again cannot help). A throw is retried.
   */
  readonly handle: (message: SourceMessage) => Promise<boolean | { readonly reject: string }>;
  readonly quarantine: QuarantineLog;
  /** attempts at one message before it is quarantined (default 5) */
  readonly maxDeliveryAttempts?: number;
  /** a consumer that has not joined its group, or stopped fetching, for this long is replaced (default 60 s) */
  readonly joinTimeoutMs?: number;
  /** first pause between handling attempts (doubles each time, at most 30 s; default 500 ms) */
  readonly retryDelayMs?: number;
  readonly onHealth?: (health: ConsumerHealth) => void;
}

/** DAMNIT's group id: `xfel-da-damnit-` + the listener directory as given, `/` → `_`. */
export function defaultGroupId(listenerDir: string): string {
  return `xfel-da-damnit-${listenerDir.replaceAll("/", "_")}`;
}

/** Broker answers that no restart can fix: the configuration is wrong. */
const CONFIGURATION_ERRORS = new Set([
  "UNKNOWN_TOPIC_OR_PARTITION",
  "TOPIC_AUTHORIZATION_FAILED",
  "GROUP_AUTHORIZATION_FAILED",
  "CLUSTER_AUTHORIZATION_FAILED",
  "SASL_AUTHENTICATION_FAILED",
  "ILLEGAL_SASL_STATE",
  "UNSUPPORTED_SASL_MECHANISM",
  "INVALID_TOPIC_EXCEPTION",
]);

function protocolType(err: unknown): string | undefined {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const type = (e as { type?: unknown }).type;
    if (typeof type === "string") return type;
    if (e.name === "KafkaJSSASLAuthenticationError") return "SASL_AUTHENTICATION_FAILED";
  }
  return undefined;
}

const OUTAGE_REPORT_MS = 60_000;
const MAX_RESTART_DELAY_MS = 30_000;

/** Why one consumer's life ended: stop(), or something a new consumer may get past. */
type ConsumerEnd = { readonly kind: "stopped" } | { readonly kind: "restart"; readonly reason: string };

export class KafkaSource {
  private consumer: Consumer | undefined;
  private stopping = false;
  private wakeStop: (() => void) | undefined;
  private readonly stopped = new Promise<void>((resolve) => (this.wakeStop = resolve));
  /** the message being handled, awaited by stop() so that it is finished (and recorded) before the listener closes */
  private inFlight: Promise<unknown> = Promise.resolve();
  private health: ConsumerHealth = { connected: false, member: false, lastConsumedAt: null, since: Date.now() / 1000, restarts: 0, quarantined: 0, lastError: null };
  /** when the current outage began (ms), undefined while a member of the group */
  private outageSince: number | undefined;
  private lastOutageReport = 0;

  constructor(private readonly opts: KafkaSourceOptions) {}

  /** when a message was last taken (s), kept apart from `health`: it changes with every message */
  private lastConsumedAt: number | null = null;

  get state(): ConsumerHealth {
    return { ...this.health, lastConsumedAt: this.lastConsumedAt };
  }

  /** Consume until stop(); rejects only on a fault of the listener or its configuration. */
  async run(): Promise<void> {
    const { logger } = this.opts;
    let delay = 1000;
    const outageTimer = setInterval(() => this.reportOutage(), 5000);
    try {
      for (let generation = 0; !this.stopping; generation++) {
        if (generation > 0) this.setHealth({ restarts: this.health.restarts + 1 });
        const started = Date.now();
        const end = await this.runConsumer();
        if (end.kind === "stopped" || this.stopping) return;
        this.markDown(end.reason);
        // A consumer that was a member for a while starts its successor at once; repeated failures back off.
        delay = Date.now() - started > 60_000 ? 1000 : Math.min(delay * 2, MAX_RESTART_DELAY_MS);
        logger.debug(`Kafka consumer ended (${end.reason}); a new one in ${delay / 1000} s`);
        await Promise.race([this.stopped, sleep(delay)]);
      }
    } finally {
      clearInterval(outageTimer);
    }
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.wakeStop?.();
    // The message being handled finishes first (its job submitted and recorded), within supervisord's stop wait.
    await Promise.race([this.inFlight, sleep(20_000)]);
    await this.disconnect();
  }

  private async disconnect(): Promise<void> {
    // Leaving the group can wait for a rebalance; a stopping listener does not (its session simply expires).
    const consumer = this.consumer;
    this.consumer = undefined;
    await Promise.race([consumer?.disconnect().catch(() => undefined), sleep(5000)]);
  }

  private setHealth(change: Partial<ConsumerHealth>): void {
    const next = { ...this.health, ...change };
    if (change.connected !== undefined && change.connected !== this.health.connected) next.since = Date.now() / 1000;
    if (change.member !== undefined && change.member !== this.health.member) next.since = Date.now() / 1000;
    this.health = next;
    this.opts.onHealth?.(this.state);
  }

  private markDown(reason: string): void {
    this.setHealth({ connected: false, member: false, lastError: reason });
    if (this.outageSince === undefined) {
      this.outageSince = Date.now();
      this.lastOutageReport = Date.now();
      this.opts.logger.warn(`Kafka unavailable (${reason}); reconnecting until it is back`);
    }
  }

  private markUp(): void {
    if (this.outageSince !== undefined) {
      const seconds = Math.round((Date.now() - this.outageSince) / 1000);
      this.opts.logger.info(`Kafka available again after ${seconds} s; rejoined group ${this.opts.groupId}`);
      this.outageSince = undefined;
    }
  }

  private reportOutage(): void {
    if (this.outageSince === undefined || Date.now() - this.lastOutageReport < OUTAGE_REPORT_MS) return;
    this.lastOutageReport = Date.now();
    const seconds = Math.round((Date.now() - this.outageSince) / 1000);
    this.opts.logger.warn(`Kafka still unavailable after ${seconds} s (${this.health.lastError ?? "no answer"}); still trying`);
  }

  /** One consumer, from connecting to its end. */
  private async runConsumer(): Promise<ConsumerEnd> {
    const { logger } = this.opts;
    const kafka = new Kafka({
      clientId: `xfel-da-damnit-${hostname()}-${process.pid}`,
      brokers: [...this.opts.brokers],
      logLevel: logLevel.NOTHING,
      connectionTimeout: 5000,
      // Short: an outage ends this consumer and is waited out (and logged) by run().
      retry: { initialRetryTime: 300, maxRetryTime: 5000, retries: 5 },
    });
    const consumer = kafka.consumer({
      groupId: this.opts.groupId,
      // Heartbeats also go out while a message is being handled (a slow sbatch), so 30 s is plenty.
      sessionTimeout: 30_000,
      rebalanceTimeout: 30_000,
      heartbeatInterval: 1000,
      maxWaitTimeInMs: 500,
      // Fetch sizes stay kafkajs's (1 MiB per partition): Kafka ≥ 0.10.1 returns a larger first record whole (KIP-74),
      // so an oversized poison message is fetched and quarantined like any other. (go-mokapi, the test broker, does
      // not, and stalls on records above ~64 KB; see test/listener-chaos.test.ts.)
      retry: { initialRetryTime: 300, maxRetryTime: 5000, retries: 5, restartOnFailure: async () => false },
    });
    this.consumer = consumer;
    let finish!: (end: ConsumerEnd) => void;
    let fail!: (err: Error) => void;
    const ended = new Promise<ConsumerEnd>((resolve, reject) => {
      finish = resolve;
      fail = reject;
    });
    void this.stopped.then(() => finish({ kind: "stopped" }));
    const joinTimeoutMs = this.opts.joinTimeoutMs ?? 60_000;
    let lastSign = Date.now();
    consumer.on(consumer.events.CRASH, (event) => {
      const { error } = event.payload as { error: Error };
      if (this.stopping) return;
      const type = protocolType(error);
      if (type && CONFIGURATION_ERRORS.has(type)) fail(new DamnitError("LISTENER_FAULT", `Kafka refused the listener: ${error.message} (${type})`, { cause: error }));
      else if (isDamnitError(error, "LISTENER_FAULT")) fail(error);
      else finish({ kind: "restart", reason: error.message });
    });
    consumer.on(consumer.events.GROUP_JOIN, (event) => {
      lastSign = Date.now();
      const assigned = Object.entries((event.payload as { memberAssignment: Record<string, number[]> }).memberAssignment)
        .map(([t, p]) => `${t}[${p.join(",")}]`)
        .join(" ");
      logger.info(`Listening to Kafka (${this.opts.brokers.join(",")}, group ${this.opts.groupId}): ${assigned}`);
      this.markUp();
      this.setHealth({ connected: true, member: true, lastError: null });
    });
    consumer.on(consumer.events.REBALANCING, () => this.setHealth({ member: false }));
    consumer.on(consumer.events.FETCH, () => (lastSign = Date.now()));
    consumer.on(consumer.events.HEARTBEAT, () => (lastSign = Date.now()));
    // The watchdog: a consumer that neither joined nor fetched for joinTimeoutMs is stuck (a broker's group handling
    // lost it, a long pause); a new one is started.
    const watchdog = setInterval(() => {
      if (Date.now() - lastSign > joinTimeoutMs) {
        const reason = this.health.member
          ? `no fetch or heartbeat for ${Math.round(joinTimeoutMs / 1000)} s`
          : `not a member of group ${this.opts.groupId} after ${Math.round(joinTimeoutMs / 1000)} s`;
        logger.warn(`Restarting the Kafka consumer: ${reason}`);
        finish({ kind: "restart", reason });
      }
    }, Math.min(5000, joinTimeoutMs / 2));
    try {
      try {
        await Promise.race([consumer.connect(), this.stopped]);
      } catch (err) {
        return { kind: "restart", reason: `cannot connect to ${this.opts.brokers.join(",")}: ${(err as Error).message}` };
      }
      if (this.stopping) return { kind: "stopped" };
      this.setHealth({ connected: true });
      try {
        // A group with no committed offset starts at the beginning: "latest" would be decided at some moment after
        // the group join and could skip the first notifications. The listener drops those older than its first start.
        await consumer.subscribe({ topics: [...this.opts.topics], fromBeginning: true });
      } catch (err) {
        const type = protocolType(err);
        // A topic that does not exist (or may not be read) is the configuration's fault, not the broker's.
        if (type === undefined || CONFIGURATION_ERRORS.has(type)) {
          throw new DamnitError(
            "LISTENER_FAULT",
            `cannot subscribe to Kafka topics ${this.opts.topics.join(", ")} on ${this.opts.brokers.join(",")}: ${(err as Error).message}`,
            { cause: err },
          );
        }
        return { kind: "restart", reason: (err as Error).message };
      }
      await consumer.run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        eachBatch: async ({ batch, resolveOffset, heartbeat, isRunning, isStale }) => {
          lastSign = Date.now();
          let lastHandled: string | undefined;
          let sinceCommit = Date.now();
          const commit = async () => {
            if (lastHandled === undefined) return;
            await consumer.commitOffsets([{ topic: batch.topic, partition: batch.partition, offset: (BigInt(lastHandled) + 1n).toString() }]);
            lastHandled = undefined;
            sinceCommit = Date.now();
          };
          // The session must not expire while one message takes long (a slow sbatch, a database's write lock).
          const beating = setInterval(() => void heartbeat().catch(() => undefined), 3000);
          try {
            for (const message of batch.messages) {
              // Once stopping, nothing new is started: the listener is about to close its store.
              if (this.stopping || !isRunning() || isStale()) break;
              this.lastConsumedAt = Date.now() / 1000;
              const m = toSourceMessage(batch.topic, batch.partition, message);
              const handling = this.deliver(m);
              this.inFlight = handling.catch(() => undefined);
              let acted: boolean;
              try {
                acted = await handling;
              } catch (err) {
                fail(err as Error);
                return;
              }
              resolveOffset(message.offset);
              lastHandled = message.offset;
              lastSign = Date.now();
              // Committed at once after a message that led to work, and at least every second otherwise.
              if (acted || Date.now() - sinceCommit > 1000) {
                await commit();
                await heartbeat();
              }
            }
            await commit();
          } finally {
            clearInterval(beating);
          }
        },
      });
      return await ended;
    } finally {
      clearInterval(watchdog);
      // A message still being handled by this consumer is finished before a new consumer can receive it again.
      await this.inFlight;
      await this.disconnect();
    }
  }

  /**
   * Handle one message with its retries; true when it did something (or was quarantined). Rejects only with a
   * LISTENER_FAULT (among them: the quarantine cannot be written, the listener's store is broken).
   */
  private async deliver(m: SourceMessage): Promise<boolean> {
    const { logger } = this.opts;
    const max = Math.max(1, this.opts.maxDeliveryAttempts ?? 5);
    const where = `${m.topic}[${m.partition}]@${m.offset}`;
    let delay = this.opts.retryDelayMs ?? 500;
    for (let attempt = 1; ; attempt++) {
      try {
        const result = await this.opts.handle(m);
        if (typeof result === "object") return this.putAside(m, result.reject, attempt, where, { logged: true });
        return result;
      } catch (err) {
        if (isDamnitError(err, "LISTENER_FAULT")) throw err;
        const message = errorText(err);
        // Stopping: not its fault; it is handled again after the restart.
        if (this.stopping && attempt < max) throw err;
        if (attempt >= max) return this.putAside(m, message, attempt, where);
        logger.warn(`Handling message ${where} failed (attempt ${attempt} of ${max}): ${message}; again in ${delay / 1000} s`);
        await Promise.race([sleep(delay), this.stopped]);
        delay = Math.min(delay * 2, 30_000);
      }
    }
  }

  /** `logged`: the handler has said why already (a malformed message). */
  private putAside(m: SourceMessage, error: string, attempts: number, where: string, opts: { logged?: boolean } = {}): true {
    try {
      this.opts.quarantine.quarantine(m, error, attempts);
    } catch (err) {
      throw new DamnitError("LISTENER_FAULT", `cannot record quarantined message ${where}: ${errorText(err)}`, { cause: err });
    }
    this.setHealth({ quarantined: this.health.quarantined + 1 });
    if (!opts.logged) this.opts.logger.error(`Quarantined message ${where} after ${attempts} attempt${attempts === 1 ? "" : "s"}: ${error}`);
    return true;
  }
}

/** An error as one bounded line (a stack overflow's message, not its stack). */
function errorText(err: unknown): string {
  const text = err instanceof Error ? `${err.name === "Error" ? "" : `${err.name}: `}${err.message}` : String(err);
  return text.length > 500 ? `${text.slice(0, 500)}…` : text;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

function toSourceMessage(topic: string, partition: number, m: KafkaMessage): SourceMessage {
  const ms = Number(m.timestamp);
  const stamped = Number.isFinite(ms) && ms > 0;
  return { topic, partition, offset: m.offset, key: m.key, value: m.value, timestamp: stamped ? ms / 1000 : Date.now() / 1000, recordTime: stamped ? String(ms / 1000) : "-" };
}
