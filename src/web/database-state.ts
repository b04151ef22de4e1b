/**
 * One database the web server serves: the connection (read transactions only; writes go through RunDatabase's
 * own methods), the table as the page gets it (one JSON string per run, joined for the first load), and the
 * watcher that looks again when SQLite's `data_version` says another connection committed.
 *
 * Looking again is cheap: one grouped query gives every run's fingerprint (value count and timestamps, which every
 * write of DAMNIT's tools and ours sets), and only the runs whose fingerprint moved are read again, through the
 * (proposal, run) indexes. Their cells are compared with what the pages have, and only changed cells are sent.
 */
import { RunDatabase } from "../db/run-database.js";
import { METAMETA_DEFAULTS } from "../db/defaults.js";
import { webColumns, webRow, type WebColumn, type WebRow, type WireCell } from "./cells.js";
import { log } from "../log.js";
import { updateTopic, type UpdateMessage } from "../messaging/messages.js";
import { ProcessingStates } from "./processing-states.js";

/** New values of some cells of a run the pages already have (`cleared`: cells that no longer have a value). */
export interface RowPatch {
  key: string;
  start: number | null;
  cells: Record<string, WireCell>;
  cleared: string[];
}

export interface TableChange {
  columns?: WebColumn[];
  /** runs the pages do not have yet, whole */
  rows: WebRow[];
  /** runs they have: only the cells that changed */
  patches: RowPatch[];
  removed: string[];
}

/** Runs read per query on a full load: bounds the memory a first read of a large table takes at once. */
const LOAD_CHUNK_RUNS = 100;

interface CachedRow {
  fingerprint: string;
  json: string;
  names: string[];
}

export class DatabaseState {
  private rows = new Map<string, CachedRow>();
  private columnsJson = "";
  private snapshotCache: string | undefined;
  private lastStamp = "";
  private timer: NodeJS.Timeout | undefined;
  private readonly listeners = new Set<(c: TableChange, json: string) => void>();
  private readonly processingListeners = new Set<(json: string) => void>();
  /** pending/running processing of this database's runs, from its update messages */
  readonly processing: ProcessingStates;

  private constructor(
    readonly index: number,
    readonly dir: string,
    readonly db: RunDatabase | undefined,
    readonly problem: string | undefined,
  ) {
    const pendingTimeout = (db?.settings ?? METAMETA_DEFAULTS).get("web_pending_timeout");
    this.processing = new ProcessingStates(pendingTimeout, (list) => {
      const json = JSON.stringify(list);
      for (const fn of this.processingListeners) fn(json);
    });
  }

  /** The database's Kafka update topic (named after its db_id), if it has one. */
  get updateTopic(): string | undefined {
    return this.db?.dbId ? updateTopic(this.db.dbId) : undefined;
  }

  /** An update message about this database (from Kafka, or from the listener serving it in-process). */
  deliver(message: UpdateMessage): void {
    this.processing.apply(message);
  }

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

  /** The whole table as JSON `{"columns": […], "rows": […]}`, built from the per-run strings once per change. */
  snapshotJson(): string {
    this.snapshotCache ??= `{"columns":${this.columnsJson},"rows":[${[...this.rows.values()].map((r) => r.json).join(",")}]}`;
    return this.snapshotCache;
  }

  snapshot(): { columns: WebColumn[]; rows: WebRow[] } {
    return JSON.parse(this.snapshotJson()) as { columns: WebColumn[]; rows: WebRow[] };
  }

