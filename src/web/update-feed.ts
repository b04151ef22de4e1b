/**
 * The web server's feed of update messages from Kafka: when brokers are configured, one consumer per database
 * served on its update topic `test.damnit.db-<db_id>` (each its own group, so every server gets every message,
 * from the newest on). One consumer per topic, because a topic that does not exist (yet) must not keep the others
 * from being followed: it costs a warning and a retry later. The table itself never depends on Kafka.
 */
import { hostname } from "node:os";
import { randomBytes } from "node:crypto";
import type { Consumer } from "kafkajs";
import type { UpdateMessage } from "../messaging/messages.js";
import { log } from "../log.js";

export interface UpdateFeed {
  close(): Promise<void>;
}

const RETRY_MS = 15_000;

function follow(brokers: readonly string[], topic: string, handler: (m: UpdateMessage) => void): UpdateFeed {
  let consumer: Consumer | undefined;
  let closed = false;
  let retry: NodeJS.Timeout | undefined;
  const connect = async (): Promise<void> => {
    const { Kafka, logLevel } = await import("kafkajs");
    const kafka = new Kafka({ clientId: `damnit-web-${hostname()}-${process.pid}`, brokers: [...brokers], logLevel: logLevel.NOTHING, retry: { retries: 5, initialRetryTime: 200, maxRetryTime: 2000 } });
    const c = kafka.consumer({ groupId: `damnit-web-${hostname()}-${process.pid}-${randomBytes(4).toString("hex")}`, sessionTimeout: 10_000, rebalanceTimeout: 5_000, heartbeatInterval: 500, maxWaitTimeInMs: 200 });
    consumer = c;
    await c.connect();
    await c.subscribe({ topics: [topic], fromBeginning: false });
    await c.run({
      eachMessage: async ({ message }) => {
        if (!message.value) return;
        try {
          handler(JSON.parse(message.value.toString("utf8")) as UpdateMessage);
        } catch (err) {
          log().debug({ err, topic }, "update message that is not JSON: ignored");
        }
      },
    });
    log().info({ topic }, "web table: following the update topic for processing states");
  };
  const attempt = () => {
    if (closed) return;
    connect().catch(async (err: unknown) => {
      log().warn(`web table: cannot follow ${topic} on ${brokers.join(",")} (${(err as Error).message}); its processing states will be missing, retrying in ${RETRY_MS / 1000} s`);
      await consumer?.disconnect().catch(() => undefined);
      consumer = undefined;
      if (!closed) retry = setTimeout(attempt, RETRY_MS).unref();
    });
  };
  attempt();
  return {
    close: async () => {
      closed = true;
      if (retry) clearTimeout(retry);
      await consumer?.disconnect().catch(() => undefined);
    },
  };
}

export function startUpdateFeed(brokers: readonly string[], handlers: Map<string, (m: UpdateMessage) => void>): UpdateFeed {
  const feeds = [...handlers].map(([topic, handler]) => follow(brokers, topic, handler));
  return { close: async () => void (await Promise.all(feeds.map((f) => f.close()))) };
}
