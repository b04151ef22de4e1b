/**
 * `damnit migrate v0-to-v1`: convert DAMNIT's legacy v0 database (one wide `runs` table, a column per variable)
 * into the long-narrow format, then the current one.
 *
 * Every non-NULL cell becomes a `run_variables` row. Pickled image summaries become PNG thumbnails (other pickled
 * arrays become `.npy` arrays); `max_diff` comes from the run's HDF5 data where it exists; user-variable values and
 * comments are marked `manual-input`. Computed variables are registered in `variables`, titled from `context.py`
 * (v0 never registered them). The new database is written beside the old one and renamed over it only when complete;
 * the old file is kept byte-for-byte as `runs.v0-backup.sqlite`. The HDF5 files are read, never changed.
 */
import Database from "better-sqlite3";
import { copyFileSync, existsSync, readFileSync, renameSync, rmSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { DamnitError } from "../core/errors.js";
import { DB_FILE_NAME } from "../db/format.js";
import type { NdArray } from "../core/ndarray.js";
import { openDatabaseFile } from "../db/open.js";
import { setSetting, type SettingValue } from "../db/metameta.js";
import type { VariableRow } from "../db/run-variables.js";
import { setVariablesForRuns } from "../db/run-variables.js";
import { updateComputedVariables } from "../db/variables.js";
import { thumbnailPng } from "../summary/thumbnail.js";
import { readPythonContextVariables, type PythonVariableInfo } from "./context-py.js";
import { readRunH5Stats, type RunH5Stats } from "./h5-stats.js";
import { decodeNumpyPickle } from "./pickle.js";

export interface ConversionResult {
  oldPath: string;
  newPath: string;
  backupPath: string | null;
  runs: number;
  values: number;
  variables: number;
  timeComments: number;
  warnings: string[];
}

const FIXED_COLUMNS = new Set(["proposal", "runnr", "start_time", "added_at"]);
const PICKLE_PROTOCOL_2_PLUS = 0x80;

interface LegacyRow {
  [column: string]: unknown;
}

function openLegacy(path: string): Database.Database {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  let tables: Map<string, string>;
  try {
    tables = new Map(
      (db.prepare("SELECT name, type FROM sqlite_master").all() as { name: string; type: string }[]).map((r) => [r.name, r.type]),
    );
  } catch (err) {
    db.close();
    throw new DamnitError("NOT_SQLITE", `${path} is not an SQLite database (${(err as Error).message})`, { cause: err });
  }
  if (!tables.has("metameta")) {
    db.close();
    throw new DamnitError("NOT_DAMNIT", `${path} is not a DAMNIT database (no metameta table)`);
  }
  const version = db.prepare("SELECT value FROM metameta WHERE key = 'data_format_version'").get() as { value: unknown } | undefined;
  if (version !== undefined && Number(version.value) !== 0) {
    db.close();
    throw new DamnitError("BAD_ARGUMENT", `${path} is already format v${String(version.value)}; only v0 databases need 'migrate v0-to-v1'`);
  }
  if (tables.get("runs") !== "table") {
    db.close();
    throw new DamnitError("NOT_DAMNIT", `${path} has no v0 'runs' table, so it is not a legacy v0 DAMNIT database`);
  }
  return db;
}

function uniquePath(path: string): string {
  if (!existsSync(path)) return path;
  return path.replace(/\.sqlite$/, `.${new Date().toISOString().replace(/[:.]/g, "-")}.sqlite`);
}

/** A v0 blob: a pickled numpy array (image summaries) or raw bytes. */
function convertBlob(name: string, blob: Buffer, warnings: string[]): Pick<VariableRow, "value" | "summaryType"> {
  if (blob[0] !== PICKLE_PROTOCOL_2_PLUS) return { value: blob };
  let array: NdArray;
  try {
    array = decodeNumpyPickle(blob);
  } catch (err) {
    warnings.push(`${name}: kept an undecodable pickled value as raw bytes (${(err as Error).message})`);
    return { value: blob };
  }
  const isImage = array.shape.length === 2 || (array.shape.length === 3 && array.dtype === "uint8" && [3, 4].includes(array.shape[2]!));
  if (isImage) return { value: thumbnailPng(array) };
  if (array.shape.length === 0) {
    const scalar = array.data[0]!;
    return { value: typeof scalar === "bigint" ? scalar : Number(scalar) };
  }
  return { value: array, summaryType: "numpy" };
}

export interface ConversionOptions {
  /** write runs.v1.sqlite but leave runs.sqlite as it is */
  dryRun?: boolean;
  /** called as each run's HDF5 file has been read */
  onProgress?: (done: number, total: number) => void;
}

export async function convertV0ToV1(dirArg: string, opts: ConversionOptions = {}): Promise<ConversionResult> {
  const dir = resolve(dirArg);
  const oldPath = join(dir, DB_FILE_NAME);
  if (!existsSync(dir)) throw new DamnitError("NO_DIRECTORY", `${dir}: no such directory`);
  if (!existsSync(oldPath)) throw new DamnitError("NO_DATABASE", `no DAMNIT database in ${dir} (${DB_FILE_NAME} missing)`);
  const legacy = openLegacy(oldPath);
  const newName = "runs.v1.sqlite";
  const newPath = join(dir, newName);
  const warnings: string[] = [];
  let result: Omit<ConversionResult, "backupPath">;
  try {
    rmSync(newPath, { force: true }); // a leftover of an earlier dry run or interrupted conversion
    const settings = legacy.prepare("SELECT key, value FROM metameta").all() as { key: string; value: SettingValue }[];
    const userVars = legacy.prepare("SELECT name, type, title, description, attributes FROM variables").all() as {
      name: string;
      type: string | null;
      title: string | null;
      description: string | null;
      attributes: string | null;
    }[];
    const timeComments = legacy.prepare("SELECT timestamp, comment FROM time_comments").all() as { timestamp: number; comment: string }[];
    const columns = (legacy.prepare("SELECT name FROM pragma_table_info('runs')").all() as { name: string }[]).map((c) => c.name);
    // safeIntegers: INTEGER cells come back as BigInt, REAL ones as numbers, so each keeps its SQLite type.
    const legacyRows = legacy.prepare("SELECT * FROM runs ORDER BY proposal, runnr").safeIntegers(true).all() as LegacyRow[];
    const contextPath = join(dir, "context.py");
    const pyVars = existsSync(contextPath) ? readPythonContextVariables(readFileSync(contextPath, "utf8")) : new Map<string, PythonVariableInfo>();
    const manual = new Set(["comment", ...userVars.filter((v) => v.type !== null).map((v) => v.name)]);
    const valueColumns = columns.filter((c) => !FIXED_COLUMNS.has(c));
    const h5Stats = new Map<string, RunH5Stats | undefined>();
    for (const [i, row] of legacyRows.entries()) {
      opts.onProgress?.(i, legacyRows.length);
      const h5Path = join(dir, "extracted_data", `p${Number(row.proposal)}_r${Number(row.runnr)}.h5`);
      try {
        h5Stats.set(h5Path, await readRunH5Stats(h5Path, valueColumns));
      } catch (err) {
        warnings.push(`${h5Path}: could not read max_diff values (${(err as Error).message})`);
      }
    }
    opts.onProgress?.(legacyRows.length, legacyRows.length);

    const target = await openDatabaseFile(dir, { create: true, fileName: newName });
    const db = target.db;
    try {
      let values = 0;
      db.transaction(() => {
        for (const { key, value } of settings) if (key !== "data_format_version") setSetting(db, key, value);
        const insertVar = db.prepare(
          "INSERT OR REPLACE INTO variables (name, type, title, description, attributes) VALUES (?, ?, ?, ?, ?)",
        );
        for (const v of userVars) insertVar.run(v.name, v.type, v.title, v.description, v.attributes);
        const insertComment = db.prepare("INSERT INTO time_comments (timestamp, comment) VALUES (?, ?)");
        for (const c of timeComments) insertComment.run(c.timestamp, c.comment);
        const computed = valueColumns
          .filter((c) => !manual.has(c))
          .map((name) => ({
            name,
            title: pyVars.get(name)?.title ?? null,
            description: pyVars.get(name)?.description ?? null,
            tags: [],
          }));
        updateComputedVariables(db, computed);

        for (const row of legacyRows) {
          const proposal = Number(row.proposal);
          const run = Number(row.runnr);
          const h5Path = join(dir, "extracted_data", `p${proposal}_r${run}.h5`);
          const stats = h5Stats.get(h5Path);
          const timestamp = existsSync(h5Path) ? statSync(h5Path).mtimeMs / 1000 : Date.now() / 1000;
          const common = { startTime: numberOrUndefined(row.start_time), addedAt: numberOrUndefined(row.added_at) };
          const byProvenance = new Map<string, Record<string, VariableRow>>();
          for (const name of valueColumns) {
            const raw = row[name];
            if (raw === null || raw === undefined) continue;
            const converted: Pick<VariableRow, "value" | "summaryType" | "real"> = Buffer.isBuffer(raw)
              ? convertBlob(`run ${run} ${name}`, raw, warnings)
              : { value: raw as number | string | bigint, real: typeof raw === "number" };
            const provenance = manual.has(name) ? "manual-input" : "context.py";
            const rows = byProvenance.get(provenance) ?? {};
            rows[name] = {
              ...converted,
              maxDiff: stats?.maxDiff.get(name) ?? null,
              summaryMethod: manual.has(name) ? "" : (pyVars.get(name)?.summary ?? ""),
            };
            byProvenance.set(provenance, rows);
            values++;
          }
          if (byProvenance.size === 0) {
            // A run with no values still keeps its run_info row.
            setVariablesForRuns(db, [{ proposal, run, values: {}, ...common }], { provenance: "context.py", timestamp });
          }
          for (const [provenance, rows] of byProvenance) {
            setVariablesForRuns(db, [{ proposal, run, values: rows, ...common }], { provenance, timestamp });
          }
        }
      }).immediate();
      result = {
        oldPath,
        newPath,
        runs: legacyRows.length,
        values,
        variables: valueColumns.filter((c) => c !== "comment").length,
        timeComments: timeComments.length,
        warnings,
      };
    } finally {
      db.close();
    }
  } catch (err) {
    rmSync(newPath, { force: true });
    throw err;
  } finally {
    legacy.close();
  }
  if (opts.dryRun) return { ...result, backupPath: null };
  const backupPath = uniquePath(join(dir, "runs.v0-backup.sqlite"));
  copyFileSync(oldPath, backupPath);
  renameSync(newPath, oldPath); // atomic: readers see the old or the new database, never a mix
  return { ...result, newPath: oldPath, backupPath };
}

function numberOrUndefined(value: unknown): number | undefined {
  return typeof value === "number" || typeof value === "bigint" ? Number(value) : undefined;
}
