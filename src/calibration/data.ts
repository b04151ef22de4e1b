/** A constant's value as stored: an array (kept as .npy bytes, cast to its ctype's element type) or text (geometry). */
import os from "node:os";
import { DTYPES, isNdArray, ndarray, sizeOf, TYPED_DTYPES, type DType, type NdArray, type TypedArray } from "../core/ndarray.js";
import { DamnitError } from "../core/errors.js";
import { decodeNpy, encodeNpy } from "../db/npy.js";
import { CTYPE_ELEMENT_TYPES, type Ctype } from "./ctypes.js";

export type CalibValue = NdArray | string;

export interface StoredValue {
  readonly dtype: string;
  readonly shape: readonly number[];
  readonly data: Buffer | null;
  readonly text: string | null;
}

/** Cast numeric data to `dtype` as numpy's astype does (truncation towards zero for integers). */
export function castArray(array: NdArray, dtype: DType): NdArray {
  if (array.dtype === dtype) return array;
  if (DTYPES[array.dtype].lanes !== 1 || DTYPES[dtype].lanes !== 1) {
    throw new DamnitError("CALIB_BAD_DATA", `cannot cast ${array.dtype} data to ${dtype}`);
  }
  const n = sizeOf(array.shape);
  const intOut = dtype !== "float32" && dtype !== "float64";
  const out: number[] = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const v = array.data[i]!;
    const num = typeof v === "bigint" ? Number(v) : v;
    if (!Number.isFinite(num) && intOut) throw new DamnitError("CALIB_BAD_DATA", `cannot cast non-finite value ${num} to ${dtype}`);
    out[i] = intOut ? Math.trunc(num) : num;
  }
  return ndarray(dtype, array.shape, out);
}

/**
 * What context code may hand to `calibration.add`: an NdArray (or anything with dtype, shape and data, e.g. a labelled
 * array's data), a typed array (1-D of its type), an array of numbers (1-D float64), or text. Anything else is a
 * CALIB_BAD_DATA error saying what was given.
 */
export function asCalibValue(value: unknown): CalibValue {
  if (typeof value === "string" || isNdArray(value)) return value;
  if (ArrayBuffer.isView(value)) {
    const entry = TYPED_DTYPES.find(([ctor]) => value instanceof ctor);
    if (entry) return ndarray(entry[1], [(value as TypedArray).length], value as TypedArray);
  }
  if (Array.isArray(value) && value.every((v) => typeof v === "number")) return ndarray("float64", [value.length], value as number[]);
  if (typeof value === "object" && value !== null && "dtype" in value && "shape" in value && "data" in value) {
    const { dtype, shape, data } = value as { dtype: DType; shape: readonly number[]; data: TypedArray };
    if (dtype in DTYPES && Array.isArray(shape) && ArrayBuffer.isView(data)) return ndarray(dtype, shape, data);
  }
  const what = value === null ? "null" : Array.isArray(value) ? "an array that is not all numbers" : typeof value === "object" ? (value.constructor?.name ?? "object") : typeof value;
  throw new DamnitError("CALIB_BAD_DATA", `calibration constants must be an array (or text for geometry), not ${what}`);
}

export function toStored(ctype: Ctype, value: CalibValue): StoredValue {
  const want = CTYPE_ELEMENT_TYPES[ctype];
  if (want === "text") {
    if (typeof value !== "string") throw new DamnitError("CALIB_BAD_DATA", `${ctype} constants are text, not a ${value.dtype} array`);
    return { dtype: "text", shape: [], data: null, text: value };
  }
  if (typeof value === "string") throw new DamnitError("CALIB_BAD_DATA", `${ctype} constants are ${want} arrays, not text`);
  const cast = castArray(value, want);
  return { dtype: cast.dtype, shape: cast.shape, data: encodeNpy(cast), text: null };
}

/**
 * The value of a stored row. The store wrote every blob itself (encodeNpy: little-endian, C order) and keeps its
 * dtype and shape in columns, so with `shape` given the elements are copied straight out from behind the header;
 * anything unexpected goes through the full .npy decoder.
 */
export function fromStored(row: { dtype: string; data: Buffer | null; text: string | null }, shape?: readonly number[]): CalibValue {
  if (row.dtype === "text") return row.text ?? "";
  const bytes = row.data!;
  const info = (DTYPES as Record<string, (typeof DTYPES)[DType] | undefined>)[row.dtype];
  if (shape && info && bytes.length >= 10 && bytes[6] === 1 && os.endianness() === "LE") {
    const start = 10 + bytes.readUInt16LE(8);
    const n = sizeOf(shape) * info.lanes;
    const byteLength = sizeOf(shape) * info.itemSize;
    if (start + byteLength === bytes.length) {
      const copy = new ArrayBuffer(byteLength);
      new Uint8Array(copy).set(bytes.subarray(start));
      return { kind: "ndarray", dtype: row.dtype as DType, shape: [...shape], data: info.make(copy, 0, n) };
    }
  }
  return decodeNpy(bytes);
}
