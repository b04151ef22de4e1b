/**
 * The notification consumer (spec §1.1). Offsets are committed by hand, only after every message before them was
 * handled: its jobs submitted (or queued here, recorded in listener.sqlite), or the message rejected. A crash or
 * kill therefore loses no notification; one that is delivered again finds its job still queued and starts none.
 * Broker outages are retried with backoff for as long as they last, and the backlog is drained afterwards.
 */
import { hostname } from "node:os";
import { Kafka, logLevel, type Consumer, type KafkaMessage } from "kafkajs";
import type { Logger } from "pino";

export interface SourceMessage {
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
  readonly value: Buffer | null;
  /** the record's timestamp, seconds since the epoch */
  readonly timestamp: number;
}

export interface KafkaSourceOptions {
  readonly brokers: readonly string[];
  readonly topics: readonly string[];
  readonly groupId: string;
  readonly logger: Logger;
  /**
   * Handles one message; true when it did something (its offset is then committed at once). Must not throw for bad
   * input: a throw stops the listener, to be restarted.
   */
  readonly handle: (message: SourceMessage) => Promise<boolean>;
}

/** DAMNIT's group id: `xfel-da-damnit-` + the listener directory as given, `/` → `_`. */
export function defaultGroupId(listenerDir: string): string {
  return `xfel-da-damnit-${listenerDir.replaceAll("/", "_")}`;
}

export class KafkaSource {
  private consumer: Consumer | undefined;
  private stopping = false;
  private failure: ((err: Error) => void) | undefined;
  /** the message being handled, awaited by stop() so that it is finished (and recorded) before the listener closes */
  private inFlight: Promise<unknown> = Promise.resolve();

  constructor(private readonly opts: KafkaSourceOptions) {}

  /** Consume until stop(); rejects on an error the consumer cannot recover from. */
  async run(): Promise<void> {
    const { logger } = this.opts;
    const kafka = new Kafka({
      clientId: `xfel-da-damnit-${hostname()}-${process.pid}`,
      brokers: [...this.opts.brokers],
      logLevel: logLevel.NOTHING,
      connectionTimeout: 5000,
      // An outage is waited out: back off up to 30 s between attempts, for as long as it takes.
      retry: { initialRetryTime: 300, maxRetryTime: 30_000, retries: Number.MAX_SAFE_INTEGER },
    });
    const consumer = kafka.consumer({
      groupId: this.opts.groupId,
      // Heartbeats also go out while a message is being handled (a slow sbatch), so 30 s is plenty.
      sessionTimeout: 30_000,
      rebalanceTimeout: 30_000,
      heartbeatInterval: 1000,
      maxWaitTimeInMs: 500,
      retry: { initialRetryTime: 300, maxRetryTime: 30_000, retries: Number.MAX_SAFE_INTEGER },
    });
    this.consumer = consumer;
    const failed = new Promise<never>((_, reject) => (this.failure = reject));
    consumer.on(consumer.events.CRASH, (event) => {
      const { error, restart } = event.payload as { error: Error; restart: boolean };
      if (this.stopping) return;
      if (restart) logger.warn(`Kafka consumer error, reconnecting: ${error.message}`);
      else this.failure?.(new Error(`Kafka consumer stopped: ${error.message}`));
    });
    consumer.on(consumer.events.GROUP_JOIN, (event) => {
      const assigned = Object.entries((event.payload as { memberAssignment: Record<string, number[]> }).memberAssignment)
        .map(([t, p]) => `${t}[${p.join(",")}]`)
        .join(" ");
      logger.info(`Listening to Kafka (${this.opts.brokers.join(",")}, group ${this.opts.groupId}): ${assigned}`);
    });
    await consumer.connect();
    try {
      // A group with no committed offset starts at the beginning: "latest" would be decided at some moment after
      // the group join and could skip the first notifications. The listener drops those older than its first start.
      await consumer.subscribe({ topics: [...this.opts.topics], fromBeginning: true });
    } catch (err) {
      throw new Error(`cannot subscribe to Kafka topics ${this.opts.topics.join(", ")} on ${this.opts.brokers.join(",")}: ${(err as Error).message}`, { cause: err });
    }
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      eachBatch: async ({ batch, resolveOffset, heartbeat, isRunning, isStale }) => {
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
            let acted: boolean;
            const handling = this.opts.handle(toSourceMessage(batch.topic, batch.partition, message));
            this.inFlight = handling.catch(() => undefined);
            try {
              acted = await handling;
            } catch (err) {
              // Not retried by kafkajs: the listener stops (non-zero) and its supervisor restarts it.
              this.failure?.(err as Error);
              return;
            }
            resolveOffset(message.offset);
            lastHandled = message.offset;
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
    await failed;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    // The message being handled finishes first (its job submitted and recorded), within supervisord's stop wait.
    await Promise.race([this.inFlight, new Promise((r) => setTimeout(r, 20_000).unref())]);
    // Leaving the group can wait for a rebalance; a stopping listener does not (its session simply expires).
    const disconnect = this.consumer?.disconnect().catch(() => undefined);
    await Promise.race([disconnect, new Promise((r) => setTimeout(r, 5000).unref())]);
  }
}

function toSourceMessage(topic: string, partition: number, m: KafkaMessage): SourceMessage {
  const ms = Number(m.timestamp);
  return { topic, partition, offset: m.offset, value: m.value, timestamp: Number.isFinite(ms) && ms > 0 ? ms / 1000 : Date.now() / 1000 };
}
