/**
 * The inbox: notifications received and not yet fully handled. A ready run is written here before anything is
 * done for it and marked handled once its jobs are submitted, so a listener killed in between handles it after
 * restarting; handled entries are kept a week, so a redelivery of one is recognised.
 */
import type { RunDataDirectory } from "../../core/data-kind.js";
import type Database from "better-sqlite3";

export interface InboxEntry {
  readonly source: string;
  readonly proposal: number;
  readonly run: number;
  readonly kind: RunDataDirectory;
  readonly addedAt: number;
}

export class Inbox {
  constructor(private readonly sqlite: Database.Database) {}

  receive(n: InboxEntry): void {
    this.sqlite
      .prepare("INSERT OR REPLACE INTO inbox(source, proposal, run, kind, added_at, received_at, handled_at) VALUES (?, ?, ?, ?, ?, ?, NULL)")
      .run(n.source, n.proposal, n.run, n.kind, n.addedAt, Date.now() / 1000);
  }

  /** The notification's jobs were submitted (or refused). */
  handled(source: string): void {
    this.sqlite.prepare("UPDATE inbox SET handled_at = ? WHERE source = ?").run(Date.now() / 1000, source);
  }

  wasHandled(source: string): boolean {
    return this.sqlite.prepare("SELECT 1 FROM inbox WHERE source = ? AND handled_at IS NOT NULL").get(source) !== undefined;
  }

  /** Notifications received and not handled (the listener stopped in between), oldest first. */
  pending(): InboxEntry[] {
    const rows = this.sqlite.prepare("SELECT source, proposal, run, kind, added_at FROM inbox WHERE handled_at IS NULL ORDER BY received_at").all() as Array<{
      source: string;
      proposal: number;
      run: number;
      kind: RunDataDirectory;
      added_at: number;
    }>;
    return rows.map((r) => ({ source: r.source, proposal: r.proposal, run: r.run, kind: r.kind, addedAt: r.added_at }));
  }

  /** Forget handled notifications older than `days`. */
  /** Count one more attempt at replaying an entry (before it is tried); the count including this one. */
  replayAttempt(source: string): number {
    const row = this.sqlite.prepare("UPDATE inbox SET attempts = attempts + 1 WHERE source = ? RETURNING attempts").get(source) as { attempts: number } | undefined;
    return row?.attempts ?? 0;
  }

  prune(days = 7): void {
    this.sqlite.prepare("DELETE FROM inbox WHERE handled_at IS NOT NULL AND handled_at < ?").run(Date.now() / 1000 - days * 86400);
  }
}
