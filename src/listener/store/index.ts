/**
 * The listener's own store, `<listener dir>/listener.sqlite` (spec §1.2). One object owns the connection and hands
 * out a part per thing kept: the registered databases, the settings, the inbox, the processing requests and the
 * run watcher's state. Nothing outside this folder runs SQL on the file. The schema is versioned (`schema.ts`);
 * DAMNIT's two tables are kept exactly, so either implementation can open the file.
 */
import Database from "better-sqlite3";
import { existsSync, mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { DamnitError } from "../../core/errors.js";
import { makePrivate, privateFileMode } from "../../core/private-files.js";
import { isSqliteError } from "../../core/sqlite-errors.js";
import { ProposalDatabases } from "./databases.js";
import { Quarantine } from "./quarantine.js";
import { Health } from "./health.js";
import { Inbox } from "./inbox.js";
import { ProcessingRequests } from "./requests.js";
import { refuseNewer, storeVersion, upgradeStore } from "./schema.js";
import { ListenerSettingsStore } from "./settings-store.js";
import { WatcherState } from "./watcher-state.js";

export type { RegisteredDatabase } from "./databases.js";
export type { InboxEntry } from "./inbox.js";
export { ACTIVE_REQUEST_STATES, type ProcessingRequestRow, type RequestState } from "./requests.js";
export { LATEST_STORE_VERSION } from "./schema.js";
export { storedListenerDefaults, type SettingValue } from "./settings-store.js";
export { QUARANTINE_VALUE_BYTES, type QuarantinedMessage } from "./quarantine.js";
export type { HealthRecord } from "./health.js";
export type { ProposalDatabases, Inbox, ProcessingRequests, ListenerSettingsStore, WatcherState, Quarantine, Health };

export const STORE_FILE_NAME = "listener.sqlite";

export interface StoreOpenOptions {
  /** Create the store (and its directory) when missing; default true. False: a missing store is a DamnitError. */
  readonly create?: boolean;
  /**
   * Only look: open read-only, never upgrade or insert defaults (for `listener status`, which colleagues with read
   * access run too). Implies `create: false`; a store from a newer damnit is still refused.
   */
  readonly readonly?: boolean;
}

export class ListenerStore {
  readonly settings: ListenerSettingsStore;
  readonly databases: ProposalDatabases;
  readonly inbox: Inbox;
  readonly requests: ProcessingRequests;
  readonly watcher: WatcherState;
  readonly quarantine: Quarantine;
  readonly health: Health;

  private constructor(
    private readonly sqlite: Database.Database,
    readonly dir: string,
    readonly path: string,
  ) {
    this.settings = new ListenerSettingsStore(sqlite, () => this.databases.invalidate());
    this.databases = new ProposalDatabases(sqlite, () => this.settings.get("static_mode"));
    this.inbox = new Inbox(sqlite);
    this.requests = new ProcessingRequests(sqlite);
    this.watcher = new WatcherState(sqlite);
    this.quarantine = new Quarantine(sqlite);
    this.health = new Health(sqlite);
  }

  /** Whether `dir` holds a listener store. */
  static existsIn(dir: string): boolean {
    return existsSync(join(resolve(dir), STORE_FILE_NAME));
  }

  /**
   * Open `listener.sqlite` in `dir`, creating it when missing (unless `create: false`), bringing its schema to the
   * latest version, and inserting the stored defaults that are absent (as DAMNIT does on every open).
   */
  static open(dirArg: string, opts: StoreOpenOptions = {}): ListenerStore {
    const dir = resolve(dirArg);
    const path = join(dir, STORE_FILE_NAME);
    const create = !opts.readonly && (opts.create ?? true);
    if (!create && !existsSync(path)) {
      throw new DamnitError("NO_DATABASE", `${dir} has no ${STORE_FILE_NAME}: no listener was set up there ('damnit listener add' makes one)`);
    }
    if (create) mkdirSync(dir, { recursive: true });
    let sqlite: Database.Database | undefined;
    try {
      sqlite = new Database(path, { timeout: 10_000, fileMustExist: !create, readonly: opts.readonly ?? false });
      if (opts.readonly) {
        refuseNewer(storeVersion(sqlite), path);
        return new ListenerStore(sqlite, dir, path);
      }
      upgradeStore(sqlite, path);
      const store = new ListenerStore(sqlite, dir, path);
      store.settings.insertMissingDefaults();
      // The store decides what the service runs (sandbox_args, brokers, databases): the owner's alone, colleagues
      // in the directory's group may read it (status). SQLite gives its journal files the database's mode.
      const wanted = privateFileMode(dir);
      for (const file of [path, `${path}-wal`, `${path}-shm`, `${path}-journal`]) makePrivate(file, wanted);
      return store;
    } catch (err) {
      sqlite?.close();
      if (err instanceof DamnitError) throw err;
      if (isSqliteError(err, "SQLITE_READONLY") || isSqliteError(err, "SQLITE_CANTOPEN")) {
        throw new DamnitError("READ_ONLY", `cannot open ${path} for writing: ${err.message}`, { cause: err });
      }
      if (isSqliteError(err, "SQLITE_NOTADB") || isSqliteError(err, "SQLITE_CORRUPT")) {
        throw new DamnitError("NOT_SQLITE", `${path} is not a usable SQLite database: ${err.message}`, { cause: err });
      }
      throw err;
    }
  }

  /** The schema version of the file (below LATEST_STORE_VERSION only when opened `readonly`). */
  get version(): number {
    return storeVersion(this.sqlite);
  }

  close(): void {
    if (this.sqlite.open) this.sqlite.close();
  }
}
