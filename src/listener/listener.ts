/**
 * `damnit listen`: the long-running service (spec §1). Notifications come from Kafka when brokers are configured,
 * else from watching the registered proposals' run directories (the embedded default). Each ready run goes to
 * dispatchRun. Bad messages are logged and skipped; SIGTERM/SIGINT stop it cleanly (exit 0); an error it cannot
 * recover from rejects, so the process exits non-zero and its supervisor restarts it.
 */
import { isSqliteError } from "../core/sqlite-errors.js";
import { hostname } from "node:os";
import type { Logger } from "pino";
import { peekHasRun, peekSetting } from "../db/peek.js";
import { updateBrokers, parseBrokers } from "../messaging/brokers.js";
import { currentUser } from "../messaging/processing-reporter.js";
import { createPublisher, type Publisher } from "../messaging/publisher.js";
import { sbatchInstalled } from "../jobs/sbatch.js";
import { dispatchRun, type DispatchOptions, type ReadyRun } from "./dispatch.js";
import { KafkaSource, defaultGroupId, type SourceMessage } from "./kafka-source.js";
import { LocalQueue } from "./local-queue.js";
import { parseNotification, profileFromSettings, type KafkaProfile } from "./notification.js";
import { RunWatcher } from "./run-watcher.js";
import { ListenerStore } from "./store/index.js";

export interface ListenerOptions {
  /** the directory as given (names the consumer group, as DAMNIT's does) */
  readonly dir: string;
  readonly logger: Logger;
  /** stops the listener when aborted */
  readonly signal?: AbortSignal;
}

/** Brokers of the notifications: env DAMNIT_KAFKA_BROKERS, else the `kafka_brokers` setting; null: watch directories. */
export function notificationBrokers(store: ListenerStore, env: NodeJS.ProcessEnv = process.env): string[] | null {
  if (env.DAMNIT_KAFKA_BROKERS !== undefined) return parseBrokers(env.DAMNIT_KAFKA_BROKERS);
  return parseBrokers(store.settings.get("kafka_brokers"));
}

export async function runListener(opts: ListenerOptions): Promise<void> {
  const { logger } = opts;
  const store = ListenerStore.open(opts.dir);
  logger.info(`Running on ${hostname()} under user ${currentUser()}, PID ${process.pid}`);
  const brokers = notificationBrokers(store);
  // Update messages go to the same brokers unless DAMNIT_KAFKA_BROKERS/AMORE_BROKER say otherwise.
  const messageBrokers = updateBrokers(process.env, brokers?.join(",") ?? "");
  const publisher: Publisher = createPublisher(messageBrokers, logger);
  const concurrency = store.settings.get("local_concurrency");
  const dataRoot = store.settings.get("data_root") || undefined;
  const local = new LocalQueue(store, publisher, logger, concurrency, dataRoot);
  const slurm = await sbatchInstalled();
  logger.info(
    `Mode: ${store.settings.get("static_mode") ? "static (registered databases only)" : "dynamic (official databases join when they exist)"}; ` +
      `jobs: ${slurm ? "Slurm" : "here (no Slurm installed)"}${store.settings.get("allow_local_processing") ? ", here when Slurm submission fails" : ""}; ` +
      `update messages: ${messageBrokers ? messageBrokers.join(",") : "none"}`,
  );
  const dispatch: DispatchOptions = {
    store,
    local,
    publisher,
    logger,
    dataRoot,
    // Jobs publish where the listener does, and find runs where it does (unless their database says otherwise).
    jobEnv: { DAMNIT_KAFKA_BROKERS: messageBrokers ? messageBrokers.join(",") : "none", ...(dataRoot ? { EXTRA_DATA_DATA_ROOT: dataRoot } : {}) },
    localWithoutSlurm: !slurm,
  };

  // Local jobs that were queued or running when the listener last stopped.
  for (const row of store.requests.unfinishedLocal()) {
    logger.info(`Resuming p${row.proposal} r${row.run} (${row.data}) for ${row.dbDir}, queued before the last stop`);
    local.enqueue({ dbDir: row.dbDir, request: { proposal: row.proposal, run: row.run, data: row.data, processingId: row.processingId, updateVars: true, sandboxArgs: store.settings.get("sandbox_args") } });
  }

  // Notifications received but not handled when the listener last stopped.
  for (const entry of store.inbox.pending()) {
    logger.info(`Handling p${entry.proposal} r${entry.run} (${entry.kind}), received before the last stop (${entry.source})`);
    await handleWithRetry(() => handleReady(entry, dispatch), store, logger);
  }

  const stopped = new Promise<void>((resolve) => {
    if (opts.signal?.aborted) resolve();
    opts.signal?.addEventListener("abort", () => resolve(), { once: true });
  });
  try {
    if (brokers) await listenToKafka(opts, store, brokers, dispatch, stopped);
    else await watchDirectories(store, dispatch, dataRoot, stopped);
    logger.info("Stopping");
  } finally {
    local.close();
    await publisher.close();
    store.close();
  }
}

