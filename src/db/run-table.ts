/**
 * Reading the run table: one row per (proposal, run) with the latest value of every variable, as the `runs` view
 * shows it but decoded (arrays, complex numbers, PNG thumbnails) and with per-value details for display.
 * Pivoting in JavaScript reads `run_variables` once; the view's CASE-per-column plan is several times slower.
 */
import type Database from "better-sqlite3";
import { DamnitError } from "./errors.js";
import { decodeAttributes, type VariableAttributes } from "./attributes.js";
import { decodeValue, type DecodedValue } from "./values.js";
import { variableNames } from "./views.js";

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

export function readRunTable(db: Database.Database, opts: { proposal?: number; runs?: RunFilter } = {}): RunTable {
  const names = variableNames(db);
  const where = opts.proposal === undefined ? "" : "WHERE ri.proposal = ?";
  const stmt = db
    .prepare(
      `SELECT ri.proposal, ri.run, ri.start_time, ri.added_at, rv.name, rv.version, rv.value, rv.summary_type,
              rv.max_diff, rv.attributes, rv.provenance
       FROM run_info ri JOIN run_variables rv ON rv.proposal = ri.proposal AND rv.run = ri.run ${where}
       ORDER BY ri.proposal, ri.run`,
    )
    .raw(true);
  const params = opts.proposal === undefined ? [] : [opts.proposal];
  const rows: RunRow[] = [];
  const versions = new Map<string, number>();
  let current: RunRow | undefined;
  for (const r of stmt.iterate(...params) as Iterable<unknown[]>) {
    const [proposal, run, startTime, addedAt, name, version, value, summaryType, maxDiff, attributes, provenance] = r as [
      number, number, number | null, number | null, string, number, unknown, string | null, number | null, string | null, string | null,
    ];
    if (opts.runs && !opts.runs(run)) continue;
    if (!current || current.proposal !== proposal || current.run !== run) {
      current = { proposal, run, startTime, addedAt, cells: new Map() };
      rows.push(current);
      versions.clear();
    }
    // Readers take the highest version of each name (versions are always 1 today).
    if ((versions.get(name) ?? -Infinity) > version) continue;
    versions.set(name, version);
    current.cells.set(name, {
      value: decodeValue(value, summaryType),
      summaryType,
      maxDiff,
      attributes: decodeAttributes(attributes),
      provenance,
    });
  }
  return { names, rows };
}

/** Parse `1-10,15` into a predicate; throws on anything else. */
export function parseRunRanges(text: string): RunFilter {
  const ranges: [number, number][] = [];
  for (const part of text.split(",")) {
    const m = /^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$/.exec(part);
    if (!m) throw new DamnitError("BAD_ARGUMENT", `'${part.trim()}' is not a run number or range like 1-10,15`);
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    if (hi < lo) throw new DamnitError("BAD_ARGUMENT", `run range ${lo}-${hi} is backwards`);
    ranges.push([lo, hi]);
  }
  return (run) => ranges.some(([lo, hi]) => run >= lo && run <= hi);
}
