/**
 * The summary of a variable's result: the value shown in its run-table cell (spec §3.6–3.7), after DAMNIT's
 * `Cell.get_summary`, `Cell._max_diff` and `Cell.summary_attrs` (`damnit_ctx.py`) and `save_fragment`'s
 * `summary_type` rule (`damnit_writing.py`).
 */

import { DTYPES, isNdArray, ndarray, shapeText, sizeOf, type NdArray, type TypedArray } from "../core/ndarray.js";
import { maxDiff } from "./max-diff.js";
import { thumbnailPng } from "./thumbnail.js";
import type { DataValue, LabelledArray, LabelledSet, StoredValue, SummaryAttrs } from "../core/variable-output.js";
import { isReduction, reduce, REDUCTIONS } from "./reductions.js";
import { trendline, trendlineOf } from "./trendline.js";

export { isReduction, reduce, REDUCTIONS, trendline };

/** xarray's Dataset.nbytes: the bytes of its data variables and of its coordinates. */
function datasetBytes(value: LabelledSet): number {
  let bytes = 0;
  const coords = new Map<string, NdArray>();
  for (const variable of value.variables) {
    bytes += variable.data.data.byteLength;
    for (const [dim, coord] of Object.entries(variable.coords)) coords.set(dim, coord);
  }
  for (const coord of coords.values()) bytes += coord.data.byteLength;
  return bytes;
}

function arrayOf(value: NdArray | LabelledArray): NdArray {
  return isNdArray(value) ? value : value.data;
}

/** The elements as float64, like numpy's `astype(np.float64)` (complex → real part, as numpy does with a warning). */
function asFloat64(array: NdArray): Float64Array {
  const n = sizeOf(array.shape);
  const data = array.data;
  if (DTYPES[array.dtype].lanes === 2) {
    const out = new Float64Array(n);
    for (let i = 0; i < n; i++) out[i] = data[2 * i] as number;
    return out;
  }
  if (data instanceof Float64Array) return data.length === n ? data : data.subarray(0, n);
  if (data instanceof BigInt64Array || data instanceof BigUint64Array) {
    const out = new Float64Array(n);
    for (let i = 0; i < n; i++) out[i] = Number(data[i]!);
    return out;
  }
  const out = new Float64Array(n);
  out.set(data.length === n ? data : (data.subarray(0, n) as Exclude<TypedArray, BigInt64Array | BigUint64Array>));
  return out;
}

/**
 * x values of a 1-D trendline: the dimension's numeric coordinate if it matches the data, else undefined for the
 * index.
 */
function trendlineX(value: NdArray | LabelledArray, n: number): Float64Array | undefined {
  if (isNdArray(value)) return undefined;
  const dim = value.dims[0];
  const coord = dim === undefined ? undefined : value.coords[dim];
  // numpy: a bool coordinate is not a number (np.issubdtype(bool, np.number) is False) → the index.
  if (coord && coord.shape.length === 1 && coord.shape[0] === n && coord.dtype !== "bool") return asFloat64(coord);
  return undefined;
}

/** The y values of a trendline: float data as it is, anything else as float64. */
function trendlineY(array: NdArray): Float64Array | Float32Array {
  const n = sizeOf(array.shape);
  if (array.dtype === "float32") {
    const data = array.data as Float32Array;
    return data.length === n ? data : data.subarray(0, n);
  }
  return asFloat64(array);
}

/**
 * DAMNIT's default summary of a value (no summary method, no summary_value): string → itself; 0-d array → that
 * array; 1-D → trendline (x = the labelled array's coordinate for its dimension if numeric, else the index;
 * an error gives "<trendline error>"); 2-D → PNG bytes as a 1-D uint8 array (`thumbnailPng` of the data; an
 * error, e.g. complex or empty data, gives "<thumbnail error>"); ≥3-D → "<dtype>: <shape>" in numpy spelling.
 */
