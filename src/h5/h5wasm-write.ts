/** Small helpers for writing HDF5 with h5wasm, which creates no intermediate groups and wants exactly-shaped data. */
import type { Dataset, Group } from "h5wasm/node";

export type NumericDtype = "<B" | "<H" | "<I" | "<Q" | "<i" | "<f" | "<d";

/** The typed array that holds each dtype. */
export interface DtypeArrays {
  "<B": Uint8Array;
  "<H": Uint16Array;
  "<I": Uint32Array;
  "<Q": BigUint64Array;
  "<i": Int32Array;
  "<f": Float32Array;
  "<d": Float64Array;
}
type TypedArray = DtypeArrays[NumericDtype];

const ARRAY_TYPES: { readonly [D in NumericDtype]: new (length: number) => DtypeArrays[D] } = {
  "<B": Uint8Array,
  "<H": Uint16Array,
  "<I": Uint32Array,
  "<Q": BigUint64Array,
  "<i": Int32Array,
  "<f": Float32Array,
  "<d": Float64Array,
};

export function newArray<D extends NumericDtype>(dtype: D, length: number): DtypeArrays[D] {
  return new ARRAY_TYPES[dtype](length);
}

/** The DAQ pads datasets (INDEX/trainId, instrument data) with zeros to a multiple of its chunk size. */
export const PAD_ROWS = 32;
export const paddedLength = (rows: number, multiple = PAD_ROWS): number => Math.ceil(rows / multiple) * multiple;

const product = (dims: readonly number[]): number => dims.reduce((a, b) => a * b, 1);

/** The group at `path` below `root`, creating missing groups along the way. */
export function requireGroup(root: Group, path: string): Group {
  let group = root;
  for (const part of path.split("/").filter(Boolean)) {
    const existing = group.get(part);
    group = existing === null ? group.create_group(part) : (existing as Group);
  }
  return group;
}

/** Split "a/b/c" into the group "a/b" (created) and the name "c". */
function parentAndName(root: Group, path: string): [Group, string] {
  const cut = path.lastIndexOf("/");
  return cut < 0 ? [root, path] : [requireGroup(root, path.slice(0, cut)), path.slice(cut + 1)];
}

/** A 1-D variable-length UTF-8 string dataset. */
export function writeStrings(root: Group, path: string, values: readonly string[]): Dataset {
  const [group, name] = parentAndName(root, path);
  return group.create_dataset({ name, data: [...values], shape: [values.length] });
}

/** A fixed-size contiguous dataset; `data` must hold exactly product(shape) elements. */
export function writeArray(root: Group, path: string, data: TypedArray, dtype: NumericDtype, shape: readonly number[]): Dataset {
  const [group, name] = parentAndName(root, path);
  return group.create_dataset({ name, data, shape: [...shape], dtype });
}

/** A zeroed array for `rows` entries of `entryShape`, padded to PAD_ROWS rows; fill the first rows, then writePadded. */
export function paddedArray<D extends NumericDtype>(dtype: D, rows: number, entryShape: readonly number[] = []): DtypeArrays[D] {
  return newArray(dtype, paddedLength(rows) * product(entryShape));
}

/** Write an array made by paddedArray as a contiguous dataset of shape (padded rows, ...entryShape). */
export function writePadded(root: Group, path: string, data: TypedArray, dtype: NumericDtype, entryShape: readonly number[] = []): Dataset {
  const rows = data.length / Math.max(1, product(entryShape));
  return writeArray(root, path, data, dtype, [rows, ...entryShape]);
}

export interface ExtendableOptions {
  dtype: NumericDtype;
  entryShape: readonly number[];
  rows: number;
  /** Rows per chunk; the chunk spans the whole entry. */
  chunkRows?: number;
  gzipLevel?: number;
}

/**
 * A chunked dataset with an unlimited first axis, sized to `rows` (unwritten rows read as 0 and use no space).
 * Large data is written afterwards in slices with writeRows, so it never has to exist in one piece.
 */
export function createExtendable(root: Group, path: string, opts: ExtendableOptions): Dataset {
  const [group, name] = parentAndName(root, path);
  const entry = [...opts.entryShape];
  const ds = group.create_dataset({
    name,
    data: newArray(opts.dtype, 0),
    shape: [0, ...entry],
    maxshape: [null, ...entry],
    dtype: opts.dtype,
    chunks: [opts.chunkRows ?? 1, ...entry],
    ...(opts.gzipLevel === undefined ? {} : { compression: "gzip" as const, compression_opts: opts.gzipLevel }),
  });
  if (opts.rows > 0) ds.resize([opts.rows, ...entry]);
  return ds;
}

/** Write whole entries [start, start + data.length / entrySize) of a dataset. */
export function writeRows(ds: Dataset, start: number, data: TypedArray, entryShape: readonly number[]): void {
  const rows = data.length / Math.max(1, product(entryShape));
  if (rows === 0) return;
  ds.write_slice([[start, start + rows], ...entryShape.map((): [] => [])], data);
}

/** Set string attributes (vlen UTF-8) on a group or dataset. */
export function setStringAttributes(target: Group | Dataset, attrs: Readonly<Record<string, string>>): void {
  for (const [name, value] of Object.entries(attrs)) target.create_attribute(name, value);
}
