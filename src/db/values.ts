/**
 * How one variable's value becomes an SQLite value, exactly as DAMNIT stores it (spec §4.3/§4.6), and back.
 * - numbers, strings, NULL as themselves; booleans as 0/1; NaN as NULL (SQLite's own rule);
 * - arrays as `.npy` blobs with summary_type `numpy` (or `trendline` for 2×N trendlines);
 * - complex scalars as 16-byte blobs with summary_type `complex`;
 * - PNG thumbnails (and any other bytes) as blobs with no summary_type.
 */
import { complex, decodeComplex, encodeComplex, isComplex, type Complex } from "./complex.js";
import { DamnitError } from "../core/errors.js";
import { isNdArray, type NdArray } from "../core/ndarray.js";
import { decodeNpy, encodeNpy, isNpy } from "./npy.js";
import { isPng, pngSize } from "./png-info.js";
import { asSqlInteger } from "./sql-integer.js";

export type SummaryType = "complex" | "numpy" | "trendline";

/** What a variable's summary can be. */
export type VariableValue = null | undefined | number | bigint | boolean | string | Complex | NdArray | Uint8Array;

export type SqliteValue = null | number | bigint | string | Buffer;

export interface EncodedValue {
  value: SqliteValue;
  summaryType: SummaryType | null;
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/**
 * JavaScript has one number type; SQLite has INTEGER and REAL. Whole numbers are stored as INTEGER (what a count
 * like `40` means) unless `real` asks for REAL (a float that happens to be whole, e.g. a typed-in `12` of a
 * `number` variable).
 */
export function encodeValue(value: VariableValue, summaryType: SummaryType | null = null, opts: { real?: boolean } = {}): EncodedValue {
  if (value === null || value === undefined) return { value: null, summaryType: null };
  switch (typeof value) {
    case "number":
      if (Number.isNaN(value)) return { value: null, summaryType: null };
      return { value: opts.real ? value : asSqlInteger(value), summaryType: null };
    case "bigint":
      if (value < INT64_MIN || value > INT64_MAX) {
        throw new DamnitError("BAD_VALUE", `integer ${value} does not fit in SQLite's 64-bit INTEGER`);
      }
      return { value, summaryType: null };
    case "boolean":
      return { value: value ? 1n : 0n, summaryType: null };
    case "string":
      return { value, summaryType: null };
  }
  if (isComplex(value)) return { value: encodeComplex(value), summaryType: "complex" };
  if (isNdArray(value)) {
    if (summaryType === "trendline" && (value.shape.length !== 2 || value.shape[0] !== 2)) {
      throw new DamnitError("BAD_VALUE", `a trendline is a 2×N array, got shape (${value.shape.join(", ")})`);
    }
    return { value: encodeNpy(value), summaryType: summaryType === "trendline" ? "trendline" : "numpy" };
  }
  if (value instanceof Uint8Array) {
    return { value: Buffer.from(value.buffer, value.byteOffset, value.byteLength), summaryType: null };
  }
  throw new DamnitError("BAD_VALUE", `cannot store a value of type ${describeType(value)} in the run database`);
}

function describeType(value: unknown): string {
  if (typeof value !== "object" || value === null) return typeof value;
  return (value as object).constructor?.name ?? "object";
}

export interface PngThumbnail {
  readonly kind: "png";
  readonly width: number;
  readonly height: number;
  readonly bytes: Uint8Array;
}

/** A blob that claims a format (by summary_type or magic bytes) but cannot be read as it; kept, not dropped. */
export interface UnreadableValue {
  readonly kind: "unreadable";
  readonly bytes: Uint8Array;
  readonly reason: string;
}

export type DecodedValue = null | number | bigint | string | Complex | NdArray | PngThumbnail | UnreadableValue | Uint8Array;

/**
 * Interpret a stored value the way DAMNIT's readers do: summary_type first, then the blob's magic bytes. One odd
 * cell (an array dtype we do not read, a damaged blob) becomes an UnreadableValue rather than failing the table.
 */
export function decodeValue(value: unknown, summaryType: unknown): DecodedValue {
  if (value === null || value === undefined) return null;
  if (typeof value === "number" || typeof value === "bigint" || typeof value === "string") return value;
  if (!(value instanceof Uint8Array)) throw new TypeError(`unexpected SQLite value of type ${typeof value}`);
  try {
    if (summaryType === "complex") return decodeComplex(value);
    if (summaryType === "numpy" || summaryType === "trendline" || isNpy(value)) return decodeNpy(value);
  } catch (err) {
    return { kind: "unreadable", bytes: value, reason: (err as Error).message };
  }
  if (isPng(value)) {
    const size = pngSize(value);
    if (!size) return { kind: "unreadable", bytes: value, reason: "PNG too short to hold its size" };
    return { kind: "png", width: size.width, height: size.height, bytes: value };
  }
  return value;
}

export { complex };
