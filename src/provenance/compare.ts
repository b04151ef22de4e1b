/**
 * Comparing stored results with reproduced ones (`reprocess --check-reproducible`): the `run_variables` rows
 * (summary value, max_diff, summary type and method, attributes) and the run file's contents per variable (data,
 * summary, preview, attributes, error), exactly: arrays by dtype, shape and every element (a NaN equals the same
 * NaN), strings by text. Paths of the scratch copy in error messages are read as the real directory's.
 */
import Database from "better-sqlite3";
import { existsSync } from "node:fs";
import type { VariableOutput } from "../core/variable-output.js";
import { readRunOutput } from "../extract/h5-output.js";

export interface Difference {
  readonly run: number;
  readonly variable: string;
  /** what differs, e.g. "runs.sqlite value", "HDF5 data" */
  readonly what: string;
  readonly stored: string;
  readonly reproduced: string;
}

const isView = (v: unknown): v is ArrayBufferView => ArrayBuffer.isView(v);

/** A short description of a value for the report. */
export function describe(v: unknown): string {
  if (v === undefined) return "nothing";
  if (v === null) return "null";
  if (typeof v === "string") return JSON.stringify(v.length > 80 ? `${v.slice(0, 77)}…` : v);
  if (typeof v === "number" || typeof v === "bigint" || typeof v === "boolean") return String(v);
  if (isView(v)) return `<${v.constructor.name} of ${v.byteLength} bytes>`;
  const o = v as { kind?: string; dtype?: string; shape?: number[]; dims?: string[] };
  if (o.kind === "ndarray") return `<array ${o.dtype} (${o.shape?.join(",")})>`;
  if (o.kind === "labelled") return `<labelled array (${o.dims?.join(",")})>`;
  const text = JSON.stringify(v, (_k, x: unknown) => (typeof x === "bigint" ? String(x) : x));
  return text.length > 80 ? `${text.slice(0, 77)}…` : text;
}

const sameNumber = (a: number, b: number) => a === b || (Number.isNaN(a) && Number.isNaN(b));

/** Where `a` and `b` first differ, as a path and the two values there; undefined when they are the same. */
export function firstDifference(a: unknown, b: unknown, path = ""): { path: string; a: unknown; b: unknown } | undefined {
  if (a === b) return undefined;
  if (typeof a === "number" && typeof b === "number") return sameNumber(a, b) ? undefined : { path, a, b };
  if (isView(a) && isView(b)) {
    if (a.constructor !== b.constructor || a.byteLength !== b.byteLength) return { path, a, b };
    const x = Buffer.from(a.buffer, a.byteOffset, a.byteLength);
    const y = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
    if (x.equals(y)) return undefined;
    const per = (a as unknown as { BYTES_PER_ELEMENT?: number }).BYTES_PER_ELEMENT ?? 1;
    let i = 0;
    while (x[i] === y[i]) i++;
    const at = Math.floor(i / per);
    const ea = (a as unknown as ArrayLike<unknown>)[at];
    const eb = (b as unknown as ArrayLike<unknown>)[at];
    return { path: `${path}[${at}]`, a: ea ?? x[i], b: eb ?? y[i] };
  }
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null || Array.isArray(a) !== Array.isArray(b)) return { path, a, b };
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  for (const k of [...keys].sort()) {
    const d = firstDifference((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], path ? `${path}.${k}` : k);
    if (d) return d;
  }
  return undefined;
}

interface VariableRowLike {
  name: string;
  value: unknown;
  max_diff: unknown;
  summary_type: unknown;
  summary_method: unknown;
  attributes: unknown;
}

/** The latest row of each variable of a run. */
function latestRows(file: string, proposal: number, run: number): Map<string, VariableRowLike> {
  const db = new Database(file, { readonly: true, fileMustExist: true, timeout: 30_000 });
  try {
    const rows = db
      .prepare(
        "SELECT name, value, max_diff, summary_type, summary_method, attributes FROM run_variables r WHERE proposal = ? AND run = ? " +
          "AND version = (SELECT max(version) FROM run_variables WHERE proposal = r.proposal AND run = r.run AND name = r.name)",
      )
      .all(proposal, run) as VariableRowLike[];
    return new Map(rows.map((r) => [r.name, r]));
  } finally {
    db.close();
  }
}

function replacePaths(value: unknown, from: string, to: string): unknown {
  if (typeof value === "string") return value.split(from).join(to);
  if (Array.isArray(value)) return value.map((v) => replacePaths(v, from, to));
  if (value && typeof value === "object" && !isView(value)) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, replacePaths(v, from, to)]));
  }
  return value;
}

const parseAttributes = (text: unknown) => (typeof text === "string" && text !== "" ? (JSON.parse(text) as unknown) : text);

export interface CompareRun {
  readonly proposal: number;
  readonly run: number;
  readonly names: readonly string[];
  readonly real: { readonly db: string; readonly runFile: string; readonly dir: string };
  readonly scratch: { readonly db: string; readonly runFile: string; readonly dir: string };
}

export interface RunComparison {
  readonly differences: Difference[];
  /** reproduced, but never stored before (a first processing that selected fewer variables): not differences */
  readonly unstored: string[];
}

/** Every difference between the stored and the reproduced results of `names` for one run. */
export async function compareRun(c: CompareRun): Promise<RunComparison> {
  const out: Difference[] = [];
  const add = (variable: string, what: string, d: { path: string; a: unknown; b: unknown }) =>
    out.push({ run: c.run, variable, what: d.path ? `${what} ${d.path}` : what, stored: describe(d.a), reproduced: describe(d.b) });
  const fromScratch = (v: unknown) => replacePaths(v, c.scratch.dir, c.real.dir);

  const realRows = latestRows(c.real.db, c.proposal, c.run);
  const newRows = latestRows(c.scratch.db, c.proposal, c.run);
  const realOut = existsSync(c.real.runFile) ? await readRunOutput(c.real.runFile) : new Map<string, VariableOutput>();
  const newOut = existsSync(c.scratch.runFile) ? await readRunOutput(c.scratch.runFile) : new Map<string, VariableOutput>();
  const unstored = c.names.filter((name) => !realRows.has(name) && !realOut.has(name));
  const names = c.names.filter((name) => !unstored.includes(name));
  for (const name of names) {
    const a = realRows.get(name);
    const b = newRows.get(name);
    if (!a && !b) continue;
    if (!a || !b) {
      add(name, "runs.sqlite row", { path: "", a: a ? "a row" : undefined, b: b ? "a row" : undefined });
      continue;
    }
    for (const column of ["value", "max_diff", "summary_type", "summary_method"] as const) {
      const d = firstDifference(a[column], fromScratch(b[column]));
      if (d) add(name, `runs.sqlite ${column}`, d);
    }
    const d = firstDifference(parseAttributes(a.attributes), fromScratch(parseAttributes(b.attributes)));
    if (d) add(name, "runs.sqlite attributes", d);
  }

  for (const name of names) {
    const a = realOut.get(name);
    const b = newOut.get(name);
    if (!a && !b) continue;
    if (!a || !b) {
      add(name, "HDF5 variable", { path: "", a: a ? "present" : undefined, b: b ? "present" : undefined });
      continue;
    }
    for (const part of ["data", "summary", "preview", "attrs", "error"] as const) {
      const d = firstDifference(a[part], fromScratch(b[part]));
      if (d) add(name, `HDF5 ${part}`, d);
    }
  }
  return { differences: out, unstored };
}
