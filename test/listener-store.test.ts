/**
 * The listener's store (`src/listener/store`) on real SQLite files: a store made by damnit before versions were
 * kept (built here with that code's own SQL, as a fixture) is adopted with every row kept; a new store has exactly
 * that schema; a store from a newer damnit is refused and left byte for byte as it was; DAMNIT's own two-table
 * store is adopted too.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { isDamnitError } from "../src/core/errors.js";
import { LATEST_STORE_VERSION, ListenerStore } from "../src/listener/store/index.js";
import { tempDir } from "./helpers/tmp.js";

/** The schema as src/listener/registry.ts created it before versions were kept (copied verbatim: a fixture). */
const OLD_REGISTRY_SCHEMA = `
CREATE TABLE IF NOT EXISTS proposal_databases(proposal, db_dir UNIQUE, official);
CREATE INDEX IF NOT EXISTS proposals ON proposal_databases(proposal);
CREATE TABLE IF NOT EXISTS settings(key PRIMARY KEY NOT NULL, value);
CREATE TABLE IF NOT EXISTS processing_requests(
  processing_id TEXT PRIMARY KEY,
  db_dir TEXT NOT NULL,
  proposal INTEGER NOT NULL,
  run INTEGER NOT NULL,
  data TEXT NOT NULL,
  source TEXT NOT NULL,
  received_at REAL NOT NULL,
  via TEXT,
  slurm_job_id TEXT,
  slurm_cluster TEXT,
  state TEXT NOT NULL,
  finished_at REAL,
  message TEXT
);
CREATE TABLE IF NOT EXISTS inbox(
  source TEXT PRIMARY KEY,
  proposal INTEGER NOT NULL,
  run INTEGER NOT NULL,
  kind TEXT NOT NULL,
  added_at REAL NOT NULL,
  received_at REAL NOT NULL,
  handled_at REAL
);
CREATE INDEX IF NOT EXISTS processing_requests_run ON processing_requests(db_dir, proposal, run, data, state);
`;

/** What src/listener/run-watcher.ts added when it first watched (copied verbatim). */
const OLD_WATCHER_SCHEMA = `
CREATE TABLE IF NOT EXISTS watched_runs(proposal INTEGER NOT NULL, run INTEGER NOT NULL, kind TEXT NOT NULL, signature TEXT NOT NULL,
  PRIMARY KEY (proposal, run, kind));
CREATE TABLE IF NOT EXISTS watched_proposals(proposal INTEGER PRIMARY KEY, since REAL NOT NULL);
`;

const TABLES = ["proposal_databases", "settings", "processing_requests", "inbox", "watched_runs", "watched_proposals"];