export function defaultSummary(value: DataValue): { value: StoredValue; trendline: boolean } | undefined {
  if (typeof value === "string") return { value, trendline: false };
  if (!isNdArray(value) && value?.kind === "image") {
    return { value: value.thumbnail ?? "<thumbnail error>", trendline: false };
  }
  if (!isNdArray(value) && value?.kind === "dataset") return { value: `Dataset (${(datasetBytes(value) / 1e6).toFixed(2)}MB)`, trendline: false };
  if (!isNdArray(value) && (typeof value !== "object" || value === null || value.kind !== "labelled")) return undefined;
  const array = arrayOf(value);
  const ndim = array.shape.length;
  if (ndim === 0) return { value: array, trendline: false };
  if (ndim === 1) {
    try {
      const y = trendlineY(array);
      return { value: trendlineOf(trendlineX(value, y.length), y), trendline: true };
    } catch {
      return { value: "<trendline error>", trendline: false };
    }
  }
  if (ndim === 2) {
    try {
      const png = thumbnailPng(array);
      return { value: ndarray("uint8", [png.length], png.slice()), trendline: false };
    } catch {
      return { value: "<thumbnail error>", trendline: false };
    }
  }
  return { value: `${array.dtype}: ${shapeText(array.shape)}`, trendline: false };
}

// ---------------------------------------------------------------------------------------------------------------
// max_diff

/** numpy's fmax/fmin reduction of complex values (lexicographic, NaN-ignoring) → |max − min|. */
function complexMaxDiff(data: TypedArray, n: number, single: boolean): number | undefined {
  let found = false;
  let maxRe = 0;
  let maxIm = 0;
  let minRe = 0;
  let minIm = 0;
  for (let i = 0; i < n; i++) {
    const re = data[2 * i] as number;
    const im = data[2 * i + 1] as number;
    if (re !== re || im !== im) continue;
    if (!found) {
      maxRe = minRe = re;
      maxIm = minIm = im;
      found = true;
      continue;
    }
    if (re > maxRe || (re === maxRe && im > maxIm)) {
      maxRe = re;
      maxIm = im;
    }
    if (re < minRe || (re === minRe && im < minIm)) {
      minRe = re;
      minIm = im;
    }
  }
  if (!found) return undefined;
  let dRe = maxRe - minRe;
  let dIm = maxIm - minIm;
  if (single) {
    dRe = Math.fround(dRe);
    dIm = Math.fround(dIm);
  }
  return Math.hypot(dRe, dIm);
}

/** |nanmax − nanmin| of 64-bit integers, the subtraction wrapping in int64 as numpy's does. */
function bigMaxDiff(data: BigInt64Array | BigUint64Array, n: number): number {
  let max = data[0]!;
  let min = data[0]!;
  for (let i = 1; i < n; i++) {
    const v = data[i]!;
    if (v > max) max = v;
    else if (v < min) min = v;
  }
  let diff = max - min;
  if (data instanceof BigInt64Array) diff = BigInt.asIntN(64, diff);
  return Math.abs(Number(diff));
}

const SIGNED_BITS: Readonly<Record<string, number>> = { int8: 8, int16: 16, int32: 32 };

/**
 * `max_diff` per spec §3.7: for array (or labelled array) data with more than one element, bool → 1 if both values
 * occur else 0; otherwise |nanmax − nanmin| as numpy computes it (the subtraction in the data's dtype, so float32
 * rounds and signed integers wrap, e.g. int8 [-128, 127] gives 1). Undefined for strings, scalars, all-NaN data.
 */
export function maxDiffOf(data: DataValue | undefined): number | undefined {
  // DAMNIT's Cell._max_diff: only for arrays and DataArrays (not figures, not Datasets)
  if (data === undefined || typeof data === "string" || (!isNdArray(data) && (data.kind === "image" || data.kind === "dataset"))) return undefined;
  const array = arrayOf(data);
  const n = sizeOf(array.shape);
  if (n <= 1) return undefined;
  const { dtype } = array;
  const values = array.data;
  if (dtype === "bool") return maxDiff(values.subarray(0, n), { bool: true }) ?? undefined;
  if (dtype === "complex64" || dtype === "complex128") return complexMaxDiff(values, n, dtype === "complex64");
  if (values instanceof BigInt64Array || values instanceof BigUint64Array) return bigMaxDiff(values, n);
  const diff = maxDiff(values.subarray(0, n));
  if (diff === null) return undefined;
  if (dtype === "float32") return Math.fround(diff);
  const bits = SIGNED_BITS[dtype];
  if (bits !== undefined && diff >= 2 ** (bits - 1)) return 2 ** bits - diff;
  return diff;
}

