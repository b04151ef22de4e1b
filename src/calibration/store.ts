/**
 * One calibration-constant store, `<root>/calib.sqlite` (spec §D.2, §D.6): detectors → ctypes → validity ranges →
 * numbered versions, with parameters and history on every level. Writes run in BEGIN IMMEDIATE transactions on a
 * rollback journal with a busy timeout (the store lives on shared file systems), so two writers are serialised and
 * a reader sees the old or the new state, never half of a change. None of PSCalib's write-once defects: a changed
 * default persists, deleting the default version resets it, an existing explicit version is refused, and version
 * numbers are integers (more than 9999 order correctly).
 */
import Database from "better-sqlite3";
import { existsSync, mkdirSync } from "node:fs";
import { hostname, userInfo } from "node:os";
import { join } from "node:path";
import { DamnitError } from "../core/errors.js";
import { isSqliteError } from "../core/sqlite-errors.js";
import { isCtype, type Ctype } from "./ctypes.js";
import { fromStored, toStored, type CalibValue } from "./data.js";
import { calibVersion, refuseNewer, upgradeCalib } from "./schema.js";

export const CALIB_FILE_NAME = "calib.sqlite";
/** Page cache (KiB) of a bulk add. */
const BULK_CACHE_KIB = 256 * 1024;

export interface CalibHit {
  readonly detname: string;
  readonly ctype: Ctype;
  readonly range: string;
  readonly begin: number;
  readonly end: number | null;
  readonly version: number;
  readonly tsprod: number;
  readonly dtype: string;
  readonly shape: readonly number[];
  readonly value: CalibValue;
}

export interface AddRequest {
  readonly detector: string;
  readonly ctype: string;
  /** Start of validity (s); the range is `[floor(at), end]`, open-ended unless `end` is given. */
  readonly at: number;
  readonly end?: number;
  readonly value: CalibValue;
  readonly version?: number;
  readonly message?: string;
  readonly experiment?: string;
  readonly run?: number;
  readonly predecessor?: string;
  readonly successor?: string;
  /** Production time (s); default now. */
  readonly tsprod?: number;
}

interface RangeRow {
  detname: string;
  ctype: string;
  key: string;
  begin: number;
  end: number | null;
  versdef: number;
}

export function rangeKey(begin: number, end: number | null): string {
  return `${Math.floor(begin)}-${end === null ? "end" : Math.ceil(end)}`;
}

/** `<dettype>-<detid>`, split at the first dash (PSCalib's file-name rule). */
export function splitDetname(detname: string): { dettype: string; detid: string } {
  const dash = detname.indexOf("-");
  if (dash <= 0 || dash === detname.length - 1 || /[\s/]/.test(detname)) {
    throw new DamnitError("CALIB_UNKNOWN_DETECTOR", `invalid detector name '${detname}': expected <dettype>-<detid>, e.g. epix100a-0001`);
  }
  return { dettype: detname.slice(0, dash), detid: detname.slice(dash + 1) };
}

export function checkTime(t: number, what = "time"): number {
  if (typeof t !== "number" || !Number.isFinite(t)) throw new DamnitError("CALIB_BAD_TIME", `bad ${what} ${String(t)}: expected a finite number of seconds`);
  return t;
}

export const scopes = {
  detector: (d: string) => `det:${d}`,
  ctype: (d: string, c: string) => `ctype:${d}/${c}`,
  range: (d: string, c: string, k: string) => `range:${d}/${c}/${k}`,
  version: (d: string, c: string, k: string, v: number) => `version:${d}/${c}/${k}/v${v}`,
};

export interface StoreOptions {
  readonly create?: boolean;
  readonly readonly?: boolean;
  /** Busy timeout in ms (how long a writer waits for the lock). Default 10 s. */
  readonly timeoutMs?: number;
}

/** The version of the range `r` that a get returns (`@version` if given, else the default, else the last), joined to it. */
const VERSION_OF_RANGE = `
SELECT r.key AS key, r.begin AS begin, r."end" AS "end", v.vnum AS vnum, v.tsprod AS tsprod, v.dtype AS dtype, v.shape AS shape, v.data AS data, v.text AS text
FROM r LEFT JOIN versions v ON v.detname = r.detname AND v.ctype = r.ctype AND v.range_key = r.key
  AND v.vnum = COALESCE(@version, NULLIF(r.versdef, 0),
                        (SELECT MAX(m.vnum) FROM versions m WHERE m.detname = r.detname AND m.ctype = r.ctype AND m.range_key = r.key))`;

