/**
 * A proposal's run database: one object holding the connection, with the typed operations users of the database
 * need. Each method is a thin call into the module that owns the operation.
 */
import { SettingsReader } from "../core/settings.js";
import { METAMETA_SETTINGS, type MetametaSettings } from "./defaults.js";
import type Database from "better-sqlite3";
import * as comments from "./comments.js";
import { DamnitError } from "../core/errors.js";
import { isSqliteError } from "../core/sqlite-errors.js";
import * as metameta from "./metameta.js";
import { newDatabaseId, openDatabaseFile, type OpenOptions } from "./open.js";
import { readRunsPivot, readRunTable, type PivotRow, type RunTableOptions, type RunTable } from "./run-table.js";
import * as runVariables from "./run-variables.js";
import * as tags from "./tags.js";
import type { UpgradeReport } from "./migrate.js";
import * as variables from "./variables.js";

export class RunDatabase {
  private constructor(
    readonly sqlite: Database.Database,
    readonly dir: string,
    readonly path: string,
    readonly readonly: boolean,
    readonly created: boolean,
    readonly upgrade: UpgradeReport | null,
  ) {
    this.settings = new SettingsReader(METAMETA_SETTINGS, (key) => metameta.getSetting(this.sqlite, key), { where: `in ${path}` });
  }

  /** Open `<dir>/runs.sqlite`, upgrading older formats; `create` makes a new one with DAMNIT's v4 schema. */
  static async open(dir: string, options: OpenOptions = {}): Promise<RunDatabase> {
    const o = await openDatabaseFile(dir, options);
    return new RunDatabase(o.db, o.dir, o.path, o.readonly, o.created, o.upgrade);
  }

  /** Refuse a write up front on a database opened read-only, with a message that says why. */
  private writable(action: string): Database.Database {
    if (this.readonly) {
      throw new DamnitError("READ_ONLY", `cannot ${action}: ${this.path} is read-only here (no write access to it or its directory)`);
    }
    return this.sqlite;
  }

  close(): void {
    if (this.sqlite.open) this.sqlite.close();
  }

  private lockQueue: Promise<unknown> = Promise.resolve();

  /**
   * Run `fn` holding the database's write lock (one BEGIN IMMEDIATE transaction, committed when `fn` resolves,
   * rolled back if it throws). Other processes wait, so it also serialises work outside SQLite that must stay
   * consistent with it (rewriting a run's HDF5 file). Calls in this process queue one after the other; write
   * methods called inside join the transaction. While another process holds the lock, this waits without blocking
   * the event loop (SQLite's busy timeout would), for up to `waitSeconds` (default 600), telling `onWait` every 30 s.
   */
  withWriteLock<T>(fn: () => Promise<T> | T, opts: { waitSeconds?: number; onWait?: (seconds: number) => void } = {}): Promise<T> {
    const db = this.writable("write");
    const next = this.lockQueue.then(async () => {
      await this.beginImmediate(opts.waitSeconds ?? 600, opts.onWait);
      try {
        const result = await fn();
        db.prepare("COMMIT").run();
        return result;
      } catch (err) {
        if (db.inTransaction) db.prepare("ROLLBACK").run();
        throw err;
      }
    });
    this.lockQueue = next.catch(() => undefined);
    return next;
  }

  /** BEGIN IMMEDIATE, retried asynchronously while another connection holds the write lock. */
  private async beginImmediate(waitSeconds: number, onWait?: (seconds: number) => void): Promise<void> {
    const db = this.sqlite;
    const timeout = Number(db.pragma("busy_timeout", { simple: true }));
    const started = Date.now();
    let nextReport = 30;
    let delay = 20;
    db.pragma("busy_timeout = 50");
    try {
      for (;;) {
        try {
          db.prepare("BEGIN IMMEDIATE").run();
          return;
        } catch (err) {
          if (!isSqliteError(err, "SQLITE_BUSY")) throw err;
        }
        const waited = (Date.now() - started) / 1000;
        if (waited > waitSeconds) {
          throw new DamnitError("BUSY", `${this.path} stayed locked by another process for ${Math.round(waited)} s; try again`);
        }
        if (waited >= nextReport) {
          onWait?.(Math.round(waited));
          nextReport += 30;
        }
        await new Promise((resolve) => setTimeout(resolve, delay));
        delay = Math.min(delay * 2, 1000);
      }
    } finally {
      db.pragma(`busy_timeout = ${timeout}`);
    }
  }

  // --- settings (metameta)
  /** The settings damnit reads, typed, with the defaults of METAMETA_SETTINGS (src/db/defaults.ts). */
  readonly settings: SettingsReader<MetametaSettings>;