/**
 * A ready run is written to the inbox before anything is done for it and marked handled once its jobs are
 * submitted, so a listener killed in between handles it after restarting (then finding any job it did submit still
 * queued). Notifications for proposals with no database here are not recorded (static mode has nothing to do).
 */
export async function handleReady(ready: ReadyRun, dispatch: DispatchOptions): Promise<void> {
  const { store } = dispatch;
  if (!store.databases.mayConcern(ready.proposal)) {
    dispatch.logger.debug(`p${ready.proposal} r${ready.run}: no database registered for this proposal`);
    store.inbox.handled(ready.source); // an inbox entry of a proposal unregistered since
    return;
  }
  store.inbox.receive(ready);
  await dispatchRun(ready, dispatch);
  store.inbox.handled(ready.source);
}

/** When this listener first listened to Kafka (seconds): notifications from before are not its business. */
function listeningSince(store: ListenerStore): number {
  if (store.settings.isSet("kafka_since")) return store.settings.get("kafka_since");
  const now = Math.floor(Date.now() / 1000);
  store.settings.set("kafka_since", now);
  return now;
}

/**
 * What the listener does with one Kafka message (KafkaSource's `handle`): true when it led to work (or was work done
 * before), false when it was skipped. A message delivered again after it was handled starts nothing.
 */
export function kafkaMessageHandler(opts: { profile: KafkaProfile; since: number; dispatch: DispatchOptions }): (message: SourceMessage) => Promise<boolean> {
  const { profile, since, dispatch } = opts;
  const { store, logger } = dispatch;
  return async (message) => {
    // A new group reads its topics from the start; what was sent before this listener first listened is skipped.
    if (message.timestamp < since) return false;
    const parsed = parseNotification(message.topic, message.value, profile);
    const where = `${message.topic}[${message.partition}]@${message.offset}`;
    if (!parsed.ok) {
      if (parsed.ignorable) logger.debug(`${where}: ${parsed.reason}`);
      else logger.warn(`Skipping message ${where}: ${parsed.reason}`);
      return false;
    }
    const { proposal, run, kind } = parsed.notification;
    // The common case at a facility: another proposal's run. Skipped before anything else is built for it.
    if (!store.databases.mayConcern(proposal)) {
      if (logger.isLevelEnabled("debug")) logger.debug(`${where}: p${proposal} r${run}: no database registered for this proposal`);
      return false;
    }
    // With the record's time: offsets start again at 0 if a topic is ever recreated.
    const source = `kafka ${where} ${message.timestamp}`;
    // Delivered again (its offset was not committed before a stop): its jobs were submitted then.
    if (store.inbox.wasHandled(source)) {
      logger.info(`p${proposal} r${run} (${kind}) from ${where} was handled before; not again`);
      return true;
    }
    await handleWithRetry(() => handleReady({ proposal, run, kind, addedAt: message.timestamp, source }, dispatch), store, logger);
    return true;
  };
}

