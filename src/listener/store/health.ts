/**
 * The listener's health, as it last reported it: what its notification source (Kafka consumer or directory
 * watcher) is doing, kept in the store so that `damnit listener status` (another process) can show it.
 */
import type Database from "better-sqlite3";

export interface HealthRecord<T> {
  readonly value: T;
  /** when the listener wrote it (s since the epoch) */
  readonly updatedAt: number;
  readonly pid: number;
}

export class Health {
  constructor(private readonly sqlite: Database.Database) {}

  set(key: string, value: unknown): void {
    this.sqlite
      .prepare("INSERT INTO health(key, value, updated_at, pid) VALUES (?, ?, ?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at, pid = excluded.pid")
      .run(key, JSON.stringify(value), Date.now() / 1000, process.pid);
  }

  get<T>(key: string): HealthRecord<T> | undefined {
    const row = this.sqlite.prepare("SELECT value, updated_at, pid FROM health WHERE key = ?").get(key) as
      | { value: string; updated_at: number; pid: number }
      | undefined;
    if (!row) return undefined;
    try {
      return { value: JSON.parse(row.value) as T, updatedAt: row.updated_at, pid: row.pid };
    } catch {
      return undefined;
    }
  }
}