// ---------------------------------------------------------------------------------------------------------------
// Summary methods on any data value

/**
 * What xarray does for `np.<method>(dataarray)`: numpy hands mean/sum/min/… to the DataArray's own method, which
 * skips NaN by default for float data. np.median, np.average, np.nan* etc. convert to a plain array first.
 */
const XARRAY_SKIPNA: Readonly<Record<string, string>> = {
  mean: "nanmean",
  sum: "nansum",
  prod: "nanprod",
  min: "nanmin",
  amin: "nanmin",
  max: "nanmax",
  amax: "nanmax",
  std: "nanstd",
  var: "nanvar",
};

/**
 * `np.asarray(getattr(np, method)(data))` for any data value, as DAMNIT evaluates a summary method:
 * - an array: `reduce(method, array)`;
 * - a labelled array (xarray DataArray): float data skips NaN for mean/sum/prod/min/max/std/var (xarray's default
 *   `skipna`), ptp fails as it does on xarray objects, everything else reduces the data;
 * - a string: numpy sees a 0-d string array, so `size` is 1 and `count_nonzero` is 1 unless it is empty; every other
 *   reduction fails.
 * Throws an Error where DAMNIT's call would raise.
 */
export function reduceValue(method: string, data: DataValue): NdArray {
  if (!isReduction(method)) throw new Error(`unknown summary method ${JSON.stringify(method)}`);
  if (typeof data === "string") {
    if (method === "size") return ndarray("int64", [], [1]);
    if (method === "count_nonzero") return ndarray("int64", [], [data === "" ? 0 : 1]);
    throw new Error(`cannot compute ${method} of a string`);
  }
  if (isNdArray(data)) return reduce(method, data);
  if (data.kind === "image") throw new Error(`cannot compute ${method} of a figure`);
  if (data.kind === "dataset") throw new Error(`cannot compute ${method} of a Dataset as one value`);
  const array = data.data;
  if (method === "ptp") throw new Error("ptp (reduce method of ufunc maximum) is not implemented on xarray objects");
  const isFloat = array.dtype === "float32" || array.dtype === "float64";
  return reduce(isFloat ? (XARRAY_SKIPNA[method] ?? method) : method, array);
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * The whole rule of §3.7: precedence summaryValue > summaryMethod applied to data > default of (preview ?? data).
 * If the method throws, a warning "Failed to produce summary data for <name>: <message>" is added to `warnings`
 * and the default summary is used, as DAMNIT does (it logs an ERROR and falls through to its defaults).
 *
 * attrs: summary_method (whenever a method is set, even if summaryValue wins or the method failed),
 * summary_type "trendline" when the summary is a 2-row 2-D array (whatever produced it, as DAMNIT's
 * `save_fragment` decides), max_diff from maxDiffOf(data). DAMNIT writes these attributes only with a summary:
 * when `summary` is undefined the caller stores nothing in `.reduced`.
 */
export function summarise(
  name: string,
  input: { data?: DataValue; preview?: DataValue; summaryValue?: StoredValue; summaryMethod?: string },
): { summary?: StoredValue; attrs: SummaryAttrs; warnings: string[] } {
  const { data, preview, summaryValue, summaryMethod } = input;
  const warnings: string[] = [];
  const attrs: SummaryAttrs = {};
  if (summaryMethod !== undefined) attrs.summary_method = summaryMethod;

  let summary: StoredValue | undefined = summaryValue;
  if (summary === undefined && data !== undefined && summaryMethod !== undefined) {
    try {
      summary = reduceValue(summaryMethod, data);
    } catch (error) {
      warnings.push(`Failed to produce summary data for ${name}: ${errorMessage(error)}`);
    }
  }
  if (summary === undefined) {
    const source = preview ?? data;
    if (source !== undefined) summary = defaultSummary(source)?.value;
  }

  if (summary !== undefined && isNdArray(summary) && summary.shape.length === 2 && summary.shape[0] === 2) {
    attrs.summary_type = "trendline";
  }
  const diff = maxDiffOf(data);
  if (diff !== undefined) attrs.max_diff = diff;
  return summary === undefined ? { attrs, warnings } : { summary, attrs, warnings };
}