  /** Listeners get each change and its JSON (serialised once for every open page). */
  subscribe(fn: (c: TableChange, json: string) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Listeners get the whole list of processing states (JSON) whenever it changes. */
  subscribeProcessing(fn: (json: string) => void): () => void {
    this.processingListeners.add(fn);
    return () => this.processingListeners.delete(fn);
  }

  /**
   * Poll `data_version` every `ms` (a pragma on an open connection: microseconds, no file reads); default: the
   * database's `web_poll_ms` setting.
   */
  watch(ms?: number): void {
    if (!this.db) return;
    this.timer = setInterval(() => {
      try {
        this.processing.sweep();
        this.refresh();
      } catch (err) {
        log().warn({ err, dir: this.dir }, "re-reading the run table failed; will retry");
      }
    }, ms ?? this.db.settings.get("web_poll_ms"));
    this.timer.unref();
  }

  /** Look again if another connection (or this one) changed the database; tell listeners what changed. */
  refresh(force = false): void {
    const db = this.db;
    if (!db) return;
    // data_version moves on other connections' commits, total_changes() on this one's.
    const stamp = `${String(db.sqlite.pragma("data_version", { simple: true }))}/${String(db.sqlite.prepare("SELECT total_changes()").pluck().get())}`;
    if (!force && stamp === this.lastStamp) return;
    this.lastStamp = stamp;
    db.sqlite.transaction(() => this.reread(db, force)).deferred();
  }

  private reread(db: RunDatabase, force: boolean): void {
    const fingerprints = db.sqlite
      .prepare(
        `SELECT ri.proposal, ri.run, ifnull(ri.start_time, '') || ' ' || fp FROM (
           SELECT proposal, run, count(*) || ' ' || max(timestamp) || ' ' || total(timestamp) AS fp
           FROM run_variables GROUP BY proposal, run) v
         JOIN run_info ri ON ri.proposal = v.proposal AND ri.run = v.run
         ORDER BY ri.proposal, ri.run`,
      )
      .raw(true)
      .all() as [number, number, string | null][];
    const changed: ChangedRun[] = [];
    const prints = new Map<string, string>();
    fingerprints.forEach(([proposal, run, fp], index) => {
      const key = `${proposal}/${run}`;
      const print = fp ?? "";
      prints.set(key, print);
      if (force || this.rows.get(key)?.fingerprint !== print) changed.push({ proposal, run, index });
    });
    const change: TableChange = { rows: [], patches: [], removed: [] };
    // Column names: every read gives the runs view's and the variables table's names (a read of no run too).
    let names: Set<string> | undefined;
    for (const { proposal, from, to } of runRanges(changed)) {
      const table = db.readRunTable({ proposal, range: { from, to } });
      names ??= new Set(table.names);
      for (const r of table.rows) {
        const row = webRow(r);
        this.store(row, prints.get(row.key) ?? "", change);
      }
    }
    for (const key of [...this.rows.keys()]) {
      if (!prints.has(key)) {
        this.rows.delete(key);
        change.removed.push(key);
      }
    }
    names ??= new Set(db.readRunTable({ proposal: -1 }).names);
    for (const r of this.rows.values()) for (const n of r.names) names.add(n);
    const columns = webColumns([...names].sort(), db.listVariables(), (name) => db.getVariableTags(name));
    const columnsJson = JSON.stringify(columns);
    if (columnsJson !== this.columnsJson) {
      this.columnsJson = columnsJson;
      change.columns = columns;
    }
    if (!change.columns && !change.rows.length && !change.patches.length && !change.removed.length) return;
    this.snapshotCache = undefined;
    const json = JSON.stringify(change);
    for (const fn of this.listeners) fn(change, json);
  }

  /** Keep a run's new row; note it in `change` whole (new run) or as the cells that differ from the kept row. */
  private store(row: WebRow, fingerprint: string, change: TableChange): void {
    const json = JSON.stringify(row);
    const old = this.rows.get(row.key);
    this.rows.set(row.key, { fingerprint, json, names: Object.keys(row.cells) });
    if (!old) return void change.rows.push(row);
    if (old.json === json) return;
    const before = JSON.parse(old.json) as WebRow;
    const patch: RowPatch = { key: row.key, start: row.start, cells: {}, cleared: [] };
    for (const [name, cell] of Object.entries(row.cells)) {
      if (JSON.stringify(before.cells[name]) !== JSON.stringify(cell)) patch.cells[name] = cell;
    }
    for (const name of Object.keys(before.cells)) if (!(name in row.cells)) patch.cleared.push(name);
    change.patches.push(patch);
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.db?.close();
  }
}

/** A run to read again, with its place among all runs in (proposal, run) order. */
interface ChangedRun {
  proposal: number;
  run: number;
  index: number;
}

/**
 * Changed runs as ranges to read: neighbours (no unchanged run between them) share a range of at most
 * LOAD_CHUNK_RUNS runs, so one changed run costs one indexed read, and a first load a few.
 */
function runRanges(runs: ChangedRun[]): { proposal: number; from: number; to: number }[] {
  const out: { proposal: number; from: number; to: number; n: number; last: number }[] = [];
  for (const { proposal, run, index } of runs) {
    const prev = out[out.length - 1];
    if (prev && prev.proposal === proposal && prev.last === index - 1 && prev.n < LOAD_CHUNK_RUNS) {
      prev.to = run;
      prev.n += 1;
      prev.last = index;
    } else out.push({ proposal, from: run, to: run, n: 1, last: index });
  }
  return out;
}
