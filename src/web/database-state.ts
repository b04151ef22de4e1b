/**
 * One database the web server serves: the connection (read transactions only; writes go through RunDatabase's
 * own methods), the last table read, and the watcher that re-reads it when SQLite's `data_version` says another
 * connection committed. Each re-read is compared row by row with the last one, and only the changed rows are
 * handed to the listeners (the open pages' event streams).
 */
import { RunDatabase } from "../db/run-database.js";
import { webColumns, webRow, type WebColumn, type WebRow } from "./cells.js";
import { log } from "../log.js";

export interface TableChange {
  columns?: WebColumn[];
  rows: WebRow[];
  removed: string[];
}

export interface TableSnapshot {
  columns: WebColumn[];
  rows: WebRow[];
}

export class DatabaseState {
  private rows = new Map<string, { json: string; row: WebRow }>();
  private columns: WebColumn[] = [];
  private columnsJson = "";
  private lastVersion = -1;
  private timer: NodeJS.Timeout | undefined;
  private readonly listeners = new Set<(c: TableChange) => void>();

  private constructor(
    readonly index: number,
    readonly dir: string,
    readonly db: RunDatabase | undefined,
    readonly problem: string | undefined,
  ) {}

  /** Open `dir`; a database that cannot be opened is kept with the reason, so the page can say which and why. */
  static async open(index: number, dir: string): Promise<DatabaseState> {
    try {
      const db = await RunDatabase.open(dir, { create: false });
      const state = new DatabaseState(index, db.dir, db, undefined);
      state.refresh();
      return state;
    } catch (err) {
      return new DatabaseState(index, dir, undefined, (err as Error).message);
    }
  }

  get name(): string {
    return this.dir.split("/").filter(Boolean).slice(-2).join("/");
  }

  snapshot(): TableSnapshot {
    return { columns: this.columns, rows: [...this.rows.values()].map((r) => r.row) };
  }

  subscribe(fn: (c: TableChange) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Poll `data_version` every `ms` (a pragma on an open connection: microseconds, no file reads). */
  watch(ms: number): void {
    this.timer = setInterval(() => {
      try {
        this.refresh();
      } catch (err) {
        log().warn({ err, dir: this.dir }, "re-reading the run table failed; will retry");
      }
    }, ms);
    this.timer.unref();
  }

  /** Re-read the table if another connection (or this one) changed the database; tell listeners what changed. */
  refresh(force = false): void {
    const db = this.db;
    if (!db) return;
    const version = Number(db.sqlite.pragma("data_version", { simple: true }));
    const changes = Number(db.sqlite.prepare("SELECT total_changes()").pluck().get());
    const stamp = version * 1e9 + changes;
    if (!force && stamp === this.lastVersion) return;
    this.lastVersion = stamp;
    const table = db.readRunTable();
    const tagsOf = (name: string) => db.getVariableTags(name);
    const columns = webColumns(table, db.listVariables(), tagsOf);
    const columnsJson = JSON.stringify(columns);
    const change: TableChange = { rows: [], removed: [] };
    if (columnsJson !== this.columnsJson) {
      this.columns = columns;
      this.columnsJson = columnsJson;
      change.columns = columns;
    }
    const seen = new Set<string>();
    for (const r of table.rows) {
      const row = webRow(r);
      seen.add(row.key);
      const json = JSON.stringify(row);
      if (this.rows.get(row.key)?.json === json) continue;
      this.rows.set(row.key, { json, row });
      change.rows.push(row);
    }
    for (const key of [...this.rows.keys()]) {
      if (!seen.has(key)) {
        this.rows.delete(key);
        change.removed.push(key);
      }
    }
    if (change.columns || change.rows.length || change.removed.length) for (const fn of this.listeners) fn(change);
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.db?.close();
  }
}