/** A listener.sqlite as the old code left it after some use: every table with rows, no version recorded. */
function oldStore(dir: string): void {
  const db = new Database(join(dir, "listener.sqlite"));
  db.exec(OLD_REGISTRY_SCHEMA);
  db.exec(OLD_WATCHER_SCHEMA);
  const insert = (sql: string, ...rows: unknown[][]) => {
    const statement = db.prepare(sql);
    for (const row of rows) statement.run(...row);
  };
  insert("INSERT INTO proposal_databases(proposal, db_dir, official) VALUES (?, ?, ?)", [1234, "/data/p1234/usr/Shared/amore", 1], [1234, "/home/me/mine", 0], [77, "/x", 0]);
  // As the old code stored them: flags 1/0, numbers as numbers, text as text.
  insert("INSERT INTO settings(key, value) VALUES (?, ?)", ["static_mode", 0], ["allow_local_processing", 1], ["kafka_brokers", "b1:9091"], ["local_concurrency", 3], ["some_other_tool", "kept"]);
  insert(
    `INSERT INTO processing_requests(processing_id, db_dir, proposal, run, data, source, received_at, via, slurm_job_id, slurm_cluster, state, finished_at, message)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ["id-1", "/home/me/mine", 1234, 5, "raw", "kafka test.r2d2[0]@17 1700000000", 1700000000.5, "slurm", "101", "", "submitted", null, null],
    ["id-2", "/home/me/mine", 1234, 6, "proc", "watch p1234 r6 proc", 1700000100.25, "local", null, null, "finished", 1700000200.75, "12 results, 0 errors, 1.50 s"],
    ["id-3", "/x", 77, 1, "raw", "watch p77 r1 raw", 1700000300, null, null, null, "failed", 1700000301, "sbatch failed"],
  );
  insert(
    "INSERT INTO inbox(source, proposal, run, kind, added_at, received_at, handled_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
    ["kafka test.r2d2[0]@17 1700000000", 1234, 5, "raw", 1700000000, 1700000000.5, 1700000001],
    ["kafka test.r2d2[0]@18 1700000050", 1234, 7, "raw", 1700000050, 1700000050.5, null],
  );
  insert("INSERT INTO watched_runs(proposal, run, kind, signature) VALUES (?, ?, ?, ?)", [1234, 5, "raw", "a.h5:10:1700000000000"], [1234, 6, "proc", "b.h5:20:1700000000001"]);
  insert("INSERT INTO watched_proposals(proposal, since) VALUES (?, ?)", [1234, 1699999999.5]);
  db.close();
}

function dump(path: string): { version: number; schema: unknown[]; rows: Record<string, unknown[]> } {
  const db = new Database(path, { readonly: true });
  try {
    const rows: Record<string, unknown[]> = {};
    for (const table of TABLES) {
      const exists = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(table) !== undefined;
      rows[table] = exists ? db.prepare(`SELECT * FROM ${table} ORDER BY rowid`).all() : [];
    }
    return {
      version: Number(db.pragma("user_version", { simple: true })),
      schema: db.prepare("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name").all(),
      rows,
    };
  } finally {
    db.close();
  }
}

/** Indexes later versions add to the old code's tables. */
const ADDED_INDEXES = ["processing_requests_source"];

/** The schema objects of the tables the old code made (later versions add tables of their own beside them). */
function oldTablesOf(schema: unknown[]): unknown[] {
  return (schema as Array<{ tbl_name: string; name: string }>).filter((s) => (TABLES as readonly string[]).includes(s.tbl_name) && !ADDED_INDEXES.includes(s.name));
}

/** Tables versions after the first add, and the column v2 adds to the inbox. */
const ADDED_TABLES = ["health", "quarantine"];
const V2_INBOX_COLUMN = ", attempts INTEGER NOT NULL DEFAULT 0";

/** The columns v3 adds to processing_requests (the idempotency key, the submitting sbatch's pid). */
const V3_REQUEST_COLUMNS = [", idempotency_key TEXT", ", submit_pid INTEGER"];

/** What the old code's schema and rows look like after the later steps' ALTER TABLEs: the same but for those columns. */
function withoutV2Column<T>(value: T): T {
  let text = JSON.stringify(value).replace(V2_INBOX_COLUMN, "").replace(/,"attempts":0/g, "");
  for (const column of V3_REQUEST_COLUMNS) text = text.replace(column, "");
  text = text.replace(/,"idempotency_key":null,"submit_pid":null/g, "");
  return JSON.parse(text) as T;
}

function tablesOf(schema: unknown[]): string[] {
  return (schema as Array<{ type: string; name: string }>).filter((s) => s.type === "table" && !s.name.startsWith("sqlite_")).map((s) => s.name).sort();
}

describe("listener store", () => {
  it("adopts a store made before versions were kept: every row kept, the version made current, the parts read it", () => {
    const dir = tempDir();
    oldStore(dir);
    const before = dump(join(dir, "listener.sqlite"));
    expect(before.version).toBe(0);
    expect(Object.values(before.rows).every((rows) => rows.length > 0)).toBe(true);

    const store = ListenerStore.open(dir);
    try {
      expect(store.databases.list().map((d) => [d.proposal, d.dbDir, d.official])).toEqual([
        [77, "/x", false],
        [1234, "/data/p1234/usr/Shared/amore", true],
        [1234, "/home/me/mine", false],
      ]);
      expect(store.settings.get("static_mode")).toBe(false);
      expect(store.settings.get("local_concurrency")).toBe(3);
      expect(store.settings.all().some_other_tool).toBe("kept");
      expect(store.inbox.pending().map((e) => e.source)).toEqual(["kafka test.r2d2[0]@18 1700000050"]);
      expect(store.inbox.wasHandled("kafka test.r2d2[0]@17 1700000000")).toBe(true);
      expect(store.requests.active("/home/me/mine", 1234, 5, "raw").map((r) => r.processingId)).toEqual(["id-1"]);
      expect(store.requests.latest().map((r) => r.processingId)).toEqual(["id-3", "id-2", "id-1"]);
      expect(store.watcher.seenSignature(1234, 6, "proc")).toBe("b.h5:20:1700000000001");
      expect(store.watcher.isWatched(1234)).toBe(true);
    } finally {
      store.close();
    }

    const after = dump(join(dir, "listener.sqlite"));
    expect(after.version).toBe(LATEST_STORE_VERSION);
    expect(withoutV2Column(oldTablesOf(after.schema))).toEqual(before.schema);
    expect(tablesOf(after.schema)).toEqual([...tablesOf(before.schema), ...ADDED_TABLES].sort());
    // Every row as it was; the only addition is none (all stored defaults were already there).
    expect(withoutV2Column(after.rows)).toEqual(before.rows);
  });

  it("makes a new store with exactly the schema the old code made, DAMNIT's tables as DAMNIT has them", () => {
    const old = tempDir();
    oldStore(old);
    const dir = join(tempDir(), "new", "listener");
    ListenerStore.open(dir).close();
    const made = dump(join(dir, "listener.sqlite"));
    expect(made.version).toBe(LATEST_STORE_VERSION);
    const oldSchema = dump(join(old, "listener.sqlite")).schema;
    expect(withoutV2Column(oldTablesOf(made.schema))).toEqual(oldSchema);
    expect(tablesOf(made.schema)).toEqual([...tablesOf(oldSchema), ...ADDED_TABLES].sort());
    const sqlOf = (name: string) => (made.schema as Array<{ name: string; sql: string }>).find((s) => s.name === name)?.sql;
    expect(sqlOf("proposal_databases")).toBe("CREATE TABLE proposal_databases(proposal, db_dir UNIQUE, official)");
    expect(sqlOf("settings")).toBe("CREATE TABLE settings(key PRIMARY KEY NOT NULL, value)");
    expect(sqlOf("proposals")).toBe("CREATE INDEX proposals ON proposal_databases(proposal)");
    expect(made.rows.settings).toEqual([
      { key: "allow_local_processing", value: 0 },
      { key: "static_mode", value: 1 },
    ]);
  });

  it("adopts DAMNIT's own store (its two tables only), adding ours and keeping its rows", () => {
    const dir = tempDir();
    const db = new Database(join(dir, "listener.sqlite"));
    db.exec("CREATE TABLE IF NOT EXISTS proposal_databases(proposal, db_dir UNIQUE, official); CREATE INDEX IF NOT EXISTS proposals ON proposal_databases(proposal);");
    db.exec("CREATE TABLE IF NOT EXISTS settings(key PRIMARY KEY NOT NULL, value)");
    db.prepare("INSERT INTO proposal_databases VALUES (?, ?, ?)").run(1234, "/data/db", 1);
    db.prepare("INSERT INTO settings VALUES (?, ?)").run("static_mode", 1);
    db.close();
    const store = ListenerStore.open(dir);
    try {
      expect(store.databases.list()).toEqual([{ proposal: 1234, dbDir: "/data/db", official: true }]);
      expect(store.requests.latest()).toEqual([]);
      expect(store.inbox.pending()).toEqual([]);
    } finally {
      store.close();
    }
    const after = dump(join(dir, "listener.sqlite"));
    expect(after.version).toBe(LATEST_STORE_VERSION);
    expect(after.rows.proposal_databases).toEqual([{ proposal: 1234, db_dir: "/data/db", official: 1 }]);
    expect(after.rows.settings).toEqual([
      { key: "static_mode", value: 1 },
      { key: "allow_local_processing", value: 0 },
    ]);
  });

  it("refuses a store from a newer damnit with TOO_NEW and leaves it byte for byte as it was", () => {
    const dir = tempDir();
    ListenerStore.open(dir).close();
    const path = join(dir, "listener.sqlite");
    const db = new Database(path);
    db.pragma(`user_version = ${LATEST_STORE_VERSION + 1}`);
    db.prepare("DELETE FROM settings WHERE key = 'allow_local_processing'").run(); // a default that opening would insert
    db.close();
    const bytes = readFileSync(path);
    let error: unknown;
    try {
      ListenerStore.open(dir).close();
    } catch (err) {
      error = err;
    }
    expect(isDamnitError(error, "TOO_NEW"), String(error)).toBe(true);
    expect((error as Error).message).toMatch(new RegExp(`v${LATEST_STORE_VERSION + 1}, newer than this damnit understands`));
    expect(readFileSync(path).equals(bytes)).toBe(true);
    expect(readdirSync(dir)).toEqual(["listener.sqlite"]);
  });

  it("with create: false, a missing store is a NO_DATABASE error and nothing is created", () => {
    const dir = join(tempDir(), "nothing-here");
    let error: unknown;
    try {
      ListenerStore.open(dir, { create: false });
    } catch (err) {
      error = err;
    }
    expect(isDamnitError(error, "NO_DATABASE"), String(error)).toBe(true);
    expect(existsSync(dir)).toBe(false);
  });

  it("the databases' snapshot follows changes made by another connection", async () => {
    const dir = tempDir();
    const a = ListenerStore.open(dir);
    const b = ListenerStore.open(dir);
    try {
      expect(a.databases.mayConcern(1234)).toBe(false);
      b.databases.add(1234, "/data/db", false);
      // Re-read at most every 250 ms: wait, bounded, for the change to be seen.
      const deadline = Date.now() + 5000;
      while (!a.databases.mayConcern(1234) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(a.databases.mayConcern(1234)).toBe(true);
      // This connection's own change is seen at once.
      a.settings.set("static_mode", 0);
      expect(a.databases.mayConcern(999)).toBe(true);
    } finally {
      a.close();
      b.close();
    }
  });
});
