/**
 * Stored values (strings and NdArrays) as HDF5 datasets, the way h5py writes numpy values: numbers in their own
 * dtype, bool as the enum {FALSE, TRUE} on int8, complex numbers as records {r, i}, strings as variable-length UTF-8.
 */
import type { File as H5File } from "h5wasm/node";
import type { H5Lib } from "./file.js";
import { DTYPES, type DType, type NdArray, isNdArray, shapeText, sizeOf } from "../core/ndarray.js";
import { H5T_STRING } from "./type-classes.js";
import { datasetMeta, readNdArray, readStrings } from "./inspect.js";
import { BOOL_ENUM, type DatasetOptions, type H5Type, type H5Writer } from "./writer.js";
import type { StoredValue } from "../core/variable-output.js";

/** The HDF5 element type h5py gives a numpy dtype. */
export function elementTypeFor(dtype: DType): H5Type {
  switch (dtype) {
    case "bool":
      return BOOL_ENUM;
    case "float32":
    case "float64":
      return { class: "float", size: DTYPES[dtype].itemSize };
    case "complex64":
    case "complex128": {
      const half = DTYPES[dtype].itemSize / 2;
      const part: H5Type = { class: "float", size: half };
      return { class: "compound", size: half * 2, members: [{ name: "r", offset: 0, type: part }, { name: "i", offset: half, type: part }] };
    }
    default:
      return { class: "int", size: DTYPES[dtype].itemSize, signed: dtype.startsWith("int") };
  }
}

/** Throw (naming `where`) unless `value` is a well-formed NdArray: known dtype, shape and data agreeing. */
export function checkArray(value: unknown, where: string): asserts value is NdArray {
  if (!isNdArray(value)) throw new TypeError(`${where}: expected a string or an array, got ${describe(value)}`);
  const info = (DTYPES as Record<string, (typeof DTYPES)[DType] | undefined>)[value.dtype];
  if (!info) throw new TypeError(`${where}: unknown dtype ${String(value.dtype)}`);
  if (!Array.isArray(value.shape) || !value.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new RangeError(`${where}: invalid shape ${JSON.stringify(value.shape)}`);
  }
  const expected = info.make(new ArrayBuffer(0), 0, 0).constructor;
  if (!ArrayBuffer.isView(value.data) || value.data.constructor !== expected) {
    throw new TypeError(`${where}: ${value.dtype} data must be a ${expected.name}, got ${describe(value.data)}`);
  }
  const length = sizeOf(value.shape) * info.lanes;
  if (value.data.length !== length) {
    throw new RangeError(`${where}: ${value.data.length} elements of data for a ${value.dtype} array of shape ${shapeText(value.shape)}`);
  }
  if (value.dtype === "bool") {
    const bytes = value.data as Uint8Array;
    for (let i = 0; i < bytes.length; i++) {
      if (bytes[i]! > 1) throw new RangeError(`${where}: bool arrays hold only 0 and 1, found ${bytes[i]} at index ${i}`);
    }
  }
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (typeof value !== "object") return typeof value;
  return (value as object).constructor?.name ?? "object";
}

export function arrayBytes(arr: NdArray): Uint8Array {
  return new Uint8Array(arr.data.buffer, arr.data.byteOffset, arr.data.byteLength);
}

/** Write a checked NdArray as a dataset of its dtype. */
export function writeArray(w: H5Writer, path: string, arr: NdArray, opts?: DatasetOptions): void {
  w.writeDataset(path, elementTypeFor(arr.dtype), arr.shape, arrayBytes(arr), opts);
}

/** A string as a scalar variable-length UTF-8 dataset, an array as a dataset of its dtype. */
export function writeStored(w: H5Writer, path: string, value: StoredValue, where: string): void {
  if (typeof value === "string") {
    w.writeStringDataset(path, [value], []);
    return;
  }
  checkArray(value, where);
  writeArray(w, path, value);
}

/**
 * A dataset as a StoredValue: a scalar string, or an NdArray. Undefined for what a StoredValue cannot hold
 * (arrays of strings, records other than complex numbers).
 */
export function readStored(lib: H5Lib, file: H5File, path: string): StoredValue | undefined {
  const meta = datasetMeta(lib.module, file.file_id, path);
  if (meta.type === H5T_STRING) {
    return meta.shape !== null && meta.shape.length === 0 ? readStrings(lib, file.file_id, path)[0] : undefined;
  }
  return readNdArray(lib.module, file, path, meta);
}

/** A number as an attribute: int64 when it is a safe integer (as Python ints are written), else float64. */
export function writeNumberAttribute(w: H5Writer, objPath: string, name: string, value: number): void {
  if (Number.isSafeInteger(value)) {
    w.writeAttribute(objPath, name, { class: "int", size: 8, signed: true }, [], BigInt64Array.of(BigInt(value)));
  } else {
    w.writeAttribute(objPath, name, { class: "float", size: 8 }, [], Float64Array.of(value));
  }
}
