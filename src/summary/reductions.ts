/**
 * numpy reductions over a whole array, for a variable's `summary` option (DAMNIT evaluates
 * `np.asarray(getattr(np, summary)(data))`, spec §3.7). Each returns a 0-d array of numpy's result dtype.
 *
 * Numerics follow numpy 1.24/2.x closely enough to reproduce its results bit for bit in the common cases:
 * - float sums (sum, mean, var, std and their nan-variants) are summed like numpy's add.reduce: in buffers of 8192
 *   elements, each summed pairwise (8 accumulators, blocks of 128) and added to the total in turn; float32 data is
 *   summed in float32 arithmetic (every addition rounded with `Math.fround`), as numpy does without an explicit
 *   dtype; integer and bool data reduced to float64 (mean, var, std, median) is converted first;
 * - integer sums and products are exact modulo 2^64 and wrap like numpy's int64/uint64 (no overflow error);
 *   ptp wraps within the input dtype (np.ptp of int8 [-128, 127] is -1) like numpy;
 * - float products multiply left to right (numpy's scalar loop; a SIMD build may round differently in the last bit).
 *
 * Empty arrays: sum/prod give 0/1, mean/var/std/median give NaN (numpy warns and returns nan), min/max/ptp throw
 * numpy's "zero-size array to reduction operation … which has no identity".
 * Complex data throws "complex data is not supported" (except `size`).
 */

import { DTYPES, HOST_BIG_ENDIAN, ndarray, sizeOf, type DType, type NdArray, type TypedArray } from "../core/ndarray.js";
import { selectInPlace } from "./select.js";

/** Names accepted by a variable's `summary` option (numpy reductions). */
export const REDUCTIONS: readonly string[] = Object.freeze([
  "all",
  "amax",
  "amin",
  "any",
  "average",
  "count_nonzero",
  "max",
  "mean",
  "median",
  "min",
  "nanmax",
  "nanmean",
  "nanmedian",
  "nanmin",
  "nanprod",
  "nanstd",
  "nansum",
  "nanvar",
  "prod",
  "ptp",
  "size",
  "std",
  "sum",
  "var",
]);

const REDUCTION_SET: ReadonlySet<string> = new Set(REDUCTIONS);

export function isReduction(name: string): boolean {
  return REDUCTION_SET.has(name);
}

// ---------------------------------------------------------------------------------------------------------------
// dtype helpers

type Kind = "bool" | "int" | "uint" | "float";

function kindOf(dtype: DType): Kind {
  switch (dtype) {
    case "bool":
      return "bool";
    case "int8":
    case "int16":
    case "int32":
    case "int64":
      return "int";
    case "uint8":
    case "uint16":
    case "uint32":
    case "uint64":
      return "uint";
    default:
      return "float";
  }
}

const BITS: Partial<Record<DType, number>> = { int8: 8, int16: 16, int32: 32, uint8: 8, uint16: 16, uint32: 32 };

/** A 0-d array holding `value`. */
function scalar(dtype: DType, value: number | bigint | boolean): NdArray {
  const info = DTYPES[dtype];
  const data = info.make(new ArrayBuffer(info.itemSize), 0, 1);
  if (data instanceof BigInt64Array || data instanceof BigUint64Array) data[0] = BigInt(value);
  else data[0] = Number(value);
  return ndarray(dtype, [], data);
}

// ---------------------------------------------------------------------------------------------------------------
// Element access
//
// Every hot loop below runs over a Float32Array or a Float64Array only, so V8 keeps its element accesses bimorphic
// and fast. Other element types are converted in chunks of NPY_BUFSIZE elements into a reused Float64Array
// (natively, with `set`; 64-bit integers rounded to the nearest double as a C cast does), so no full-size copy is
// made. Exact 64-bit integer work (sums, products, extremes) keeps BigInts.

type Floats = Float32Array | Float64Array;
type NumberArray = Exclude<TypedArray, BigInt64Array | BigUint64Array>;

function isFloats(data: TypedArray): data is Floats {
  return data instanceof Float64Array || data instanceof Float32Array;
}

