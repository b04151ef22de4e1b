/** HDF5's datatype classes (H5T_class_t) and character sets, as h5wasm's metadata reports them, in one place. */
import type { DType } from "../core/ndarray.js";

export const H5T_INTEGER = 0;
export const H5T_FLOAT = 1;
export const H5T_STRING = 3;
export const H5T_COMPOUND = 6;
export const H5T_REFERENCE = 7;
export const H5T_ENUM = 8;
export const H5T_VLEN = 9;
export const H5T_CSET_ASCII = 0;
export const H5T_CSET_UTF8 = 1;

/** The array dtype of an integer or float element type, or undefined (other sizes, other classes). */
export function numericDType(klass: number, size: number, signed: boolean): DType | undefined {
  if (klass === H5T_FLOAT) return size === 4 ? "float32" : size === 8 ? "float64" : undefined;
  if (klass !== H5T_INTEGER) return undefined;
  const bits = size * 8;
  if (![8, 16, 32, 64].includes(bits)) return undefined;
  return `${signed ? "int" : "uint"}${bits}` as DType;
}
