/**
 * The registered proposal databases (DAMNIT's `proposal_databases`): which database directories get jobs for which
 * proposal. Also answers, cheaply, whether a notification can concern this listener at all (a registered proposal,
 * or dynamic mode), for the many notifications of other proposals.
 */
import { isSqliteError } from "../../core/sqlite-errors.js";
import type Database from "better-sqlite3";
import { resolve } from "node:path";
import { DamnitError } from "../../core/errors.js";

export interface RegisteredDatabase {
  readonly proposal: number;
  readonly dbDir: string;
  readonly official: boolean;
}

export class ProposalDatabases {
  /** static_mode and the registered proposals, re-read when the file changed (checked at most every 250 ms) */
  private snapshot: { version: number; checkedAt: number; staticMode: boolean; proposals: Set<number> } | undefined;

  constructor(
    private readonly sqlite: Database.Database,
    /** the current `static_mode` setting */
    private readonly staticMode: () => boolean,
  ) {}

  /** Forget the snapshot (this connection changed what it is made of). */
  invalidate(): void {
    this.snapshot = undefined;
  }

  /**
   * Whether a notification for `proposal` can concern this listener (a registered proposal, or dynamic mode).
   * Answered from memory, refreshed when `PRAGMA data_version` says another process changed the file; this
   * connection's own changes clear it at once.
   */
  mayConcern(proposal: number): boolean {
    const now = Date.now();
    if (!this.snapshot || now - this.snapshot.checkedAt > 250) {
      const version = Number(this.sqlite.pragma("data_version", { simple: true }));
      if (!this.snapshot || version !== this.snapshot.version) {
        this.snapshot = { version, checkedAt: now, staticMode: this.staticMode(), proposals: new Set(this.list().map((d) => d.proposal)) };
      }
      this.snapshot.checkedAt = now;
    }
    return !this.snapshot.staticMode || this.snapshot.proposals.has(proposal);
  }

  add(proposal: number, dbDirArg: string, official: boolean): RegisteredDatabase {
    this.invalidate();
    const dbDir = resolve(dbDirArg);
    try {
      this.sqlite.prepare("INSERT INTO proposal_databases(proposal, db_dir, official) VALUES (?, ?, ?)").run(proposal, dbDir, official ? 1 : 0);
    } catch (err) {
      if (isSqliteError(err, "SQLITE_CONSTRAINT_UNIQUE")) {
        const existing = this.sqlite.prepare("SELECT proposal FROM proposal_databases WHERE db_dir = ?").get(dbDir) as { proposal: number };
        throw new DamnitError("BAD_ARGUMENT", `${dbDir} is already registered (for proposal ${existing.proposal})`);
      }
      throw err;
    }
    return { proposal, dbDir, official };
  }

  /** Unregister a directory; false when it was not registered. */
  remove(dbDirArg: string): boolean {
    this.invalidate();
    return this.sqlite.prepare("DELETE FROM proposal_databases WHERE db_dir = ?").run(resolve(dbDirArg)).changes > 0;
  }

  /** The registered databases, of one proposal or of all (by proposal, then directory). */
  list(proposal?: number): RegisteredDatabase[] {
    const rows = (
      proposal === undefined
        ? this.sqlite.prepare("SELECT proposal, db_dir, official FROM proposal_databases ORDER BY proposal, db_dir").all()
        : this.sqlite.prepare("SELECT proposal, db_dir, official FROM proposal_databases WHERE proposal = ? ORDER BY db_dir").all(proposal)
    ) as Array<{ proposal: number; db_dir: string; official: number }>;
    return rows.map((r) => ({ proposal: Number(r.proposal), dbDir: String(r.db_dir), official: Boolean(r.official) }));
  }

  isRegistered(dbDirArg: string): boolean {
    return this.sqlite.prepare("SELECT 1 FROM proposal_databases WHERE db_dir = ?").get(resolve(dbDirArg)) !== undefined;
  }
}