/** Converts `data[start..start+m)` to doubles in `out[0..m)`. */
function convertInto(data: TypedArray, start: number, m: number, out: Float64Array): void {
  if (data instanceof BigInt64Array || data instanceof BigUint64Array) {
    for (let i = 0; i < m; i++) out[i] = Number(data[start + i]!);
  } else {
    out.set((data as NumberArray).subarray(start, start + m));
  }
}

/**
 * Calls `visit(a, lo, hi)` over the first `n` elements as floats, in order: once with the array itself when it is a
 * float array, else once per converted chunk of at most NPY_BUFSIZE elements. `visit` returns false to stop early.
 */
function eachChunk(data: TypedArray, n: number, visit: (a: Floats, lo: number, hi: number) => boolean | void): void {
  if (isFloats(data)) {
    visit(data, 0, n);
    return;
  }
  const buffer = new Float64Array(Math.min(n, NPY_BUFSIZE));
  for (let start = 0; start < n; start += NPY_BUFSIZE) {
    const m = Math.min(NPY_BUFSIZE, n - start);
    convertInto(data, start, m, buffer);
    if (visit(buffer, 0, m) === false) return;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Pairwise summation (numpy's `pairwise_sum`)

const PW_BLOCKSIZE = 128;
/** numpy's buffer size (elements): the most a reduction's inner loop is given at once. */
const NPY_BUFSIZE = 8192;

/** Sums `a[lo..lo+n)`, n ≤ 128, the way numpy's pairwise_sum sums a leaf block. */
function leafSum64(a: Floats, lo: number, n: number): number {
  if (n < 8) {
    let res = 0;
    for (let i = 0; i < n; i++) res += a[lo + i]!;
    return res;
  }
  let r0 = a[lo]!;
  let r1 = a[lo + 1]!;
  let r2 = a[lo + 2]!;
  let r3 = a[lo + 3]!;
  let r4 = a[lo + 4]!;
  let r5 = a[lo + 5]!;
  let r6 = a[lo + 6]!;
  let r7 = a[lo + 7]!;
  const end = lo + n - (n % 8);
  let i = lo + 8;
  for (; i < end; i += 8) {
    r0 += a[i]!;
    r1 += a[i + 1]!;
    r2 += a[i + 2]!;
    r3 += a[i + 3]!;
    r4 += a[i + 4]!;
    r5 += a[i + 5]!;
    r6 += a[i + 6]!;
    r7 += a[i + 7]!;
  }
  let res = r0 + r1 + (r2 + r3) + (r4 + r5 + (r6 + r7));
  for (const stop = lo + n; i < stop; i++) res += a[i]!;
  return res;
}

/** As leafSum64, in float32 arithmetic (the values in `a` are float32 values). */
function leafSum32(a: Floats, lo: number, n: number): number {
  const f = Math.fround;
  if (n < 8) {
    let res = 0;
    for (let i = 0; i < n; i++) res = f(res + a[lo + i]!);
    return res;
  }
  let r0 = a[lo]!;
  let r1 = a[lo + 1]!;
  let r2 = a[lo + 2]!;
  let r3 = a[lo + 3]!;
  let r4 = a[lo + 4]!;
  let r5 = a[lo + 5]!;
  let r6 = a[lo + 6]!;
  let r7 = a[lo + 7]!;
  const end = lo + n - (n % 8);
  let i = lo + 8;
  for (; i < end; i += 8) {
    r0 = f(r0 + a[i]!);
    r1 = f(r1 + a[i + 1]!);
    r2 = f(r2 + a[i + 2]!);
    r3 = f(r3 + a[i + 3]!);
    r4 = f(r4 + a[i + 4]!);
    r5 = f(r5 + a[i + 5]!);
    r6 = f(r6 + a[i + 6]!);
    r7 = f(r7 + a[i + 7]!);
  }
  let res = f(f(f(r0 + r1) + f(r2 + r3)) + f(f(r4 + r5) + f(r6 + r7)));
  for (const stop = lo + n; i < stop; i++) res = f(res + a[i]!);
  return res;
}

/** numpy's pairwise sum of `a[lo..lo+n)`; `f32` sums in float32. */
function pairwise(a: Floats, lo: number, n: number, f32: boolean): number {
  if (n <= PW_BLOCKSIZE) return f32 ? leafSum32(a, lo, n) : leafSum64(a, lo, n);
  let n2 = Math.floor(n / 2);
  n2 -= n2 % 8;
  const s = pairwise(a, lo, n2, f32) + pairwise(a, lo + n2, n - n2, f32);
  return f32 ? Math.fround(s) : s;
}

/** Writes transformed values of `a[start..start+m)` to `out[0..m)`. */
type Transform = (a: Floats, start: number, m: number, out: Float64Array) => void;

/**
 * Sum of the first `n` values of `data` (optionally transformed) as numpy's add.reduce computes it: the output
 * starts at 0 (add's identity) and the reduction iterator hands the inner loop at most NPY_BUFSIZE (8192) elements
 * at a time, each pairwise-summed and added to the output in turn. `f32` does all of it in float32 arithmetic.
 * Non-float data is converted to float64 chunk by chunk, as numpy's casting buffers do.
 */
function bufferedSum(data: TypedArray, n: number, f32: boolean, transform?: Transform): number {
  const direct = isFloats(data) ? data : undefined;
  const converted = direct ? undefined : new Float64Array(Math.min(n, NPY_BUFSIZE));
  const transformed = transform ? new Float64Array(Math.min(n, NPY_BUFSIZE)) : undefined;
  let acc = 0;
  for (let start = 0; start < n; start += NPY_BUFSIZE) {
    const m = Math.min(NPY_BUFSIZE, n - start);
    let source: Floats;
    let lo: number;
    if (direct) {
      source = direct;
      lo = start;
    } else {
      convertInto(data, start, m, converted!);
      source = converted!;
      lo = 0;
    }
    let s: number;
    if (transform) {
      transform(source, lo, m, transformed!);
      s = pairwise(transformed!, 0, m, f32);
    } else {
      s = pairwise(source, lo, m, f32);
    }
    acc = f32 ? Math.fround(acc + s) : acc + s;
  }
  return acc;
}

/** NaN → 0 (numpy's `_replace_nan(a, 0)`). */
const nanToZero: Transform = (a, start, m, out) => {
  for (let i = 0; i < m; i++) {
    const v = a[start + i]!;
    out[i] = v === v ? v : 0;
  }
};

/** Squared deviations from `mean`; with `skipNaN`, NaN elements contribute 0 (numpy's nanvar). */
function squaredDeviations(mean: number, f32: boolean, skipNaN: boolean): Transform {
  if (f32) {
    const f = Math.fround;
    return (a, start, m, out) => {
      for (let i = 0; i < m; i++) {
        const v = a[start + i]!;
        if (skipNaN && v !== v) {
          out[i] = 0;
        } else {
          const d = f(v - mean);
          out[i] = f(d * d);
        }
      }
    };
  }
  return (a, start, m, out) => {
    for (let i = 0; i < m; i++) {
      const v = a[start + i]!;
      if (skipNaN && v !== v) {
        out[i] = 0;
      } else {
        const d = v - mean;
        out[i] = d * d;
      }
    }
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Integer sums and products, exact modulo 2^64

/** Elements per chunk whose sum of 32-bit halves stays exactly representable in a double. */
const EXACT_CHUNK = 1 << 20;

function wrap64(value: bigint, unsigned: boolean): bigint {
  return unsigned ? BigInt.asUintN(64, value) : BigInt.asIntN(64, value);
}

function intSum(data: TypedArray, n: number, unsigned: boolean): bigint {
  if (data instanceof BigInt64Array || data instanceof BigUint64Array) {
    if (!HOST_BIG_ENDIAN) {
      // Sum the low (unsigned) and high 32-bit halves separately in doubles, then combine.
      const lo = new Uint32Array(data.buffer, data.byteOffset, n * 2);
      const hi = data instanceof BigInt64Array ? new Int32Array(data.buffer, data.byteOffset, n * 2) : lo;
      let loTotal = 0n;
      let hiTotal = 0n;
      for (let start = 0; start < n; start += EXACT_CHUNK) {
        const end = Math.min(n, start + EXACT_CHUNK);
        let loSum = 0;
        let hiSum = 0;
        for (let i = start; i < end; i++) {
          loSum += lo[2 * i]!;
          hiSum += hi[2 * i + 1]!;
        }
        loTotal += BigInt(loSum);
        hiTotal += BigInt(hiSum);
      }
      return wrap64((hiTotal << 32n) + loTotal, unsigned);
    }
    let total = 0n;
    for (let i = 0; i < n; i++) total += data[i]!;
    return wrap64(total, unsigned);
  }
  // Chunks of ≤ 8192 values of ≤ 32 bits sum exactly in a double.
  let total = 0n;
  eachChunk(data, n, (a, lo, hi) => {
    let sum = 0;
    for (let i = lo; i < hi; i++) sum += a[i]!;
    total += BigInt(sum);
  });
  return wrap64(total, unsigned);
}

function intProd(data: TypedArray, n: number, unsigned: boolean): bigint {
  let product = 1n;
  if (data instanceof BigInt64Array || data instanceof BigUint64Array) {
    for (let i = 0; i < n && product !== 0n; i++) product = wrap64(product * data[i]!, unsigned);
    return product;
  }
  // Multiplication modulo 2^64 is associative, so exact partial products in doubles can be folded in any order.
  let partial = 1;
  eachChunk(data, n, (a, lo, hi) => {
    let p = partial;
    for (let i = lo; i < hi; i++) {
      const v = a[i]!;
      const next = p * v;
      if (Math.abs(next) <= Number.MAX_SAFE_INTEGER) {
        p = next;
      } else {
        product = wrap64(product * BigInt(p), unsigned);
        p = v;
      }
    }
    partial = p;
    return product !== 0n;
  });
  return wrap64(product * BigInt(partial), unsigned);
}

// ---------------------------------------------------------------------------------------------------------------
// Extremes

function emptyExtreme(op: string): Error {
  return new Error(`zero-size array to reduction operation ${op} which has no identity`);
}

function bigExtreme(data: BigInt64Array | BigUint64Array, n: number, max: boolean): bigint {
  let value = data[0]!;
  if (max) {
    for (let i = 1; i < n; i++) if (data[i]! > value) value = data[i]!;
  } else {
    for (let i = 1; i < n; i++) if (data[i]! < value) value = data[i]!;
  }
  return value;
}

/** The maximum of `a[lo..hi)` and `acc` (start at -Infinity); NaN as soon as an element is NaN, unless `skipNaN`. */
function foldMax(a: Floats, lo: number, hi: number, acc: number, skipNaN: boolean): number {
  for (let i = lo; i < hi; i++) {
    const v = a[i]!;
    if (v > acc) acc = v;
    else if (v !== v && !skipNaN) return NaN;
  }
  return acc;
}

/** As foldMax, for the minimum (start at +Infinity). */
function foldMin(a: Floats, lo: number, hi: number, acc: number, skipNaN: boolean): number {
  for (let i = lo; i < hi; i++) {
    const v = a[i]!;
    if (v < acc) acc = v;
    else if (v !== v && !skipNaN) return NaN;
  }
  return acc;
}

/**
 * The minimum or maximum (n > 0) in the data's own type: NaN if an element is NaN, unless `skipNaN`; with `skipNaN`
 * NaN if all are (numpy's nanmin/nanmax warn "All-NaN slice encountered" and return NaN).
 */
function extremeValue(data: TypedArray, n: number, max: boolean, skipNaN: boolean): number | bigint {
  if (data instanceof BigInt64Array || data instanceof BigUint64Array) return bigExtreme(data, n, max);
  const fold = max ? foldMax : foldMin;
  const start = max ? -Infinity : Infinity;
  let acc = start;
  if (isFloats(data)) {
    acc = fold(data, 0, n, acc, skipNaN);
  } else {
    const buffer = new Float64Array(Math.min(n, NPY_BUFSIZE));
    for (let lo = 0; lo < n; lo += NPY_BUFSIZE) {
      const m = Math.min(NPY_BUFSIZE, n - lo);
      convertInto(data, lo, m, buffer);
      acc = fold(buffer, 0, m, acc, false);
    }
  }
  // Still at the start value: all elements were ±Infinity like it, or (with skipNaN) all NaN.
  if (acc === start && isFloats(data) && skipNaN && countNotNaN(data, n) === 0) return NaN;
  return acc;
}

function extreme(array: NdArray, n: number, max: boolean, skipNaN: boolean, op: string): NdArray {
  if (n === 0) throw emptyExtreme(op);
  return scalar(array.dtype, extremeValue(array.data, n, max, skipNaN));
}

function ptp(array: NdArray, n: number): NdArray {
  const { dtype, data } = array;
  if (dtype === "bool") {
    throw new Error("numpy boolean subtract, the `-` operator, is not supported (ptp of a bool array)");
  }
  if (n === 0) throw emptyExtreme("maximum");
  const hi = extremeValue(data, n, true, false);
  const lo = extremeValue(data, n, false, false);
  if (typeof hi === "bigint" || typeof lo === "bigint") {
    return scalar(dtype, wrap64((hi as bigint) - (lo as bigint), dtype === "uint64"));
  }
  let diff = hi - lo;
  const bits = BITS[dtype];
  if (dtype === "float32") diff = Math.fround(diff);
  else if (bits !== undefined && kindOf(dtype) === "int" && diff >= 2 ** (bits - 1)) diff -= 2 ** bits;
  return scalar(dtype, diff);
}

// ---------------------------------------------------------------------------------------------------------------
// Means, variances, medians

/** The float dtype numpy gives mean/var/std/median of `dtype`. */
function floatResult(dtype: DType): DType {
  return dtype === "float32" ? "float32" : "float64";
}

function countNotNaN(a: Floats, n: number): number {
  let count = 0;
  for (let i = 0; i < n; i++) if (a[i] === a[i]) count++;
  return count;
}

/** Mean of the data; `f32` for float32 data; `skipNaN` for nanmean of float data. */
function meanOf(a: TypedArray, n: number, f32: boolean, skipNaN: boolean): number {
  const count = skipNaN ? countNotNaN(a as Floats, n) : n;
  const total = bufferedSum(a, n, f32, skipNaN ? nanToZero : undefined);
  return f32 ? Math.fround(total / count) : total / count;
}

/** numpy's var with ddof=0 (nanvar when `skipNaN`, for float data). */
function varianceOf(a: TypedArray, n: number, f32: boolean, skipNaN: boolean): number {
  const count = skipNaN ? countNotNaN(a as Floats, n) : n;
  const mean = meanOf(a, n, f32, skipNaN);
  const total = bufferedSum(a, n, f32, squaredDeviations(mean, f32, skipNaN));
  return f32 ? Math.fround(total / count) : total / count;
}


/** numpy's median (NaN if any element is NaN; nanmedian drops NaNs first). */
function medianOf(data: TypedArray, n: number, f32: boolean, skipNaN: boolean): number {
  const values = new Float64Array(n);
  let m = 0;
  let sawNaN = false;
  eachChunk(data, n, (a, lo, hi) => {
    const out = values;
    const skip = skipNaN;
    let k = m;
    for (let i = lo; i < hi; i++) {
      const v = a[i]!;
      if (v !== v) {
        if (skip) continue;
        sawNaN = true;
        return false;
      }
      out[k++] = v;
    }
    m = k;
    return true;
  });
  if (sawNaN) return NaN;
  // Empty, or all NaN for nanmedian: numpy warns and returns NaN.
  if (m === 0) return NaN;
  const half = m >>> 1;
  const upper = selectInPlace(values, half, 0, m - 1);
  if (m % 2 === 1) return 0 + upper;
  // values[0..half) are all ≤ upper; the lower middle is their maximum.
  let lower = values[0]!;
  for (let i = 1; i < half; i++) if (values[i]! > lower) lower = values[i]!;
  // numpy takes the mean of the two middle elements: (0 + lower + upper) / 2 in the result precision.
  return f32 ? Math.fround(Math.fround(0 + lower + upper) / 2) : (0 + lower + upper) / 2;
}

// ---------------------------------------------------------------------------------------------------------------

function countNonzero(data: TypedArray, n: number): number {
  let count = 0;
  eachChunk(data, n, (a, lo, hi) => {
    let c = 0;
    for (let i = lo; i < hi; i++) if (a[i] !== 0) c++;
    count += c;
  });
  return count;
}

/** Is some element (`any`) or every element (`!any`) nonzero? */
function anyAll(data: TypedArray, n: number, any: boolean): boolean {
  let result = !any;
  eachChunk(data, n, (a, lo, hi) => {
    const stopAt = any;
    for (let i = lo; i < hi; i++) {
      if ((a[i] !== 0) === stopAt) {
        result = stopAt;
        return false;
      }
    }
    return true;
  });
  return result;
}

function floatProd(a: Floats, n: number, f32: boolean, skipNaN: boolean): number {
  let p = 1;
  for (let i = 0; i < n; i++) {
    const v = a[i]!;
    if (skipNaN && v !== v) continue;
    p = f32 ? Math.fround(p * v) : p * v;
  }
  return p;
}

/**
 * numpy `<method>(data)` over all elements → a 0-d NdArray with numpy's result dtype. Throws an Error with a clear
 * message where numpy would raise, and for an unknown method or complex data.
 */
export function reduce(method: string, data: NdArray): NdArray {
  if (!isReduction(method)) throw new Error(`unknown summary method ${JSON.stringify(method)}`);
  const n = sizeOf(data.shape);
  const info = DTYPES[data.dtype];
  if (method === "size") return scalar("int64", n);
  if (info.lanes !== 1) throw new Error("complex data is not supported");
  if (data.data.length < n) {
    throw new Error(`array data has ${data.data.length} elements, its shape needs ${n}`);
  }
  const { dtype } = data;
  const kind = kindOf(dtype);
  const isFloat = kind === "float";
  const f32 = dtype === "float32";
  const nan = method.startsWith("nan");
  const base = nan ? method.slice(3) : method;
  // The nan-variants behave like the plain reductions on bool and integer data.
  const skipNaN = nan && isFloat;

  switch (base) {
    case "sum":
      if (isFloat) return scalar(dtype, bufferedSum(data.data, n, f32, skipNaN ? nanToZero : undefined));
      return kind === "uint"
        ? scalar("uint64", intSum(data.data, n, true))
        : scalar("int64", intSum(data.data, n, false));
    case "prod":
      if (isFloat) return scalar(dtype, floatProd(data.data as Floats, n, f32, skipNaN));
      return kind === "uint"
        ? scalar("uint64", intProd(data.data, n, true))
        : scalar("int64", intProd(data.data, n, false));
    case "mean":
    case "average":
      return scalar(floatResult(dtype), n === 0 ? NaN : meanOf(data.data, n, f32, skipNaN));
    case "var":
      return scalar(floatResult(dtype), n === 0 ? NaN : varianceOf(data.data, n, f32, skipNaN));
    case "std": {
      const variance = n === 0 ? NaN : varianceOf(data.data, n, f32, skipNaN);
      return scalar(floatResult(dtype), f32 ? Math.fround(Math.sqrt(variance)) : Math.sqrt(variance));
    }
    case "median":
      return scalar(floatResult(dtype), medianOf(data.data, n, f32, skipNaN));
    case "min":
    case "amin":
      return extreme(data, n, false, skipNaN, nan ? "fmin" : "minimum");
    case "max":
    case "amax":
      return extreme(data, n, true, skipNaN, nan ? "fmax" : "maximum");
    case "ptp":
      return ptp(data, n);
    case "any":
      return scalar("bool", anyAll(data.data, n, true));
    case "all":
      return scalar("bool", anyAll(data.data, n, false));
    case "count_nonzero":
      return scalar("int64", countNonzero(data.data, n));
  }
  throw new Error(`unknown summary method ${JSON.stringify(method)}`);
}
