/**
 * What the run-directory watcher has seen (`watched_runs`, `watched_proposals`): each run directory's signature
 * when it was last handled, and since when each proposal is watched (its first scan takes runs the databases
 * already hold as done).
 */
import type { RunDataDirectory } from "../../core/data-kind.js";
import type Database from "better-sqlite3";

export class WatcherState {
  constructor(private readonly sqlite: Database.Database) {}

  isWatched(proposal: number): boolean {
    return this.sqlite.prepare("SELECT 1 FROM watched_proposals WHERE proposal = ?").get(proposal) !== undefined;
  }

  /** Record that `proposal` is watched from `since` (seconds since the epoch) on; a first record stays. */
  markWatched(proposal: number, since: number): void {
    this.sqlite.prepare("INSERT OR IGNORE INTO watched_proposals(proposal, since) VALUES (?, ?)").run(proposal, since);
  }

  /** The signature of the run directory when it was last handled, or undefined when it never was. */
  seenSignature(proposal: number, run: number, kind: RunDataDirectory): string | undefined {
    const row = this.sqlite.prepare("SELECT signature FROM watched_runs WHERE proposal = ? AND run = ? AND kind = ?").get(proposal, run, kind) as { signature: string } | undefined;
    return row?.signature;
  }

  recordSeen(proposal: number, run: number, kind: RunDataDirectory, signature: string): void {
    this.sqlite
      .prepare("INSERT INTO watched_runs(proposal, run, kind, signature) VALUES (?, ?, ?, ?) ON CONFLICT DO UPDATE SET signature = excluded.signature")
      .run(proposal, run, kind, signature);
  }
}
