/**
 * Reading the run table: one row per (proposal, run) with the latest value of every variable, as the `runs` view
 * shows it but decoded (arrays, complex numbers, PNG thumbnails) and with per-value details for display.
 * Pivoting in JavaScript reads `run_variables` once; the view's CASE-per-column plan is several times slower.
 */
import type Database from "better-sqlite3";
import { decodeAttributes, type VariableAttributes } from "./attributes.js";
import { decodeValue, type DecodedValue } from "./values.js";
import { runsViewNames } from "./views.js";

export interface CellValue {
  value: DecodedValue;
  summaryType: string | null;
  maxDiff: number | null;
  attributes: VariableAttributes | null;
  provenance: string | null;
}

export interface RunRow {
  proposal: number;
  run: number;
  startTime: number | null;
  addedAt: number | null;
  cells: Map<string, CellValue>;
}

export interface RunTable {
  /** variable names, sorted, as the `runs` view's columns */
  names: string[];
  rows: RunRow[];
}

/** A set of run numbers: `1-10,15` style ranges. */
export type RunFilter = (run: number) => boolean;

export interface RunTableOptions {
  proposal?: number;
  runs?: RunFilter;
  /** with `proposal`: only runs from..to (inclusive), read through the indexes rather than filtered after the scan */
  range?: { from: number; to: number };
}

/** The WHERE terms and parameters of the proposal / run range options, for run_info (`ri.`) or run_variables. */
function runsWhere(opts: RunTableOptions, prefix: string): { terms: string[]; params: number[] } {
  const terms: string[] = [];
  const params: number[] = [];
  if (opts.proposal !== undefined) {
    terms.push(`${prefix}proposal = ?`);
    params.push(opts.proposal);
    if (opts.range) {
      terms.push(`${prefix}run BETWEEN ? AND ?`);
      params.push(opts.range.from, opts.range.to);
    }
  }
  return { terms, params };
}

/*
 * Both readers let SQLite build one JSON object per run and parse it natively: materialising 100,000 cells one row at
 * a time through the driver costs several times more. Blobs cannot go into JSON; they are fetched separately and put
 * in place. Readers take the highest version of a name: the rows are scanned through the unique index
 * (proposal, run, name, version), so a higher version comes later and wins in JSON.parse. INDEXED BY pins that scan
 * order (an aggregate ORDER BY would sort every run's rows, +40 % time); without the index, ORDER BY does it.
 */
function runsQuery(db: Database.Database, cellExpression: string, opts: RunTableOptions) {
  const { terms, params } = runsWhere(opts, "ri.");
  const where = terms.length ? `WHERE ${terms.join(" AND ")}` : "";
  // (A read-compatibility view shadowing run_variables, see read-compat.ts, has no index either.)
  const indexed =
    db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = 'variable_version'").get() !== undefined &&
    db.prepare("SELECT 1 FROM temp.sqlite_master WHERE name = 'run_variables'").get() === undefined;
  const source = indexed ? "run_variables rv INDEXED BY variable_version" : "run_variables rv";
  const order = indexed ? "" : "ORDER BY rv.version";
  return db
    .prepare(
      `SELECT ri.proposal, ri.run, ri.start_time, ri.added_at,
              (SELECT json_group_object(rv.name, ${cellExpression} ${order}) FROM ${source}
               WHERE rv.proposal = ri.proposal AND rv.run = ri.run) AS cells
       FROM run_info ri ${where}
       ORDER BY ri.proposal, ri.run`,
    )
    .raw(true)
    .all(...params) as [number, number, number | null, number | null, string | null][];
}

interface BlobCell {
  proposal: number;
  run: number;
  name: string;
  value: Buffer;
  summary_type: string | null;
}

function blobCells(db: Database.Database, opts: RunTableOptions): Map<string, BlobCell> {
  const { terms, params } = runsWhere(opts, "");
  const where = terms.map((t) => `AND ${t}`).join(" ");
  const rows = db
    .prepare(
      `SELECT proposal, run, name, value, summary_type FROM run_variables WHERE typeof(value) = 'blob' ${where} ORDER BY version`,
    )
    .all(...params) as BlobCell[];
  return new Map(rows.map((r) => [`${r.proposal}/${r.run}/${r.name}`, r]));
}

/**
 * A value as JSON. Blobs cannot be JSON: they become the mark `[]` and are put back from a second query. Integers
 * beyond 2^53 would lose digits in JSON.parse: they travel as `["int", "<digits>"]` and come back as BigInt.
 */
const VALUE_OR_BLOB_MARK = `CASE typeof(rv.value)
  WHEN 'blob' THEN json_array()
  WHEN 'integer' THEN iif(rv.value BETWEEN -${Number.MAX_SAFE_INTEGER} AND ${Number.MAX_SAFE_INTEGER},
                          rv.value, json_array('int', CAST(rv.value AS TEXT)))
  ELSE rv.value END`;