  /** Any stored key as it is (DAMNIT's tools keep keys of their own); what damnit reads goes through `settings`. */
  getSetting(key: string): metameta.SettingValue | undefined {
    return metameta.getSetting(this.sqlite, key);
  }
  setSetting(key: string, value: metameta.SettingValue): void {
    this.writable("change settings").transaction(() => metameta.setSetting(this.sqlite, key, value)).immediate();
  }
  setDefaultSetting(key: string, value: metameta.SettingValue): metameta.SettingValue {
    return this.writable("change settings").transaction(() => metameta.setDefaultSetting(this.sqlite, key, value)).immediate();
  }
  deleteSetting(key: string): void {
    this.writable("change settings").transaction(() => metameta.deleteSetting(this.sqlite, key)).immediate();
  }
  updateSettings(values: Record<string, metameta.SettingValue>): void {
    metameta.updateSettings(this.writable("change settings"), values);
  }
  allSettings(): Record<string, metameta.SettingValue> {
    return metameta.allSettings(this.sqlite);
  }
  get dbId(): string {
    return this.settings.get("db_id");
  }
  /** The proposal this database belongs to, if set. */
  get proposal(): number | undefined {
    const value = this.settings.get("proposal");
    return value === "" ? undefined : Number(value);
  }
  /** Give the database a fresh identity (for a copied database, so GUIs of the two don't mix updates). */
  newId(): string {
    const id = newDatabaseId();
    this.setSetting("db_id", id);
    return id;
  }

  // --- runs and values
  ensureRun(proposal: number, run: number, opts: { addedAt?: number; startTime?: number } = {}): void {
    runVariables.ensureRun(this.writable("add runs"), proposal, run, opts);
  }
  setVariables(proposal: number, run: number, values: Record<string, runVariables.VariableRow>, opts: runVariables.WriteOptions): void {
    runVariables.setVariables(this.writable("write values"), proposal, run, values, opts);
  }
  setVariablesForRuns(runs: readonly runVariables.RunValues[], opts: runVariables.WriteOptions): void {
    runVariables.setVariablesForRuns(this.writable("write values"), runs, opts);
  }
  /** The runs registered in `run_info` (of one proposal, if given), in order. */
  /** The run's variables that hold a value rather than an error. */
  namesWithValues(proposal: number, run: number): Set<string> {
    return runVariables.namesWithValues(this.sqlite, proposal, run);
  }
  listRuns(proposal?: number): Array<{ proposal: number; run: number }> {
    const rows = this.sqlite
      .prepare(`SELECT proposal, run FROM run_info ${proposal === undefined ? "" : "WHERE proposal = ?"} ORDER BY proposal, run`)
      .all(...(proposal === undefined ? [] : [proposal])) as Array<{ proposal: number | bigint; run: number | bigint }>;
    return rows.map((r) => ({ proposal: Number(r.proposal), run: Number(r.run) }));
  }
  /** The run table with each cell's attributes, max_diff and provenance. */
  readRunTable(opts: RunTableOptions = {}): RunTable {
    return readRunTable(this.sqlite, opts);
  }
  /** The `runs` view's values only: the fast way to read a whole table. */
  readRunsPivot(opts: RunTableOptions = {}): { names: string[]; rows: PivotRow[] } {
    return readRunsPivot(this.sqlite, opts);
  }

  // --- variables
  listVariables(): variables.VariableInfo[] {
    return variables.listVariables(this.sqlite);
  }
  addUserVariable(variable: variables.UserVariable, opts: { existOk?: boolean } = {}): void {
    variables.addUserVariable(this.writable("add variables"), variable, opts);
  }
  setUserValue(proposal: number, run: number, name: string, input: string): void {
    variables.setUserValue(this.writable("write values"), proposal, run, name, input);
  }
  deleteVariable(name: string): void {
    variables.deleteVariable(this.writable("delete variables"), name);
  }
  updateComputedVariables(vars: readonly variables.ComputedVariable[]): string[] {
    return variables.updateComputedVariables(this.writable("update variables"), vars);
  }

  // --- comments
  setRunComment(proposal: number, run: number, text: string | null): void {
    comments.setRunComment(this.writable("write comments"), proposal, run, text);
  }
  addTimeComment(text: string, timestamp?: number): number {
    return comments.addTimeComment(this.writable("write comments"), text, timestamp);
  }
  changeTimeComment(id: number, text: string): void {
    comments.changeTimeComment(this.writable("write comments"), id, text);
  }
  deleteTimeComment(id: number): void {
    comments.deleteTimeComment(this.writable("write comments"), id);
  }
  listTimeComments(): comments.TimeComment[] {
    return comments.listTimeComments(this.sqlite);
  }

  // --- tags
  addTag(name: string): number {
    return this.writable("change tags").transaction(() => tags.addTag(this.sqlite, name)).immediate();
  }
  tagVariable(variable: string, tag: string): void {
    tags.tagVariable(this.writable("change tags"), variable, tag);
  }
  untagVariable(variable: string, tag: string): void {
    tags.untagVariable(this.writable("change tags"), variable, tag);
  }
  getVariableTags(variable: string): string[] {
    return tags.getVariableTags(this.sqlite, variable);
  }
  getVariablesByTag(tag: string): string[] {
    return tags.getVariablesByTag(this.sqlite, tag);
  }
  getAllTags(): string[] {
    return tags.getAllTags(this.sqlite);
  }
}
