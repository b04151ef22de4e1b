/**
 * `damnit listen`: the long-running service (spec §1). Notifications come from Kafka when brokers are configured,
 * else from watching the registered proposals' run directories (the embedded default). Each ready run goes to
 * dispatchRun. Bad messages are logged and skipped; SIGTERM/SIGINT stop it cleanly (exit 0); an error it cannot
 * recover from rejects, so the process exits non-zero and its supervisor restarts it.
 */
import { ListenerTrail } from "../audit/listener-trail.js";
import { DamnitError, isDamnitError } from "../core/errors.js";
import { isSqliteError } from "../core/sqlite-errors.js";
import { hostname } from "node:os";
import type { Logger } from "pino";
import { peekHasRun, peekSetting } from "../db/peek.js";
import { updateBrokers, parseBrokers } from "../messaging/brokers.js";
import { currentUser } from "../messaging/processing-reporter.js";
import { createPublisher, teePublisher, type Publisher } from "../messaging/publisher.js";
import type { UpdateMessage } from "../messaging/messages.js";
import { sbatchInstalled } from "../jobs/sbatch.js";
import { startControlApi, type ControlApi } from "./control-api/server.js";
import { ListenerStats } from "./control-api/stats.js";
import { ListenerControl } from "./control.js";
import { dispatchRun, type DispatchOptions, type DispatchOutcome, type ReadyRun } from "./dispatch.js";
import { KafkaSource, defaultGroupId, type ConsumerHealth, type SourceMessage } from "./kafka-source.js";
import { LocalQueue } from "./local-queue.js";
import { parseNotification, profileFromSettings, type KafkaProfile } from "./notification.js";
import { RunWatcher } from "./run-watcher.js";
import { ListenerStore, type InboxEntry } from "./store/index.js";

export interface ListenerOptions {
  /** the directory as given (names the consumer group, as DAMNIT's does) */
  readonly dir: string;
  readonly logger: Logger;
  /** stops the listener when aborted */
  readonly signal?: AbortSignal;
  /** `--audit-only`: audit notifications' requests, submit nothing (as the `audit_only` setting) */
  readonly auditOnly?: boolean;
  /** also hand every update message the listener sends to this (e.g. the web table it serves, `listen --web`) */
  readonly onUpdateMessages?: (topic: string, messages: readonly UpdateMessage[]) => void;
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
  const publisher: Publisher = teePublisher(createPublisher(messageBrokers, logger), opts.onUpdateMessages);
  const concurrency = store.settings.get("local_concurrency");
  const dataRoot = store.settings.get("data_root") || undefined;
  const local = new LocalQueue(store, publisher, logger, concurrency, dataRoot);
  const slurm = await sbatchInstalled();
  const audit = store.settings.get("audit");
  const trail = new ListenerTrail(store.dir, audit, logger);
  if (opts.auditOnly || store.settings.get("audit_only")) {
    logger.warn(`Audit-only mode${opts.auditOnly ? " (--audit-only)" : " (setting audit_only)"}: notifications are recorded in each database's audit/requests.log, nothing is submitted`);
  }
  const control = new ListenerControl();
  control.auditOnly = opts.auditOnly ?? false;
  const stats = new ListenerStats(control.startedAt, () => store.inbox.pending().length + local.waitingCount);
  local.onJobDone = (seconds, ok) => stats.jobDone(seconds, ok);
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
    trail,
    audit,
    auditOnly: opts.auditOnly ?? false,
    control,
    stats,
  };

  // Local jobs that were queued or running when the listener last stopped.
  for (const row of store.requests.unfinishedLocal()) {
    logger.info(`Resuming p${row.proposal} r${row.run} (${row.data}) for ${row.dbDir}, queued before the last stop`);
    local.enqueue({ dbDir: row.dbDir, request: { proposal: row.proposal, run: row.run, data: row.data, processingId: row.processingId, updateVars: true, sandboxArgs: store.settings.get("sandbox_args") } });
  }

  // Notifications received but not handled when the listener last stopped.
  // Each replay is counted first: an entry whose handling kills the listener is put aside after
  // max_delivery_attempts starts instead of stopping it for ever.
  const maxAttempts = store.settings.get("max_delivery_attempts");
  for (const entry of store.inbox.pending()) {
    const attempt = store.inbox.replayAttempt(entry.source);
    if (attempt > maxAttempts) {
      quarantineInboxEntry(store, entry, `the listener stopped ${attempt - 1} times while handling it`, attempt - 1);
      logger.error(`Quarantined p${entry.proposal} r${entry.run} (${entry.kind}) from the inbox (${entry.source}): the listener stopped ${attempt - 1} times while handling it`);
      continue;
    }
    logger.info(`Handling p${entry.proposal} r${entry.run} (${entry.kind}), received before the last stop (${entry.source})`);
    await handleWithRetry(() => handleReady(entry, dispatch), store, logger);
  }

  const stopped = new Promise<void>((resolve) => {
    if (opts.signal?.aborted) resolve();
    opts.signal?.addEventListener("abort", () => resolve(), { once: true });
  });
  let api: ControlApi | undefined;
  try {
    api = await startControlApi({
      dir: opts.dir,
      port: store.settings.get("api_port"),
      store,
      stats,
      control,
      logger,
      dataRoot,
      submit: (ready) => handleReady(ready, dispatch),
      drainInbox: () => drainInbox(dispatch),
    });
    if (brokers) await listenToKafka(opts, store, brokers, dispatch, stopped);
    else await watchDirectories(store, dispatch, dataRoot, stopped);
    logger.info("Stopping");
  } finally {
    await api?.close().catch((err: Error) => logger.warn(`Closing the control API: ${err.message}`));
    local.close();
    trail.close();
    await publisher.close();
    store.close();
  }
}