function isBlobMark(value: unknown): boolean {
  return Array.isArray(value) && value.length === 0;
}

function isBigIntMark(value: unknown): value is ["int", string] {
  return Array.isArray(value) && value.length === 2 && value[0] === "int";
}

/** Blob cells, fetched on the first blob met (tables of plain numbers never pay for the extra scan). */
function lazyBlobs(db: Database.Database, opts: RunTableOptions): () => Map<string, BlobCell> {
  let blobs: Map<string, BlobCell> | undefined;
  return () => (blobs ??= blobCells(db, opts));
}

function restoreValue(value: unknown, key: string, blobs: () => Map<string, BlobCell>, summaryType: unknown): DecodedValue {
  if (isBlobMark(value)) {
    const blob = blobs().get(key);
    return blob ? decodeValue(blob.value, blob.summary_type) : null;
  }
  if (isBigIntMark(value)) return BigInt(value[1]);
  return decodeValue(value, summaryType);
}

/**
 * Column names: the `runs` view's variables (kept in step with the names by every writer) and declared variables,
 * plus any name met in the rows; cheaper than a DISTINCT over all values.
 */
function columnNames(db: Database.Database, seen: Set<string>): string[] {
  const names = new Set([...runsViewNames(db), ...seen]);
  for (const row of db.prepare("SELECT name FROM variables").all() as { name: string }[]) names.add(row.name);
  return [...names].sort();
}

/** The run table with every cell's details (attributes, max_diff, provenance), for display. */
export function readRunTable(db: Database.Database, opts: RunTableOptions = {}): RunTable {
  // One read transaction: the values, the blobs and the names come from the same snapshot.
  return db.transaction(() => readRunTableNow(db, opts)).deferred();
}

function readRunTableNow(db: Database.Database, opts: RunTableOptions): RunTable {
  const cell = `json_array(${VALUE_OR_BLOB_MARK}, rv.summary_type, rv.max_diff, rv.attributes, rv.provenance)`;
  const blobs = lazyBlobs(db, opts);
  const seen = new Set<string>();
  const rows: RunRow[] = [];
  for (const [proposal, run, startTime, addedAt, cellsJson] of runsQuery(db, cell, opts)) {
    // Like the `runs` view: a run shows once it has at least one value.
    if (cellsJson === null || cellsJson === "{}" || (opts.runs && !opts.runs(run))) continue;
    const cells = new Map<string, CellValue>();
    const parsed = JSON.parse(cellsJson) as Record<string, [unknown, string | null, number | null, string | null, string | null]>;
    for (const [name, [value, summaryType, maxDiff, attributes, provenance]] of Object.entries(parsed)) {
      seen.add(name);
      cells.set(name, {
        value: restoreValue(value, `${proposal}/${run}/${name}`, blobs, summaryType),
        summaryType,
        maxDiff,
        attributes: decodeAttributes(attributes),
        provenance,
      });
    }
    rows.push({ proposal, run, startTime, addedAt, cells });
  }
  return { names: columnNames(db, seen), rows };
}

export interface PivotRow {
  proposal: number;
  run: number;
  start_time: number | null;
  added_at: number | null;
  /** latest value of each variable the run has; NULL values are present as null */
  values: Record<string, DecodedValue>;
}

/** The `runs` view's content (values only), decoded; the fast path for reading the whole table. */
export function readRunsPivot(db: Database.Database, opts: RunTableOptions = {}): { names: string[]; rows: PivotRow[] } {
  return db.transaction(() => readRunsPivotNow(db, opts)).deferred();
}

function readRunsPivotNow(db: Database.Database, opts: RunTableOptions): { names: string[]; rows: PivotRow[] } {
  const blobs = lazyBlobs(db, opts);
  const seen = new Set<string>();
  const rows: PivotRow[] = [];
  for (const [proposal, run, startTime, addedAt, valuesJson] of runsQuery(db, VALUE_OR_BLOB_MARK, opts)) {
    if (valuesJson === null || valuesJson === "{}" || (opts.runs && !opts.runs(run))) continue;
    const values = JSON.parse(valuesJson) as Record<string, DecodedValue>;
    // for…in and a text check keep this loop cheap: it runs for every cell of the table.
    for (const name in values) seen.add(name);
    if (valuesJson.includes("[")) {
      for (const name in values) {
        const value = values[name];
        if (Array.isArray(value)) values[name] = restoreValue(value, `${proposal}/${run}/${name}`, blobs, null);
      }
    }
    rows.push({ proposal, run, start_time: startTime, added_at: addedAt, values });
  }
  return { names: columnNames(db, seen), rows };
}