async function listenToKafka(opts: ListenerOptions, store: ListenerStore, brokers: string[], dispatch: DispatchOptions, stopped: Promise<void>): Promise<void> {
  const { logger } = opts;
  const profile = profileFromSettings(store.settings);
  const since = listeningSince(store);
  store.inbox.prune();
  const source = new KafkaSource({
    brokers,
    topics: [...new Set([profile.rawTopic, profile.procTopic])],
    groupId: store.settings.get("kafka_group_id") || defaultGroupId(opts.dir),
    logger,
    handle: kafkaMessageHandler({ profile, since, dispatch }),
  });
  logger.info(`Connecting to Kafka ${brokers.join(",")}: ${profile.rawTopic} (${profile.rawEvent} → raw), ${profile.procTopic} (${profile.procEvent} → proc)`);
  await Promise.race([source.run(), stopped]);
  await source.stop();
}

/**
 * Spec §1.5: a read-only listener.sqlite (e.g. a file system remounted) gets one pause-and-retry; any other error
 * handling one notification is logged and the next one taken.
 */
async function handleWithRetry(fn: () => Promise<void>, store: ListenerStore, logger: Logger): Promise<boolean> {
  try {
    await fn();
    return true;
  } catch (err) {
    if (isSqliteError(err, "SQLITE_READONLY")) {
      logger.warn(`SQLite database is read only (${store.path}). Pause, reopen, retry.`);
      await new Promise((r) => setTimeout(r, 2000));
      try {
        await fn();
        return true;
      } catch (again) {
        // Stop; the supervisor restarts the listener, which finds the notification in its inbox or Kafka again.
        throw new FatalListenerError(`${store.path} stays read-only: ${(again as Error).message}`);
      }
    }
    logger.error(`Unexpected error handling a notification: ${(err as Error).stack ?? String(err)}`);
    return false;
  }
}

/** An error that stops the listener (exit non-zero), rather than skipping one notification. */
class FatalListenerError extends Error {
  override readonly name = "FatalListenerError";
}

async function watchDirectories(store: ListenerStore, dispatch: DispatchOptions, dataRoot: string | undefined, stopped: Promise<void>): Promise<void> {
  const { logger } = dispatch;
  const intervalMs = store.settings.get("watch_interval_seconds") * 1000;
  const watcher = new RunWatcher(store.watcher, {
    settleSeconds: store.settings.get("watch_settle_seconds"),
    // A database's own data_root setting (where its jobs read runs) says where to look; else the listener's.
    proposals: () => {
      const seen = new Map<string, { proposal: number; dataRoot: string | undefined }>();
      for (const d of store.databases.list()) {
        const root = peekSetting(d.dbDir, "data_root") || dataRoot;
        seen.set(`${d.proposal} ${root ?? ""}`, { proposal: d.proposal, dataRoot: root });
      }
      return [...seen.values()];
    },
    // A read-only look: opening through RunDatabase may upgrade the file, which is a job's business.
    known: (proposal, run) => store.databases.list(proposal).every((d) => peekHasRun(d.dbDir, proposal, run)),
  });
  logger.info(`No Kafka brokers configured: watching the raw/ and proc/ directories of the registered proposals every ${intervalMs / 1000} s`);
  let done = false;
  void stopped.then(() => (done = true));
  while (!done) {
    let ready: ReturnType<RunWatcher["scan"]> = [];
    try {
      ready = watcher.scan();
    } catch (err) {
      logger.error(`Scanning run directories failed: ${(err as Error).message}`);
    }
    for (const n of ready) {
      if (done) break;
      const ready = { proposal: n.proposal, run: n.run, kind: n.kind, addedAt: Date.now() / 1000, source: `watch p${n.proposal} r${n.run} ${n.kind}` };
      if (await handleWithRetry(() => handleReady(ready, dispatch), store, logger)) watcher.seen(n);
    }
    await Promise.race([stopped, new Promise((r) => setTimeout(r, intervalMs))]);
  }
}
