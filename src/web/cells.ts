/**
 * The run table as the web page gets it: one JSON object per run, one small object per cell (display text, units,
 * bold/background, error message, thumbnail URL, sparkline points). Values are never HTML: the page puts every
 * string in with textContent, so a title or comment holding markup shows as text.
 */
import type { CellValue, RunRow } from "../db/run-table.js";
import type { VariableInfo } from "../db/variables.js";
import { valueText } from "../cli/format-value.js";
import { isNdArray } from "../core/ndarray.js";

export interface WebCell {
  /** text shown */
  t: string;
  /** number, for sorting, filtering and plots */
  n?: number;
  units?: string;
  bold?: boolean;
  bg?: [number, number, number];
  /** error message (with its class), shown on hover */
  err?: string;
  /** a stored PNG thumbnail: its URL path under the database */
  png?: { w: number; h: number };
  /** trendline points (y values), drawn as a sparkline */
  spark?: number[];
  /** the value is an array: the page can ask for its data */
  array?: number[];
}

export interface WebRow {
  key: string;
  proposal: number;
  run: number;
  start: number | null;
  cells: Record<string, WireCell>;
}

export interface WebColumn {
  name: string;
  title: string;
  description: string | null;
  /** user-editable type (number, text, boolean, …) or null for computed variables */
  editable: string | null;
  tags: string[];
}

const SPARK_POINTS = 200;

function sparkline(cell: CellValue): number[] | undefined {
  const v = cell.value;
  if (cell.summaryType !== "trendline" || !isNdArray(v) || v.shape.length !== 2) return undefined;
  const n = v.shape[1]!;
  const step = Math.max(1, Math.ceil(n / SPARK_POINTS));
  const ys: number[] = [];
  for (let i = 0; i < n; i += step) ys.push(Number(v.data[n + i]));
  return ys;
}

export function webCell(cell: CellValue): WebCell {
  const out: WebCell = { t: "" };
  const a = cell.attributes;
  if (a?.units) out.units = a.units;
  if (a?.bold) out.bold = true;
  if (Array.isArray(a?.background) && a.background.length === 3) out.bg = a.background;
  if (cell.value === null && a?.error !== undefined) {
    out.err = `${a.error_cls || "Error"}: ${String(a.error)}`;
    out.t = `${a.error_cls || "error"}`;
    return out;
  }
  const v = cell.value;
  if (typeof v === "number") out.n = v;
  else if (typeof v === "bigint") out.n = Number(v);
  if (v !== null && typeof v === "object" && !(v instanceof Uint8Array)) {
    if (v.kind === "png") out.png = { w: v.width, h: v.height };
    else if (v.kind === "unreadable") out.err = `unreadable value: ${v.reason}`;
    else if (v.kind === "ndarray") {
      out.array = [...v.shape];
      out.spark = sparkline(cell);
    }
  }
  out.t = out.spark ? `trendline (${v && isNdArray(v) ? v.shape[1] : 0} points)` : valueText(v);
  return out;
}

/**
 * A cell as it travels: a plain number whose text is the number's own (`String(n)`, most cells of a large table)
 * as the bare number, a third of the JSON; the page turns it back into `{t, n}`.
 */
export type WireCell = WebCell | number;

export function webRow(row: RunRow): WebRow {
  const cells: Record<string, WireCell> = {};
  for (const [name, cell] of row.cells) {
    const c = webCell(cell);
    const keys = Object.keys(c);
    cells[name] = c.n !== undefined && Number.isFinite(c.n) && keys.length === 2 && c.t === String(c.n) ? c.n : c;
  }
  return { key: `${row.proposal}/${row.run}`, proposal: row.proposal, run: row.run, start: row.startTime, cells };
}

export function webColumns(tableNames: string[], variables: VariableInfo[], tagsOf: (name: string) => string[]): WebColumn[] {
  const info = new Map(variables.map((v) => [v.name, v]));
  // DAMNIT's GUI always has the Comment column, even before the first comment is written.
  const names = tableNames.includes("comment") ? tableNames : [...tableNames, "comment"];
  return names.map((name) => {
    const v = info.get(name);
    return {
      name,
      title: v?.title ?? (name === "comment" ? "Comment" : name),
      description: v?.description ?? null,
      editable: name === "comment" ? "string" : (v?.type ?? null),
      tags: tagsOf(name),
    };
  });
}