/**
 * A ready run is written to the inbox before anything is done for it and marked handled once its jobs are
 * submitted, so a listener killed in between handles it after restarting (then finding any job it did submit still
 * queued). Notifications for proposals with no database here are not recorded (static mode has nothing to do).
 */
export async function handleReady(ready: ReadyRun, dispatch: DispatchOptions): Promise<DispatchOutcome[]> {
  const { store, control } = dispatch;
  if (!store.databases.mayConcern(ready.proposal)) {
    dispatch.logger.debug(`p${ready.proposal} r${ready.run}: no database registered for this proposal`);
    dispatch.trail?.skipped({ reason: "no database registered for this proposal", source: ready.source, proposal: ready.proposal, run: ready.run, kind: ready.kind });
    store.inbox.handled(ready.source); // an inbox entry of a proposal unregistered since
    return [];
  }
  store.inbox.receive(ready);
  // Paused: kept in the inbox, handled on resume (or by the next listener).
  if (control?.paused) {
    dispatch.logger.info(`Paused: p${ready.proposal} r${ready.run} (${ready.kind}) from ${ready.source} kept in the inbox until resumed`);
    dispatch.stats?.notificationSkipped("paused");
    return [];
  }
  control?.inFlight.add(ready.source);
  try {
    const outcomes = await dispatchRun(ready, dispatch);
    store.inbox.handled(ready.source);
    return outcomes;
  } finally {
    control?.inFlight.delete(ready.source);
  }
}

/**
 * After a resume: the notifications the inbox kept while paused (not those being handled now) are handled, oldest
 * first, in the background (one drain at a time); returns how many there are.
 */
