/** Turning stored values into table text (`<png 300x300>`, `<array float64 (2,150)>`) and into JSON. */
import type { CellValue } from "../db/run-table.js";
import type { DecodedValue } from "../db/values.js";
import { DTYPES } from "../core/ndarray.js";

function compactNumber(n: number): string {
  if (Number.isInteger(n) && Math.abs(n) < 1e15) return String(n);
  if (!Number.isFinite(n)) return String(n);
  const abs = Math.abs(n);
  if (abs !== 0 && (abs < 1e-4 || abs >= 1e9)) return n.toExponential(4);
  return String(Number(n.toPrecision(10)));
}

export function valueText(value: DecodedValue): string {
  if (value === null) return "";
  if (typeof value === "number") return compactNumber(value);
  if (typeof value === "bigint" || typeof value === "string") return String(value);
  if (value instanceof Uint8Array) return `<blob ${value.length} B>`;
  switch (value.kind) {
    case "png":
      return `<png ${value.width}x${value.height}>`;
    case "unreadable":
      return `<unreadable blob: ${value.reason}>`;
    case "ndarray":
      return `<array ${value.dtype} (${value.shape.join(",")})>`;
    case "complex":
      return `${compactNumber(value.re)}${value.im < 0 || Object.is(value.im, -0) ? "-" : "+"}${compactNumber(Math.abs(value.im))}j`;
  }
}

/** What a table cell shows: the value, or the error that replaced it. */
export function cellText(cell: CellValue | undefined): string {
  if (!cell) return "";
  if (cell.value === null && cell.attributes?.error !== undefined) {
    return `<${cell.attributes.error_cls || "error"}: ${String(cell.attributes.error).split("\n")[0]}>`;
  }
  const value = cell.value;
  // A trendline is what a 1-D variable shows in DAMNIT's table (a sparkline); say so rather than "array (2,N)".
  const text =
    cell.summaryType === "trendline" && value !== null && typeof value === "object" && "kind" in value && value.kind === "ndarray"
      ? `<trendline ${value.shape[1]} points>`
      : valueText(value);
  return cell.attributes?.units && text !== "" ? `${text} ${cell.attributes.units}` : text;
}

function plainNumber(v: number | bigint): number | string {
  if (typeof v === "number") return Number.isFinite(v) ? v : String(v);
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString();
}

export function valueJson(value: DecodedValue): unknown {
  if (value === null || typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "bigint") return plainNumber(value);
  if (value instanceof Uint8Array) return { type: "blob", bytes: value.length };
  switch (value.kind) {
    case "png":
      return { type: "png", width: value.width, height: value.height, bytes: value.bytes.length };
    case "complex":
      return { type: "complex", re: plainNumber(value.re), im: plainNumber(value.im) };
    case "unreadable":
      return { type: "unreadable", bytes: value.bytes.length, reason: value.reason };
    case "ndarray": {
      const flat = Array.from(value.data as ArrayLike<number | bigint>, plainNumber);
      const data = DTYPES[value.dtype].lanes === 2 ? pairs(flat) : value.dtype === "bool" ? flat.map((v) => v === 1) : flat;
      return { type: "array", dtype: value.dtype, shape: value.shape, data };
    }
  }
}

function pairs(flat: unknown[]): unknown[] {
  const out = [];
  for (let i = 0; i < flat.length; i += 2) out.push({ re: flat[i], im: flat[i + 1] });
  return out;
}