const RESOLVE_BY_TIME = `WITH r AS (SELECT detname, ctype, key, begin, "end", versdef FROM ranges
  WHERE detname = @detname AND ctype = @ctype AND begin <= @at AND ("end" IS NULL OR "end" >= @at)
  ORDER BY begin DESC, ("end" IS NULL) ASC, "end" ASC LIMIT 1) ${VERSION_OF_RANGE}`;

const RESOLVE_BY_KEY = `WITH r AS (SELECT detname, ctype, key, begin, "end", versdef FROM ranges
  WHERE detname = @detname AND ctype = @ctype AND key = @key) ${VERSION_OF_RANGE}`;

interface CheckedAdd {
  readonly ctype: Ctype;
  readonly begin: number;
  readonly end: number | null;
  readonly stored: ReturnType<typeof toStored>;
}

/** What an add needs checked before it takes the lock: known ctype, times, version number, the value's type. */
function checkAdd(req: AddRequest, stored?: CheckedAdd["stored"]): CheckedAdd {
  if (!isCtype(req.ctype)) throw new DamnitError("CALIB_UNKNOWN_CTYPE", `unknown calibration type '${req.ctype}'; known: ${KNOWN}`);
  const begin = checkTime(req.at);
  const end = req.end === undefined ? null : checkTime(req.end, "end time");
  if (end !== null && end < begin) throw new DamnitError("CALIB_BAD_TIME", `range end ${end} is before its begin ${begin}`);
  if (req.version !== undefined && (!Number.isInteger(req.version) || req.version < 1)) {
    throw new DamnitError("BAD_ARGUMENT", `bad version ${req.version}: expected a whole number ≥ 1`);
  }
  return { ctype: req.ctype, begin, end, stored: stored ?? toStored(req.ctype, req.value) };
}

export class CalibStore {
  private constructor(
    private readonly db: Database.Database,
    readonly root: string,
    readonly path: string,
  ) {}

  static exists(root: string): boolean {
    return existsSync(join(root, CALIB_FILE_NAME));
  }

