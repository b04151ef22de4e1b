/**
 * Sends update messages. Messaging must never fail or stall processing: a broker that is down or a topic that does
 * not exist costs a warning (once per topic), and sending waits at most a few seconds. The Kafka client is loaded
 * on the first send, so a job without a broker never loads it.
 */
import { hostname } from "node:os";
import type { Producer } from "kafkajs";
import type { Logger } from "pino";
import type { UpdateMessage } from "./messages.js";

export interface Publisher {
  send(topic: string, messages: readonly UpdateMessage[]): Promise<void>;
  close(): Promise<void>;
}

/** The publisher for `brokers`; with null (broker `none`), one that sends nothing. */
export function createPublisher(brokers: readonly string[] | null, logger: Logger): Publisher {
  return brokers ? new KafkaPublisher(brokers, logger) : { send: async () => {}, close: async () => {} };
}

/** `publisher`, also handing every message to `also` (in-process readers: the listener's own web table). */
export function teePublisher(publisher: Publisher, also?: (topic: string, messages: readonly UpdateMessage[]) => void): Publisher {
  if (!also) return publisher;
  return {
    send: (topic, messages) => {
      also(topic, messages);
      return publisher.send(topic, messages);
    },
    close: () => publisher.close(),
  };
}

class KafkaPublisher implements Publisher {
  private producer: Producer | undefined;
  private connecting: Promise<Producer> | undefined;
  private readonly warned = new Set<string>();

  constructor(
    private readonly brokers: readonly string[],
    private readonly logger: Logger,
  ) {}

  private connect(): Promise<Producer> {
    this.connecting ??= (async () => {
      const { Kafka, logLevel } = await import("kafkajs");
      const kafka = new Kafka({
        clientId: `damnit-${hostname()}-${process.pid}`,
        brokers: [...this.brokers],
        logLevel: logLevel.NOTHING,
        connectionTimeout: 3000,
        requestTimeout: 5000,
        retry: { retries: 2, initialRetryTime: 200, maxRetryTime: 1000 },
      });
      const producer = kafka.producer({ allowAutoTopicCreation: true, retry: { retries: 2, initialRetryTime: 200, maxRetryTime: 1000 } });
      await producer.connect();
      this.producer = producer;
      return producer;
    })();
    return this.connecting;
  }

  async send(topic: string, messages: readonly UpdateMessage[]): Promise<void> {
    if (messages.length === 0) return;
    try {
      const producer = await this.connect();
      await producer.send({ topic, messages: messages.map((m) => ({ value: JSON.stringify(m) })) });
    } catch (err) {
      // A failed connection is retried on the next send.
      if (!this.producer) this.connecting = undefined;
      const key = `${topic}: ${(err as Error).message}`;
      if (!this.warned.has(key)) {
        this.warned.add(key);
        this.logger.warn(`Could not send ${messages.map((m) => m.msg_kind).join(", ")} to Kafka topic ${topic} (${this.brokers.join(",")}): ${(err as Error).message}`);
      }
    }
  }

  async close(): Promise<void> {
    const producer = this.producer;
    this.producer = undefined;
    this.connecting = undefined;
    await producer?.disconnect().catch(() => undefined);
  }
}
