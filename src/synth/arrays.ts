/**
 * The element types a synthetic run's datasets use, the typed arrays that hold them, and the DAQ's padding of
 * datasets to a multiple of its chunk size.
 */
import { DTYPES } from "../core/ndarray.js";

export type SynthDtype = "uint8" | "uint16" | "uint32" | "uint64" | "int32" | "float32" | "float64";

/** The typed array that holds each dtype. */
export interface DtypeArrays {
  uint8: Uint8Array;
  uint16: Uint16Array;
  uint32: Uint32Array;
  uint64: BigUint64Array;
  int32: Int32Array;
  float32: Float32Array;
  float64: Float64Array;
}
export type SynthArray = DtypeArrays[SynthDtype];

export function newArray<D extends SynthDtype>(dtype: D, length: number): DtypeArrays[D] {
  const bytes = DTYPES[dtype].itemSize * length;
  return DTYPES[dtype].make(new ArrayBuffer(bytes), 0, length) as DtypeArrays[D];
}

export const product = (dims: readonly number[]): number => dims.reduce((a, b) => a * b, 1);

/** The DAQ pads datasets (INDEX/trainId, instrument data) with zeros to a multiple of its chunk size. */
export const PAD_ROWS = 32;
export const paddedLength = (rows: number, multiple = PAD_ROWS): number => Math.ceil(rows / multiple) * multiple;

/** A zeroed array for `rows` entries of `entryShape`, padded to PAD_ROWS rows; fill the first rows, then write it. */
export function paddedArray<D extends SynthDtype>(dtype: D, rows: number, entryShape: readonly number[] = []): DtypeArrays[D] {
  return newArray(dtype, paddedLength(rows) * product(entryShape));
}