  static open(root: string, opts: StoreOptions = {}): CalibStore {
    const path = join(root, CALIB_FILE_NAME);
    const create = (opts.create ?? true) && !opts.readonly;
    if (!create && !existsSync(path)) throw new DamnitError("NO_DATABASE", `no calibration store at ${path}`);
    if (create) mkdirSync(root, { recursive: true });
    let db: Database.Database | undefined;
    try {
      db = new Database(path, { timeout: opts.timeoutMs ?? 10_000, readonly: opts.readonly ?? false, fileMustExist: !create });
      if (!opts.readonly) {
        if ((db.pragma("journal_mode", { simple: true }) as string) !== "delete") db.pragma("journal_mode = DELETE");
        db.pragma("foreign_keys = ON");
        upgradeCalib(db, path);
      } else {
        refuseNewer(calibVersion(db), path);
      }
      return new CalibStore(db, root, path);
    } catch (err) {
      db?.close();
      throw translate(err, path);
    }
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  /** Compiled statements, kept: compiling costs more than running most of them. */
  private readonly statements = new Map<string, Database.Statement>();

  private sql(text: string): Database.Statement {
    let stmt = this.statements.get(text);
    if (!stmt) {
      stmt = this.db.prepare(text);
      this.statements.set(text, stmt);
    }
    return stmt;
  }

  private write<T>(fn: () => T): T {
    try {
      return this.db.transaction(fn).immediate();
    } catch (err) {
      throw translate(err, this.path);
    }
  }

  /** user@host of this process, for history records (asked once: userInfo is a system call). */
  private who: string | undefined;

  private history(scope: string, record: string, message?: string): void {
    const who = (this.who ??= `${safeUser()}@${hostname()}`);
    const text = message ? `${record}: ${message} (${who})` : `${record} (${who})`;
    this.sql("INSERT INTO history(scope, tsec, record) VALUES (?, ?, ?)").run(scope, Date.now() / 1000, text);
  }

  /** Add a constant (PSCalib's add_constants): creates detector, ctype and range as needed, then version last+1 or the given one. */
  add(req: AddRequest): { detname: string; range: string; version: number } {
    const checked = checkAdd(req);
    return this.write(() => this.addChecked(req, checked));
  }

  /** Many adds in one transaction (bulk loading): all or none. Returns how many were added. */
  addMany(reqs: Iterable<AddRequest>): number {
    let n = 0;
    // One value object added many times is encoded once.
    const encoded = new Map<string, WeakMap<object, CheckedAdd["stored"]>>();
    // A transaction larger than the page cache spills pages to the file, each spill synced: give it room instead.
    const cacheSize = this.db.pragma("cache_size", { simple: true }) as number;
    this.db.pragma(`cache_size = ${-BULK_CACHE_KIB}`);
    try {
      this.write(() => {
        for (const req of reqs) {
          let byValue = encoded.get(req.ctype);
          if (!byValue) encoded.set(req.ctype, (byValue = new WeakMap()));
          const key = typeof req.value === "object" ? req.value : undefined;
          const known = key ? byValue.get(key) : undefined;
          const checked = checkAdd(req, known);
          if (key && !known) byValue.set(key, checked.stored);
          this.addChecked(req, checked);
          n++;
        }
      });
    } finally {
      this.db.pragma(`cache_size = ${cacheSize}`);
    }
    return n;
  }

  private addChecked(req: AddRequest, { ctype, begin, end, stored }: CheckedAdd): { detname: string; range: string; version: number } {
    const detname = this.resolveDetector(req.detector, begin, true)!;
    const { dettype, detid } = splitDetname(detname);
    const now = Date.now() / 1000;
    if (!this.sql("SELECT 1 FROM detectors WHERE detname = ?").get(detname)) {
      this.sql("INSERT INTO detectors(detname, dettype, detid, created) VALUES (?, ?, ?, ?)").run(detname, dettype, detid, now);
    }
    if (req.predecessor !== undefined) this.sql("UPDATE detectors SET predecessor = ? WHERE detname = ?").run(req.predecessor, detname);
    if (req.successor !== undefined) this.sql("UPDATE detectors SET successor = ? WHERE detname = ?").run(req.successor, detname);
    if (!this.sql("SELECT 1 FROM ctypes WHERE detname = ? AND ctype = ?").get(detname, ctype)) {
      this.sql("INSERT INTO ctypes(detname, ctype) VALUES (?, ?)").run(detname, ctype);
      this.history(scopes.detector(detname), `add ctype ${ctype}`);
    }
    const key = rangeKey(begin, end);
    if (!this.sql("SELECT 1 FROM ranges WHERE detname = ? AND ctype = ? AND key = ?").get(detname, ctype, key)) {
      this.sql(`INSERT INTO ranges(detname, ctype, key, begin, "end", versdef) VALUES (?, ?, ?, ?, ?, 0)`).run(detname, ctype, key, begin, end);
      this.history(scopes.ctype(detname, ctype), `add range ${key}`, `exp=${req.experiment ?? ""}:run=${req.run ?? ""}`);
    }
    const rscope = scopes.range(detname, ctype, key);
    if (req.experiment !== undefined) this.setParam(rscope, "experiment", req.experiment);
    if (req.run !== undefined) this.setParam(rscope, "run", req.run);
    const last = this.lastVersion(detname, ctype, key);
    let vnum = last + 1;
    if (req.version !== undefined) {
      if (this.sql("SELECT 1 FROM versions WHERE detname = ? AND ctype = ? AND range_key = ? AND vnum = ?").get(detname, ctype, key, req.version)) {
        throw new DamnitError("CALIB_VERSION_EXISTS", `${detname} ${ctype} range ${key} already has version ${req.version}; delete it first or add without --version`);
      }
      vnum = req.version;
    }
    this.sql("INSERT INTO versions(detname, ctype, range_key, vnum, tsprod, dtype, shape, data, text) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
      .run(detname, ctype, key, vnum, req.tsprod ?? now, stored.dtype, JSON.stringify(stored.shape), stored.data, stored.text);
    this.history(rscope, `add version ${vnum}`, req.message);
    return { detname, range: key, version: vnum };
  }

  /** The constant that applies at `at` (§D.2 resolution rules), or null. Unknown detectors/aliases give null too. */
  tryGet(q: { detector: string; ctype: string; at: number; version?: number; range?: string }): CalibHit | null {
    if (!isCtype(q.ctype)) throw new DamnitError("CALIB_UNKNOWN_CTYPE", `unknown calibration type '${q.ctype}'; known: ${KNOWN}`);
    const at = checkTime(q.at);
    try {
      // The common case, a detector's own name, is one statement; an alias costs two more on a miss.
      const direct = this.resolve(q.detector, q.ctype, at, q.version, q.range);
      if (direct !== undefined) return direct;
      if (this.sql("SELECT 1 FROM detectors WHERE detname = ?").get(q.detector)) return null;
      const detname = this.resolveDetector(q.detector, at, false);
      return detname === null ? null : (this.resolve(detname, q.ctype, at, q.version, q.range) ?? null);
    } catch (err) {
      throw translate(err, this.path);
    }
  }

  /**
   * §D.2 rules in one statement: the winning range (latest begin; for equal begins closed before open, shorter
   * before longer; bounds inclusive) or the range named, then the version asked for, else the range's default,
   * else its last. Undefined when no range applies, null when the range lacks the version (no fall-through).
   */
  private resolve(detname: string, ctype: string, at: number, version: number | undefined, range: string | undefined): CalibHit | null | undefined {
    const params = range === undefined ? { detname, ctype, at, version: version ?? null } : { detname, ctype, key: range, version: version ?? null };
    const row = this.sql(range === undefined ? RESOLVE_BY_TIME : RESOLVE_BY_KEY).get(params) as
      | { key: string; begin: number; end: number | null; vnum: number | null; tsprod: number; dtype: string; shape: string; data: Buffer | null; text: string | null }
      | undefined;
    if (!row) return undefined;
    if (row.vnum === null) return null;
    const shape = JSON.parse(row.shape) as number[];
    return {
      detname,
      ctype: ctype as Ctype,
      range: row.key,
      begin: row.begin,
      end: row.end,
      version: row.vnum,
      tsprod: row.tsprod,
      dtype: row.dtype,
      shape,
      value: fromStored(row, shape),
    };
  }

  get(q: { detector: string; ctype: string; at: number; version?: number; range?: string }): CalibHit {
    const hit = this.tryGet(q);
    if (hit === null) throw notFound(q.detector, q.ctype, q.at, q.version, q.range);
    return hit;
  }

  private lastVersion(detname: string, ctype: string, key: string): number {
    const r = this.sql("SELECT MAX(vnum) AS v FROM versions WHERE detname = ? AND ctype = ? AND range_key = ?").get(detname, ctype, key) as { v: number | null };
    return r.v ?? 0;
  }

  /** Detector name for `name` (a detector or an alias valid at `at`); with `create`, an unknown name is a new detector. */
  private resolveDetector(name: string, at: number, create: boolean): string | null {
    if (this.sql("SELECT 1 FROM detectors WHERE detname = ?").get(name)) return name;
    const alias = this.sql(`SELECT detname FROM aliases WHERE alias = ? AND (begin IS NULL OR begin <= ?) AND ("end" IS NULL OR "end" >= ?) ORDER BY begin DESC LIMIT 1`)
      .get(name, at, at) as { detname: string } | undefined;
    if (alias) return alias.detname;
    if (create) {
      splitDetname(name);
      return name;
    }
    return null;
  }

  private range(detname: string, ctype: string, key: string): RangeRow | undefined {
    return this.sql("SELECT * FROM ranges WHERE detname = ? AND ctype = ? AND key = ?").get(detname, ctype, key) as RangeRow | undefined;
  }

  /** Delete one version (default: the last); null when there was none. Deleting the default version resets the default to 0. */
  deleteVersion(detname: string, ctype: string, key: string, vnum?: number, message?: string): number | null {
    return this.write(() => {
      const range = this.range(detname, ctype, key);
      if (!range) return null;
      const v = vnum ?? this.lastVersion(detname, ctype, key);
      const res = this.sql("DELETE FROM versions WHERE detname = ? AND ctype = ? AND range_key = ? AND vnum = ?").run(detname, ctype, key, v);
      if (res.changes === 0) return null;
      if (range.versdef === v) this.sql("UPDATE ranges SET versdef = 0 WHERE detname = ? AND ctype = ? AND key = ?").run(detname, ctype, key);
      this.sql("DELETE FROM params WHERE scope = ?").run(scopes.version(detname, ctype, key, v));
      this.history(scopes.range(detname, ctype, key), `del version ${v}`, message);
      return v;
    });
  }

  deleteRange(detname: string, ctype: string, key: string, message?: string): boolean {
    return this.write(() => {
      if (!this.range(detname, ctype, key)) return false;
      this.sql("DELETE FROM versions WHERE detname = ? AND ctype = ? AND range_key = ?").run(detname, ctype, key);
      this.sql("DELETE FROM ranges WHERE detname = ? AND ctype = ? AND key = ?").run(detname, ctype, key);
      this.sql("DELETE FROM params WHERE scope = ? OR scope LIKE ?").run(scopes.range(detname, ctype, key), `${scopes.version(detname, ctype, key, 0).slice(0, -2)}%`);
      this.history(scopes.ctype(detname, ctype), `del range ${key}`, message);
      return true;
    });
  }

  deleteCtype(detname: string, ctype: string, message?: string): boolean {
    return this.write(() => {
      if (!this.sql("SELECT 1 FROM ctypes WHERE detname = ? AND ctype = ?").get(detname, ctype)) return false;
      this.sql("DELETE FROM versions WHERE detname = ? AND ctype = ?").run(detname, ctype);
      this.sql("DELETE FROM ranges WHERE detname = ? AND ctype = ?").run(detname, ctype);
      this.sql("DELETE FROM ctypes WHERE detname = ? AND ctype = ?").run(detname, ctype);
      this.history(scopes.detector(detname), `del ctype ${ctype}`, message);
      return true;
    });
  }

  /** Make `vnum` the range's default version (0: the last). The version must exist. */
  setDefault(detname: string, ctype: string, key: string, vnum: number, message?: string): void {
    this.write(() => {
      if (!this.range(detname, ctype, key)) throw notFound(detname, ctype, undefined, undefined, key);
      if (vnum !== 0 && !this.sql("SELECT 1 FROM versions WHERE detname = ? AND ctype = ? AND range_key = ? AND vnum = ?").get(detname, ctype, key, vnum)) {
        throw notFound(detname, ctype, undefined, vnum, key);
      }
      this.sql("UPDATE ranges SET versdef = ? WHERE detname = ? AND ctype = ? AND key = ?").run(vnum, detname, ctype, key);
      this.history(scopes.range(detname, ctype, key), `set default version ${vnum}`, message);
    });
  }

  /** A time-bounded alias for a detector (bounds inclusive, null = unbounded). */
  addAlias(alias: string, detname: string, begin: number | null, end: number | null, message?: string): void {
    this.write(() => {
      if (!this.sql("SELECT 1 FROM detectors WHERE detname = ?").get(detname)) {
        throw new DamnitError("CALIB_UNKNOWN_DETECTOR", `no detector '${detname}' in ${this.path}`);
      }
      this.sql(`INSERT INTO aliases(alias, detname, begin, "end") VALUES (?, ?, ?, ?)`).run(alias, detname, begin, end);
      this.history(scopes.detector(detname), `add alias ${alias} ${begin ?? "-"} ${end ?? "end"}`, message);
    });
  }

  setParam(scope: string, key: string, value: string | number): void {
    this.sql("INSERT INTO params(scope, key, value) VALUES (?, ?, ?) ON CONFLICT (scope, key) DO UPDATE SET value = excluded.value").run(scope, key, value);
  }

  params(scope: string): Record<string, string | number> {
    const rows = this.sql("SELECT key, value FROM params WHERE scope = ? ORDER BY key").all(scope) as { key: string; value: string | number }[];
    return Object.fromEntries(rows.map((r) => [r.key, r.value]));
  }

  /** History records of one scope, oldest first, as `{tsec, record}`. */
  historyOf(scope: string): { tsec: number; record: string }[] {
    return this.sql("SELECT tsec, record FROM history WHERE scope = ? ORDER BY tsec, id").all(scope) as { tsec: number; record: string }[];
  }

  detectors(): { detname: string; dettype: string; detid: string; predecessor: string | null; successor: string | null; created: number }[] {
    return this.sql("SELECT * FROM detectors ORDER BY detname").all() as never;
  }

  ctypes(detname: string): string[] {
    return (this.sql("SELECT ctype FROM ctypes WHERE detname = ? ORDER BY ctype").all(detname) as { ctype: string }[]).map((r) => r.ctype);
  }

  ranges(detname: string, ctype: string): RangeRow[] {
    return this.sql(`SELECT * FROM ranges WHERE detname = ? AND ctype = ? ORDER BY begin, ("end" IS NULL) DESC, "end" DESC`).all(detname, ctype) as RangeRow[];
  }

  versions(detname: string, ctype: string, key: string): { vnum: number; tsprod: number; dtype: string; shape: number[] }[] {
    const rows = this.sql("SELECT vnum, tsprod, dtype, shape FROM versions WHERE detname = ? AND ctype = ? AND range_key = ? ORDER BY vnum")
      .all(detname, ctype, key) as { vnum: number; tsprod: number; dtype: string; shape: string }[];
    return rows.map((r) => ({ ...r, shape: JSON.parse(r.shape) as number[] }));
  }

  /** Everything the store holds of one detector (for export), or null when it has none. */
  dumpDetector(detname: string): DetectorDump | null {
    return this.db.transaction((): DetectorDump | null => {
      const d = this.sql("SELECT * FROM detectors WHERE detname = ?").get(detname) as
        | { detname: string; dettype: string; detid: string; predecessor: string | null; successor: string | null; created: number }
        | undefined;
      if (!d) return null;
      const node = (scope: string) => ({ params: this.params(scope), history: this.historyOf(scope) });
      return {
        ...d,
        ...node(scopes.detector(detname)),
        ctypes: this.ctypes(detname).map((ctype) => ({
          ctype,
          ...node(scopes.ctype(detname, ctype)),
          ranges: this.ranges(detname, ctype).map((r) => ({
            key: r.key,
            begin: r.begin,
            end: r.end,
            versdef: r.versdef,
            ...node(scopes.range(detname, ctype, r.key)),
            versions: (
              this.sql("SELECT vnum, tsprod, dtype, shape, data, text FROM versions WHERE detname = ? AND ctype = ? AND range_key = ? ORDER BY vnum")
                .all(detname, ctype, r.key) as Array<{ vnum: number; tsprod: number; dtype: string; shape: string; data: Buffer | null; text: string | null }>
            ).map((v) => ({ vnum: v.vnum, tsprod: v.tsprod, value: fromStored(v), ...node(scopes.version(detname, ctype, r.key, v.vnum)) })),
          })),
        })),
      };
    })();
  }

  /**
   * Put a whole detector into the store exactly as dumped (import): one transaction, so a failure leaves the store
   * unchanged. A detector the store already has is refused (delete its ctypes first, or import into another store).
   */
  restoreDetector(dump: DetectorDump): void {
    const { dettype, detid } = splitDetname(dump.detname);
    for (const c of dump.ctypes) {
      if (!isCtype(c.ctype)) throw new DamnitError("CALIB_UNKNOWN_CTYPE", `unknown calibration type '${c.ctype}' in the import of ${dump.detname}; known: ${KNOWN}`);
    }
    this.write(() => {
      if (this.sql("SELECT 1 FROM detectors WHERE detname = ?").get(dump.detname)) {
        throw new DamnitError("CALIB_DETECTOR_EXISTS", `${this.path} already has detector ${dump.detname}; import it into another store, or delete its constants first`);
      }
      this.sql("INSERT INTO detectors(detname, dettype, detid, predecessor, successor, created) VALUES (?, ?, ?, ?, ?, ?)")
        .run(dump.detname, dettype, detid, dump.predecessor, dump.successor, dump.created);
      const node = (scope: string, n: DumpNode) => {
        for (const [k, v] of Object.entries(n.params)) this.setParam(scope, k, v);
        const ins = this.sql("INSERT INTO history(scope, tsec, record) VALUES (?, ?, ?)");
        for (const h of n.history) ins.run(scope, h.tsec, h.record);
      };
      node(scopes.detector(dump.detname), dump);
      for (const c of dump.ctypes) {
        const ctype = c.ctype as Ctype;
        this.sql("INSERT INTO ctypes(detname, ctype) VALUES (?, ?)").run(dump.detname, ctype);
        node(scopes.ctype(dump.detname, ctype), c);
        for (const r of c.ranges) {
          this.sql(`INSERT INTO ranges(detname, ctype, key, begin, "end", versdef) VALUES (?, ?, ?, ?, ?, ?)`).run(dump.detname, ctype, r.key, r.begin, r.end, r.versdef);
          node(scopes.range(dump.detname, ctype, r.key), r);
          for (const v of r.versions) {
            const stored = toStored(ctype, v.value);
            this.sql("INSERT INTO versions(detname, ctype, range_key, vnum, tsprod, dtype, shape, data, text) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
              .run(dump.detname, ctype, r.key, v.vnum, v.tsprod, stored.dtype, JSON.stringify(stored.shape), stored.data, stored.text);
            node(scopes.version(dump.detname, ctype, r.key, v.vnum), v);
          }
        }
      }
    });
  }
}

/** Parameters and history, which every level has. */
export interface DumpNode {
  readonly params: Readonly<Record<string, string | number>>;
  readonly history: ReadonlyArray<{ readonly tsec: number; readonly record: string }>;
}

export interface VersionDump extends DumpNode {
  readonly vnum: number;
  readonly tsprod: number;
  readonly value: CalibValue;
}

export interface RangeDump extends DumpNode {
  readonly key: string;
  readonly begin: number;
  readonly end: number | null;
  readonly versdef: number;
  readonly versions: readonly VersionDump[];
}

export interface CtypeDump extends DumpNode {
  readonly ctype: string;
  readonly ranges: readonly RangeDump[];
}

/** One detector's whole content, the unit of HDF5 export/import (hdf5.ts). */
export interface DetectorDump extends DumpNode {
  readonly detname: string;
  readonly dettype: string;
  readonly detid: string;
  readonly predecessor: string | null;
  readonly successor: string | null;
  readonly created: number;
  readonly ctypes: readonly CtypeDump[];
}

const KNOWN = "pedestals, pixel_status, pixel_rms, pixel_gain, pixel_mask, pixel_bkgd, common_mode, geometry, pixel_offset, status_data, status_extra";

function safeUser(): string {
  try {
    return userInfo().username;
  } catch {
    return String(process.getuid?.() ?? "unknown");
  }
}

export function notFound(detector: string, ctype: string, at?: number, version?: number, range?: string): DamnitError {
  const parts = [`no ${ctype} constants for detector ${detector}`];
  if (at !== undefined) parts.push(`at ${at} (${new Date(at * 1000).toISOString()})`);
  if (range !== undefined) parts.push(`in range ${range}`);
  if (version !== undefined) parts.push(`version ${version}`);
  return new DamnitError("CALIB_NOT_FOUND", parts.join(" "));
}

function translate(err: unknown, path: string): unknown {
  if (isSqliteError(err, "SQLITE_BUSY")) {
    return new DamnitError("BUSY", `calibration store ${path} stayed locked by another writer for the whole busy timeout; try again`, { cause: err });
  }
  if (isSqliteError(err, "SQLITE_READONLY") || isSqliteError(err, "SQLITE_CANTOPEN")) {
    return new DamnitError("READ_ONLY", `cannot open ${path} for writing: ${(err as Error).message}`, { cause: err });
  }
  if (isSqliteError(err, "SQLITE_NOTADB") || isSqliteError(err, "SQLITE_CORRUPT")) {
    return new DamnitError("NOT_SQLITE", `${path} is not a usable SQLite database: ${(err as Error).message}`, { cause: err });
  }
  return err;
}