export function drainInbox(dispatch: DispatchOptions): number {
  const { control, store, logger } = dispatch;
  const entries = store.inbox.pending().filter((e) => !control?.inFlight.has(e.source));
  const next = (control?.draining ?? Promise.resolve()).then(async () => {
    for (const entry of entries) {
      if (control?.paused) break;
      if (control?.inFlight.has(entry.source) || store.inbox.wasHandled(entry.source)) continue;
      logger.info(`Handling p${entry.proposal} r${entry.run} (${entry.kind}), kept in the inbox while paused (${entry.source})`);
      await handleWithRetry(() => handleReady(entry, dispatch), store, logger);
    }
  });
  const settled = next.catch((err: Error) => logger.error(`Handling the notifications kept while paused failed: ${err.message}`));
  if (control) control.draining = settled;
  return entries.length;
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
export function kafkaMessageHandler(opts: {
  profile: KafkaProfile;
  since: number;
  dispatch: DispatchOptions;
}): (message: SourceMessage) => Promise<boolean | { reject: string }> {
  const { profile, since, dispatch } = opts;
  const { store, logger } = dispatch;
  return async (message) => {
    const stats = dispatch.stats;
    stats?.notificationReceived();
    // A new group reads its topics from the start; what was sent before this listener first listened is skipped
    // (and not audited: on a first start that is the topic's whole history, none of it this listener's business).
    if (message.timestamp < since) {
      stats?.notificationSkipped("before_start");
      return false;
    }
    const parsed = parseNotification(message.topic, message.value, profile);
    const where = `${message.topic}[${message.partition}]@${message.offset}`;
    if (!parsed.ok) {
      if (parsed.ignorable) {
        logger.debug(`${where}: ${parsed.reason}`);
        stats?.notificationSkipped("ignorable");
        return false;
      }
      // Kept aside with its reason (see 'damnit listener quarantine'), and consumption goes on.
      logger.warn(`Skipping message ${where}: ${parsed.reason}`);
      dispatch.trail?.skipped({ reason: `malformed (quarantined): ${parsed.reason}`, source: sourceOf(where, message) });
      stats?.notificationMalformed();
      return { reject: parsed.reason };
    }
    const { proposal, run, kind } = parsed.notification;
    // The common case at a facility: another proposal's run. Skipped before anything else is built for it.
    // With the record's time: offsets start again at 0 if a topic is ever recreated.
    const source = sourceOf(where, message);
    if (!store.databases.mayConcern(proposal)) {
      if (logger.isLevelEnabled("debug")) logger.debug(`${where}: p${proposal} r${run}: no database registered for this proposal`);
      const kafka = { topic: message.topic, partition: message.partition, offset: message.offset };
      dispatch.trail?.skipped({ reason: "no database registered for this proposal", source, proposal, run, kind, kafka });
      stats?.notificationSkipped("other_proposal");
      return false;
    }
    // Delivered again (its offset was not committed before a stop): its jobs were submitted then.
    if (store.inbox.wasHandled(source)) {
      logger.info(`p${proposal} r${run} (${kind}) from ${where} was handled before; not again`);
      dispatch.trail?.skipped({ reason: "handled before (delivered again)", source, proposal, run, kind });
      stats?.notificationSkipped("delivered_again");
      return true;
    }
    // A failure here is this message's: KafkaSource tries again, then quarantines it.
    await withReadOnlyRetry(() => handleReady({ proposal, run, kind, addedAt: message.timestamp, source }, dispatch), store, logger);
    return true;
  };
}

/** A Kafka message's identity in the inbox and the trails: where it is, and the broker's timestamp (stable across deliveries). */
function sourceOf(where: string, message: SourceMessage): string {
  return `kafka ${where} ${message.recordTime ?? message.timestamp}`;
}

async function listenToKafka(opts: ListenerOptions, store: ListenerStore, brokers: string[], dispatch: DispatchOptions, stopped: Promise<void>): Promise<void> {
  const { logger } = opts;
  const profile = profileFromSettings(store.settings);
  const since = listeningSince(store);
  store.inbox.prune();
  const handle = kafkaMessageHandler({ profile, since, dispatch });
  const health = new HealthReporter(store, "kafka");
  const source = new KafkaSource({
    brokers,
    topics: [...new Set([profile.rawTopic, profile.procTopic])],
    groupId: store.settings.get("kafka_group_id") || defaultGroupId(opts.dir),
    logger,
    handle,
    quarantine: store.quarantine,
    maxDeliveryAttempts: store.settings.get("max_delivery_attempts"),
    joinTimeoutMs: store.settings.get("kafka_join_timeout_seconds") * 1000,
    onHealth: (state) => health.report(state),
  });
  logger.info(`Connecting to Kafka ${brokers.join(",")}: ${profile.rawTopic} (${profile.rawEvent} → raw), ${profile.procTopic} (${profile.procEvent} → proc)`);
  // One round at a time: a round that takes longer than the poll interval is not overtaken by the next.
  let retrying = false;
  const retries = setInterval(() => {
    if (retrying) return;
    retrying = true;
    void retryQuarantined(store, handle, dispatch, logger).finally(() => (retrying = false));
  }, QUARANTINE_POLL_MS);
  const heartbeat = setInterval(() => health.report(source.state, { force: true }), HEALTH_REFRESH_MS);
  try {
    await Promise.race([source.run(), stopped]);
  } finally {
    clearInterval(retries);
    clearInterval(heartbeat);
    await source.stop();
    health.report({ ...source.state, connected: false, member: false }, { force: true });
  }
}

/** What the directory watcher reports for `damnit listener status`. */
export interface WatcherHealth {
  readonly lastScanAt: number;
  readonly intervalSeconds: number;
  readonly lastError: string | null;
}

/** Inbox entries put aside are kept in the quarantine under this topic, their entry as the value. */
const INBOX_TOPIC = "(inbox)";

function quarantineInboxEntry(store: ListenerStore, entry: InboxEntry, error: string, attempts: number): void {
  const value = Buffer.from(JSON.stringify(entry));
  store.quarantine.quarantine({ topic: INBOX_TOPIC, partition: -1, offset: entry.source, timestamp: entry.addedAt, value }, error, attempts);
  store.inbox.handled(entry.source);
}

/** How often the listener looks for quarantined messages an operator asked to retry. */
const QUARANTINE_POLL_MS = 2000;
/** How often the health record is refreshed even when nothing changed (status shows its age). */
const HEALTH_REFRESH_MS = 10_000;

/** Hand quarantined messages whose retry was requested back to the handler; released when handled. */
async function retryQuarantined(store: ListenerStore, handle: ReturnType<typeof kafkaMessageHandler>, dispatch: DispatchOptions, logger: Logger): Promise<void> {
  try {
    for (const q of store.quarantine.retryRequested()) {
      const where = `${q.topic}[${q.partition}]@${q.offset}`;
      if (q.value !== null && q.value.length < q.valueBytes) {
        store.quarantine.failedAgain(q.id, `only the first ${q.value.length} of its ${q.valueBytes} bytes were kept; it cannot be handled again`);
        continue;
      }
      try {
        if (q.topic === INBOX_TOPIC) {
          const entry = JSON.parse(q.value?.toString("utf8") ?? "null") as InboxEntry;
          await handleReady(entry, dispatch);
          store.quarantine.released(q.id);
          logger.info(`Retried quarantined inbox entry ${q.offset} (#${q.id}): handled`);
          continue;
        }
        const result = await handle({ topic: q.topic, partition: q.partition, offset: q.offset, key: q.key, value: q.value, timestamp: q.timestamp });
        if (typeof result === "object") {
          store.quarantine.failedAgain(q.id, result.reject);
          logger.warn(`Retried quarantined message ${where} (#${q.id}): still refused: ${result.reject}`);
        } else {
          store.quarantine.released(q.id);
          logger.info(`Retried quarantined message ${where} (#${q.id}): handled`);
        }
      } catch (err) {
        store.quarantine.failedAgain(q.id, (err as Error).message);
        logger.error(`Retried quarantined message ${where} (#${q.id}): failed again: ${(err as Error).message}`);
      }
    }
  } catch (err) {
    logger.error(`Retrying quarantined messages failed: ${(err as Error).message}`);
  }
}

/** Writes the source's health to the store: on every change of state, and at least every HEALTH_REFRESH_MS. */
class HealthReporter {
  private last = "";
  private lastAt = 0;
  constructor(
    private readonly store: ListenerStore,
    private readonly key: string,
  ) {}

  report(state: ConsumerHealth, opts: { force?: boolean } = {}): void {
    const shape = `${state.connected} ${state.member} ${state.restarts} ${state.quarantined} ${state.lastError}`;
    if (!opts.force && shape === this.last && Date.now() - this.lastAt < HEALTH_REFRESH_MS) return;
    this.last = shape;
    this.lastAt = Date.now();
    try {
      this.store.health.set(this.key, state);
    } catch {
      // Health is for people looking in; a store that cannot take it now is reported by the next real write.
    }
  }
}

/**
 * Spec §1.5: a read-only listener.sqlite (e.g. a file system remounted) gets one pause-and-retry; if it stays
 * read-only the listener stops (LISTENER_FAULT: its supervisor restarts it, and the notification is found again in
 * the inbox or on Kafka). Other errors are the caller's.
 */
async function withReadOnlyRetry(fn: () => Promise<unknown>, store: ListenerStore, logger: Logger): Promise<void> {
  try {
    await fn();
  } catch (err) {
    if (!isSqliteError(err, "SQLITE_READONLY")) throw err;
    logger.warn(`SQLite database is read only (${store.path}). Pause, retry.`);
    await new Promise((r) => setTimeout(r, 2000));
    try {
      await fn();
    } catch (again) {
      throw new DamnitError("LISTENER_FAULT", `${store.path} stays read-only: ${(again as Error).message}`, { cause: again });
    }
  }
}

/** The watcher's and the inbox's way: a notification that fails is logged and the next one taken (found again later). */
async function handleWithRetry(fn: () => Promise<unknown>, store: ListenerStore, logger: Logger): Promise<boolean> {
  try {
    await withReadOnlyRetry(fn, store, logger);
    return true;
  } catch (err) {
    if (isDamnitError(err, "LISTENER_FAULT")) throw err;
    logger.error(`Unexpected error handling a notification: ${(err as Error).stack ?? String(err)}`);
    return false;
  }
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
  let reportedAt = 0;
  let lastError: string | null = null;
  while (!done) {
    let ready: ReturnType<RunWatcher["scan"]> = [];
    try {
      ready = watcher.scan();
      lastError = null;
    } catch (err) {
      lastError = (err as Error).message;
      logger.error(`Scanning run directories failed: ${lastError}`);
    }
    if (Date.now() - reportedAt >= HEALTH_REFRESH_MS || lastError !== null) {
      reportedAt = Date.now();
      try {
        store.health.set("watcher", { lastScanAt: Date.now() / 1000, intervalSeconds: intervalMs / 1000, lastError } satisfies WatcherHealth);
      } catch {
        // Health is for people looking in; the next scan reports again.
      }
    }
    for (const n of ready) {
      if (done) break;
      dispatch.stats?.notificationReceived();
      const ready = { proposal: n.proposal, run: n.run, kind: n.kind, addedAt: Date.now() / 1000, source: `watch p${n.proposal} r${n.run} ${n.kind}` };
      if (await handleWithRetry(() => handleReady(ready, dispatch), store, logger)) watcher.seen(n);
    }
    await Promise.race([stopped, new Promise((r) => setTimeout(r, intervalMs))]);
  }
}
