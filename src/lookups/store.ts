/**
 * The lookup recorder's SQLite file (`lookups.sqlite`, spec satellites §A.2): one row per recorded request/response
 * in `responses` (status −1 while a recorder is fetching it), one row per served request in `lookup_usage`. Many
 * recorders on many hosts share one file, so: rollback journal (WAL needs shared memory, which network file
 * systems lack), a busy timeout, and only short `BEGIN IMMEDIATE` transactions; no transaction is open while a
 * recorder talks to an upstream (§A.4).
 */
import Database from "better-sqlite3";
import { accessSync, constants, existsSync } from "node:fs";
import { dirname } from "node:path";
import { hostname } from "node:os";
import { DamnitError } from "../core/errors.js";
import { isSqliteError } from "../core/sqlite-errors.js";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS responses(
  key          TEXT PRIMARY KEY,
  method       TEXT NOT NULL,
  service      TEXT NOT NULL,
  path         TEXT NOT NULL,
  query        TEXT NOT NULL,
  req_body     BLOB,
  status       INTEGER NOT NULL,
  resp_headers TEXT,
  resp_body    BLOB,
  requested_at REAL NOT NULL,
  responded_at REAL,
  node         TEXT,
  hits         INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS lookup_usage(
  processing_id TEXT, proposal INTEGER, run INTEGER, key TEXT,
  served_from TEXT CHECK(served_from IN ('upstream','cache','waited','upstream-after-wait')),
  at REAL
);
CREATE INDEX IF NOT EXISTS lookup_usage_run ON lookup_usage(proposal, run);
`;

/**
 * How long served-request bookkeeping (hits, lookup_usage rows) waits to be written with others in one transaction.
 * Each commit costs the rollback journal's fsyncs, on the event loop (better-sqlite3 is synchronous), so fewer
 * commits make cache hits cheaper (see flush). Closing (the job's end) writes what is left.
 */
export const USAGE_FLUSH_MS = 500;
/** lookup_usage rows per INSERT statement when writing them (6 values each: well under SQLite's 32766 variables). */
const USAGE_ROWS_PER_INSERT = 64;

export interface Usage {
  readonly processingId: string | null;
  readonly proposal: number | null;
  readonly run: number | null;
  readonly key: string;
  readonly servedFrom: ServedFrom;
}

/** Busy timeout (ms): at least the 10 s of §A.3; a recorder answers 503 only after it. */
export const LOOKUP_BUSY_TIMEOUT_MS = 15_000;

export type ServedFrom = "upstream" | "cache" | "waited" | "upstream-after-wait";

export interface StoredResponse {
  readonly key: string;
  readonly method: string;
  readonly service: string;
  readonly path: string;
  readonly query: string;
  readonly status: number;
  /** content-type and content-encoding only */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer;
  readonly requestedAt: number;
  readonly respondedAt: number | null;
  readonly node: string | null;
  readonly hits: number;
}

export interface PendingRequest {
  readonly key: string;
  readonly method: string;
  readonly service: string;
  readonly path: string;
  readonly query: string;
  readonly body: Buffer;
}

export interface FreshResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer;
}

/** What `claim` found: a stored answer, our own new pending row, or someone else's pending row. */
export type Claim = { readonly kind: "hit"; readonly response: StoredResponse } | { readonly kind: "mine" } | { readonly kind: "pending" };

interface Row {
  key: string;
  method: string;
  service: string;
  path: string;
  query: string;
  status: number;
  resp_headers: string | null;
  resp_body: Buffer | null;
  requested_at: number;
  responded_at: number | null;
  node: string | null;
  hits: number;
}

function toStored(row: Row): StoredResponse {
  return {
    key: row.key,
    method: row.method,
    service: row.service,
    path: row.path,
    query: row.query,
    status: row.status,
    headers: row.resp_headers ? (JSON.parse(row.resp_headers) as Record<string, string>) : {},
    body: row.resp_body ?? Buffer.alloc(0),
    requestedAt: row.requested_at,
    respondedAt: row.responded_at,
    node: row.node,
    hits: row.hits,
  };
}

const now = (): number => Date.now() / 1000;

/** This recorder's name in `node` columns. */
export function defaultNodeName(): string {
  return `${hostname()}:${process.pid}`;
}

export class LookupStore {
  private readonly sqlite: Database.Database;
  private readonly stmts;
  /** served requests not yet written: [usage, count as a hit, when] */
  private pendingUsage: Array<[Usage, boolean, number]> = [];
  private flushTimer: NodeJS.Timeout | undefined;

  private constructor(
    readonly file: string,
    sqlite: Database.Database,
  ) {
    this.sqlite = sqlite;
    const s = (sql: string) => sqlite.prepare(sql);
    this.stmts = {
      get: s("SELECT * FROM responses WHERE key = ?"),
      status: s("SELECT status FROM responses WHERE key = ?"),
      hit: s("UPDATE responses SET hits = hits + ? WHERE key = ?"),
      insertPending: s(
        "INSERT INTO responses(key, method, service, path, query, req_body, status, requested_at, node) VALUES (?, ?, ?, ?, ?, ?, -1, ?, ?)",
      ),
      complete: s(
        "UPDATE responses SET status = ?, resp_headers = ?, resp_body = ?, responded_at = ?, node = ? WHERE key = ? AND status = -1",
      ),
      insertDone: s(
        "INSERT OR IGNORE INTO responses(key, method, service, path, query, req_body, status, resp_headers, resp_body, requested_at, responded_at, node) " +
          "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
      ),
      abandon: s("DELETE FROM responses WHERE key = ? AND status = -1 AND node = ?"),
      usage: s("INSERT INTO lookup_usage(processing_id, proposal, run, key, served_from, at) VALUES (?, ?, ?, ?, ?, ?)"),
      usageMany: s(`INSERT INTO lookup_usage(processing_id, proposal, run, key, served_from, at) VALUES ${Array(USAGE_ROWS_PER_INSERT).fill("(?, ?, ?, ?, ?, ?)").join(", ")}`),
    };
  }

  /**
   * Open (creating when missing) the file. Refused with LOOKUP_DB, naming the file, when its directory is not
   * writable or it is not a lookups database (damaged, or another kind of file).
   */
  static open(file: string, opts: { readonly?: boolean; busyTimeoutMs?: number } = {}): LookupStore {
    if (!opts.readonly) {
      const target = existsSync(file) ? file : dirname(file);
      try {
        accessSync(target, constants.W_OK);
      } catch (err) {
        throw new DamnitError("LOOKUP_DB", `cannot write the lookups database ${file}: ${(err as Error).message}`, { cause: err });
      }
    }
    let sqlite: Database.Database | undefined;
    try {
      sqlite = new Database(file, { readonly: opts.readonly ?? false, fileMustExist: opts.readonly ?? false, timeout: opts.busyTimeoutMs ?? LOOKUP_BUSY_TIMEOUT_MS });
      if (!opts.readonly) {
        // DELETE unless already so: setting it again is free, and a WAL file left by someone is turned back.
        if (String(sqlite.pragma("journal_mode", { simple: true })).toLowerCase() !== "delete") sqlite.pragma("journal_mode = DELETE");
        sqlite.exec(SCHEMA);
      } else {
        sqlite.prepare("SELECT count(*) FROM responses").get();
      }
      return new LookupStore(file, sqlite);
    } catch (err) {
      sqlite?.close();
      if (err instanceof DamnitError) throw err;
      if (isSqliteError(err) && /^SQLITE_(NOTADB|CORRUPT|CANTOPEN|READONLY|IOERR|ERROR)/.test(err.code)) {
        throw new DamnitError("LOOKUP_DB", `the lookups database ${file} cannot be used: ${err.message}`, { cause: err });
      }
      throw err;
    }
  }

  /** Writes what is still buffered, then closes. */
  close(): void {
    this.flush();
    this.sqlite.close();
  }

  /**
   * A completed row, read without a write lock: the fast path of §A.4 step 2 (a completed row never turns pending
   * again, so finding it outside the transaction is the same answer). Undefined: take `claim`.
   */
  completed(key: string): StoredResponse | undefined {
    return this.lookup(key);
  }

  /** §A.4 steps 1–4: in one short write transaction, serve a stored answer, or insert our pending row, or see a peer's. */
  claim(req: PendingRequest, node: string): Claim {
    return this.immediate(() => {
      const row = this.stmts.get.get(req.key) as Row | undefined;
      if (row && row.status >= 0) {
        return { kind: "hit", response: toStored(row) } as const;
      }
      if (row) return { kind: "pending" } as const;
      this.stmts.insertPending.run(req.key, req.method, req.service, req.path, req.query, req.body, now(), node);
      return { kind: "mine" } as const;
    });
  }

  /** A completed row (status ≥ 0), without writing (replay mode reads through this, then counts the hit). */
  lookup(key: string): StoredResponse | undefined {
    const row = this.stmts.get.get(key) as Row | undefined;
    return row && row.status >= 0 ? toStored(row) : undefined;
  }

  /** The row's status as seen now (a short read), or undefined when there is no row. */
  statusOf(key: string): number | undefined {
    const row = this.stmts.status.get(key) as { status: number } | undefined;
    return row?.status;
  }

  /**
   * Store a fetched answer: first completed answer wins (the pending row is updated only while still −1). When the
   * pending row is gone (its owner gave up on a 5xx), the answer is inserted, unless another landed meanwhile.
   * Returns whether ours is the stored one.
   */
  complete(req: PendingRequest, fresh: FreshResponse, node: string): boolean {
    const headers = JSON.stringify(fresh.headers);
    return this.immediate(() => {
      const t = now();
      if (this.stmts.complete.run(fresh.status, headers, fresh.body, t, node, req.key).changes > 0) return true;
      return (
        this.stmts.insertDone.run(req.key, req.method, req.service, req.path, req.query, req.body, fresh.status, headers, fresh.body, t, t, node).changes > 0
      );
    });
  }

  /** Remove our pending row (only while still −1 and ours): nothing is cached after a failure. */
  abandon(key: string, node: string): void {
    this.immediate(() => this.stmts.abandon.run(key, node));
  }

  /**
   * A served request: one `lookup_usage` row (and one more hit when served from the record), written within
   * USAGE_FLUSH_MS together with the others served meanwhile, so that a cache hit costs no commit of its own.
   */
  noteServed(usage: Usage, hit: boolean): void {
    this.pendingUsage.push([usage, hit, now()]);
    this.flushTimer ??= setTimeout(() => {
      this.flushTimer = undefined;
      try {
        this.flush();
      } catch {
        // kept buffered (e.g. busy); the next flush or close writes them
      }
    }, USAGE_FLUSH_MS).unref();
  }

  /**
   * Write the buffered bookkeeping in one transaction. A read-only database (an archived record replayed) serves
   * all the same; its bookkeeping is dropped, and the count of dropped rows returned.
   */
  flush(): number {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    const batch = this.pendingUsage;
    if (batch.length === 0) return 0;
    this.pendingUsage = [];
    try {
      // Profiled under load (8 clients, cache hits): this transaction took a third of the recorder's busy time with
      // one INSERT and one hit UPDATE per served request every 100 ms; with INSERTs of USAGE_ROWS_PER_INSERT rows,
      // one UPDATE per key and USAGE_FLUSH_MS at 500 ms, a fifth (what is left is mostly the commit's fsyncs).
      const hits = new Map<string, number>();
      for (const [u, hit] of batch) if (hit) hits.set(u.key, (hits.get(u.key) ?? 0) + 1);
      this.immediate(() => {
        let i = 0;
        const values: unknown[] = [];
        for (; i + USAGE_ROWS_PER_INSERT <= batch.length; i += USAGE_ROWS_PER_INSERT) {
          values.length = 0;
          for (let j = i; j < i + USAGE_ROWS_PER_INSERT; j++) {
            const [u, , at] = batch[j]!;
            values.push(u.processingId, u.proposal, u.run, u.key, u.servedFrom, at);
          }
          this.stmts.usageMany.run(values);
        }
        for (; i < batch.length; i++) {
          const [u, , at] = batch[i]!;
          this.stmts.usage.run(u.processingId, u.proposal, u.run, u.key, u.servedFrom, at);
        }
        for (const [key, n] of hits) this.stmts.hit.run(n, key);
      });
      return 0;
    } catch (err) {
      if (isSqliteError(err) && err.code.startsWith("SQLITE_READONLY")) return batch.length;
      this.pendingUsage = batch.concat(this.pendingUsage);
      throw err;
    }
  }

  // ---- management (damnit lookups list/show/export/purge/drop-pending) ----

  list(filter: { proposal?: number; run?: number } = {}): StoredResponse[] {
    const rows =
      filter.run === undefined
        ? (this.sqlite.prepare("SELECT * FROM responses ORDER BY requested_at, key").all() as Row[])
        : (this.sqlite
            .prepare(
              "SELECT * FROM responses WHERE key IN (SELECT key FROM lookup_usage WHERE run = ? AND (? IS NULL OR proposal = ?)) ORDER BY requested_at, key",
            )
            .all(filter.run, filter.proposal ?? null, filter.proposal ?? null) as Row[]);
    return rows.map(toStored);
  }

  show(key: string): StoredResponse | undefined {
    const row = this.stmts.get.get(key) as Row | undefined;
    return row ? toStored(row) : undefined;
  }

  usageOf(filter: { proposal?: number; run?: number; processingId?: string }): Array<{ processingId: string | null; proposal: number | null; run: number | null; key: string; servedFrom: ServedFrom; at: number }> {
    return (
      this.sqlite
        .prepare(
          "SELECT processing_id, proposal, run, key, served_from, at FROM lookup_usage WHERE (? IS NULL OR proposal = ?) AND (? IS NULL OR run = ?) AND (? IS NULL OR processing_id = ?) ORDER BY at, rowid",
        )
        .all(filter.proposal ?? null, filter.proposal ?? null, filter.run ?? null, filter.run ?? null, filter.processingId ?? null, filter.processingId ?? null) as Array<{
        processing_id: string | null;
        proposal: number | null;
        run: number | null;
        key: string;
        served_from: ServedFrom;
        at: number;
      }>
    ).map((r) => ({ processingId: r.processing_id, proposal: r.proposal, run: r.run, key: r.key, servedFrom: r.served_from, at: r.at }));
  }

  /** Delete completed rows answered more than `days` days ago; returns how many. */
  purgeOlderThan(days: number): number {
    const cutoff = now() - days * 86400;
    return this.immediate(() => this.sqlite.prepare("DELETE FROM responses WHERE status >= 0 AND responded_at < ?").run(cutoff).changes);
  }

  /** Delete every pending row (left by recorders that died); returns how many. */
  dropPending(): number {
    return this.immediate(() => this.sqlite.prepare("DELETE FROM responses WHERE status = -1").run().changes);
  }

  /** A consistent copy of the whole file (to travel with a job's metadata), made with VACUUM INTO. */
  exportTo(file: string): void {
    if (existsSync(file)) throw new DamnitError("BAD_ARGUMENT", `${file} exists already; give a new file to export to`);
    this.sqlite.prepare("VACUUM INTO ?").run(file);
  }

  private immediate<T>(fn: () => T): T {
    return this.sqlite.transaction(fn).immediate();
  }
}
