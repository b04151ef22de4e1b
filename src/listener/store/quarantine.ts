/**
 * The quarantine: the messages the listener gave up on (malformed, failing `max_delivery_attempts` times, or an
 * inbox entry whose replay kept failing), kept with their key, value (the first QUARANTINE_VALUE_BYTES), error and
 * attempts until an operator retries or drops them (`damnit listener quarantine`). A retry is requested here and
 * carried out by the running listener.
 */
import type Database from "better-sqlite3";
import type { QuarantineLog, SourceMessage } from "../kafka-source.js";

/** The most of a message's value kept in quarantine (notifications are small; poison may be megabytes). */
export const QUARANTINE_VALUE_BYTES = 64 * 1024;

export interface QuarantinedMessage {
  readonly id: number;
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
  /** the record's timestamp, s since the epoch */
  readonly timestamp: number;
  readonly key: Buffer | null;
  /** the value as kept (at most QUARANTINE_VALUE_BYTES) */
  readonly value: Buffer | null;
  /** the whole value's size */
  readonly valueBytes: number;
  readonly error: string;
  readonly attempts: number;
  readonly quarantinedAt: number;
  readonly retryRequestedAt: number | null;
}

interface Row {
  id: number;
  topic: string;
  partition: number;
  offset: string;
  timestamp: number;
  key: Buffer | null;
  value: Buffer | null;
  value_bytes: number;
  error: string;
  attempts: number;
  quarantined_at: number;
  retry_requested_at: number | null;
}

function fromRow(r: Row): QuarantinedMessage {
  return {
    id: r.id,
    topic: r.topic,
    partition: r.partition,
    offset: r.offset,
    timestamp: r.timestamp,
    key: r.key,
    value: r.value,
    valueBytes: r.value_bytes,
    error: r.error,
    attempts: r.attempts,
    quarantinedAt: r.quarantined_at,
    retryRequestedAt: r.retry_requested_at,
  };
}

export class Quarantine implements QuarantineLog {
  constructor(private readonly sqlite: Database.Database) {}

  quarantine(m: SourceMessage, error: string, attempts: number): void {
    const value = m.value === null ? null : m.value.subarray(0, QUARANTINE_VALUE_BYTES);
    this.sqlite.transaction(() => {
      this.sqlite
        .prepare(
          `INSERT INTO quarantine(topic, partition, "offset", timestamp, key, value, value_bytes, error, attempts, quarantined_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT(topic, partition, "offset", timestamp) DO UPDATE SET error = excluded.error, attempts = excluded.attempts,
             quarantined_at = excluded.quarantined_at, retry_requested_at = NULL`,
        )
        .run(m.topic, m.partition, m.offset, m.timestamp, m.key ?? null, value, m.value?.length ?? 0, error, attempts, Date.now() / 1000);
    }).immediate();
  }

  /** Newest first. */
  list(limit = 50): QuarantinedMessage[] {
    return (this.sqlite.prepare("SELECT * FROM quarantine ORDER BY id DESC LIMIT ?").all(limit) as Row[]).map(fromRow);
  }

  count(): number {
    return (this.sqlite.prepare("SELECT count(*) AS n FROM quarantine").get() as { n: number }).n;
  }

  /** Ask the running listener to hand these back to its handler; the ids that exist. */
  requestRetry(ids: readonly number[] | "all"): number[] {
    return this.sqlite.transaction(() => {
      const now = Date.now() / 1000;
      const rows =
        ids === "all"
          ? (this.sqlite.prepare("SELECT id FROM quarantine").all() as Array<{ id: number }>)
          : ids.filter((id) => this.sqlite.prepare("SELECT 1 FROM quarantine WHERE id = ?").get(id) !== undefined).map((id) => ({ id }));
      const mark = this.sqlite.prepare("UPDATE quarantine SET retry_requested_at = ? WHERE id = ?");
      for (const r of rows) mark.run(now, r.id);
      return rows.map((r) => r.id);
    }).immediate();
  }

  /** Forget these quarantined messages for good; the ids that existed. */
  drop(ids: readonly number[] | "all"): number[] {
    return this.sqlite.transaction(() => {
      if (ids === "all") {
        const all = (this.sqlite.prepare("SELECT id FROM quarantine").all() as Array<{ id: number }>).map((r) => r.id);
        this.sqlite.prepare("DELETE FROM quarantine").run();
        return all;
      }
      const remove = this.sqlite.prepare("DELETE FROM quarantine WHERE id = ?");
      return ids.filter((id) => remove.run(id).changes > 0);
    }).immediate();
  }

  /** Quarantined messages an operator asked to retry, oldest request first. */
  retryRequested(): QuarantinedMessage[] {
    return (this.sqlite.prepare("SELECT * FROM quarantine WHERE retry_requested_at IS NOT NULL ORDER BY retry_requested_at, id").all() as Row[]).map(fromRow);
  }

  /** A retried message was handled: it leaves the quarantine. */
  released(id: number): void {
    this.sqlite.prepare("DELETE FROM quarantine WHERE id = ?").run(id);
  }

  /** A retry failed again: kept, with the new error. */
  failedAgain(id: number, error: string): void {
    this.sqlite.prepare("UPDATE quarantine SET error = ?, attempts = attempts + 1, retry_requested_at = NULL WHERE id = ?").run(error, id);
  }
}
