/**
 * LabelledArrays (xarray DataArrays) as the NetCDF4 groups DAMNIT writes through xarray and h5netcdf:
 *
 *   <group>                    attr _damnit_objtype = "dataarray" (and __xarray_dataarray_name__ if renamed)
 *     <dim>                    coordinate: 1-D dataset, dimension scale named <dim>, attr _Netcdf4Dimid
 *     <dim>                    dimension without coordinate: float32 zeros, dimension scale named
 *                              "This is a netCDF dimension but not a netCDF variable.<size:10>", attr _Netcdf4Dimid
 *     <name>                   the array: gzip level 1, chunked as h5py guesses; scales attached to its dimensions;
 *                              attrs _Netcdf4Dimid (first dimension's id), _Netcdf4Coordinates (if 2-D or more),
 *                              _FillValue = NaN for floats, the array's own attrs
 *
 * An xarray Dataset (LabelledSet) is the same group with several data variables sharing the dimension scales, the
 * Dataset's attributes on the group and `_damnit_objtype = "dataset"` (DAMNIT's save_dataset_netcdf).
 *
 * The array's name is `__xarray_dataarray_variable__` when it has none, or when it equals a dimension's name (the
 * real name then goes in the group attribute `__xarray_dataarray_name__`), as xarray does; "/" in it becomes "_", as
 * DAMNIT does. Bool arrays are stored as int8 with attr dtype = "bool" (xarray's encoding; NetCDF has no bool).
 * Dimension ids continue from the largest `_Netcdf4Dimid` already in the file, so the file stays valid NetCDF4.
 *
 * Differences from h5netcdf that h5wasm imposes: no shuffle filter before gzip, the HDF5 fill value is not set
 * (the `_FillValue` attribute is), and dimension-only scales are little-endian and written (zeros) rather than
 * big-endian and unallocated.
 */
import type { File as H5File } from "h5wasm/node";
import type { H5Lib } from "../h5/file.js";
import { DTYPES, type NdArray, sizeOf } from "../core/ndarray.js";
import type { ScaleBook } from "../h5/copy.js";
import { attributeNames, attributeValue, childNames, objectKind, readNdArray, stringAttribute } from "../h5/inspect.js";
import { arrayBytes, checkArray, elementTypeFor, writeNumberAttribute } from "../h5/values.js";
import type { H5Writer } from "../h5/writer.js";
import type { LabelledArray, LabelledSet } from "../core/variable-output.js";

export const OBJTYPE_ATTR = "_damnit_objtype";
export const DATAARRAY_VARIABLE = "__xarray_dataarray_variable__";
export const DATAARRAY_NAME = "__xarray_dataarray_name__";
export const NOT_A_VARIABLE = "This is a netCDF dimension but not a netCDF variable.";

/** Attributes that belong to HDF5 dimension scales, NetCDF or xarray's encoding rather than to the array. */
const BOOKKEEPING_ATTRS = new Set([
  "CLASS",
  "NAME",
  "REFERENCE_LIST",
  "DIMENSION_LIST",
  "DIMENSION_LABELS",
  "_Netcdf4Dimid",
  "_Netcdf4Coordinates",
  "_FillValue",
  "coordinates",
  "_nc3_strict",
]);

const CHUNK_BASE = 16 * 1024;
const CHUNK_MIN = 8 * 1024;
const CHUNK_MAX = 1024 * 1024;

/** h5py's chunk shape guess (`h5py._hl.filters.guess_chunk`), used when xarray asks for compression. */
export function guessChunk(shape: readonly number[], typeSize: number): number[] {
  const chunks = shape.map((d) => (d === 0 ? 1024 : d));
  const product = (): number => chunks.reduce((a, b) => a * b, 1);
  const datasetBytes = product() * typeSize;
  const target = Math.min(CHUNK_MAX, Math.max(CHUNK_MIN, CHUNK_BASE * 2 ** Math.log10(datasetBytes / (1024 * 1024))));
  for (let idx = 0; ; idx++) {
    const chunkBytes = product() * typeSize;
    if ((chunkBytes < target || Math.abs(chunkBytes - target) / target < 0.5) && chunkBytes < CHUNK_MAX) break;
    if (product() === 1) break;
    const axis = idx % chunks.length;
    chunks[axis] = Math.ceil(chunks[axis]! / 2);
  }
  return chunks;
}

function checkLinkName(name: string, where: string): void {
  if (typeof name !== "string" || name === "" || name === "." || name === ".." || name.includes("/")) {
    throw new Error(`${where}: ${JSON.stringify(name)} cannot be an HDF5 name`);
  }
}

function checkLabelled(arr: LabelledArray, where: string): void {
  checkArray(arr.data, `${where} data`);
  if (!Array.isArray(arr.dims) || arr.dims.length !== arr.data.shape.length) {
    throw new Error(`${where}: ${arr.dims?.length} dimension names for ${arr.data.shape.length} dimensions`);
  }
  for (const dim of arr.dims) checkLinkName(dim, `${where} dimension`);
  if (new Set(arr.dims).size !== arr.dims.length) throw new Error(`${where}: repeated dimension names ${arr.dims.join(", ")}`);
  for (const [dim, coord] of Object.entries(arr.coords ?? {})) {
    const axis = arr.dims.indexOf(dim);
    if (axis < 0) throw new Error(`${where}: coordinate ${dim} is not one of the dimensions (${arr.dims.join(", ")})`);
    checkArray(coord, `${where} coordinate ${dim}`);
    if (coord.shape.length !== 1 || coord.shape[0] !== arr.data.shape[axis]) {
      throw new Error(`${where}: coordinate ${dim} has shape (${coord.shape.join(", ")}), dimension ${dim} has length ${arr.data.shape[axis]}`);
    }
  }
  for (const [key, value] of Object.entries(arr.attrs ?? {})) {
    if (typeof value !== "string" && typeof value !== "number") throw new TypeError(`${where}: attribute ${key} must be a string or number`);
  }
}

/** A NetCDF variable's dataset: bool as int8 with dtype = "bool", floats with _FillValue = NaN. */
function writeVariable(w: H5Writer, path: string, arr: NdArray, compress: boolean, fillValue: boolean): void {
  const type = arr.dtype === "bool" ? { class: "int" as const, size: 1, signed: true } : elementTypeFor(arr.dtype);
  const chunked = compress && arr.shape.length > 0 && sizeOf(arr.shape) > 0;
  const opts = chunked ? { chunks: guessChunk(arr.shape, DTYPES[arr.dtype].itemSize), deflate: 1 } : {};
  w.writeDataset(path, type, arr.shape, arrayBytes(arr), opts);
  if (arr.dtype === "bool") w.writeStringAttribute(path, "dtype", "bool");
  if (fillValue && (arr.dtype === "float32" || arr.dtype === "float64")) {
    w.writeAttribute(path, "_FillValue", type, [], arr.dtype === "float32" ? Float32Array.of(NaN) : Float64Array.of(NaN));
  }
}

function writeInt32Attribute(w: H5Writer, path: string, name: string, values: readonly number[], scalar: boolean): void {
  w.writeAttribute(path, name, { class: "int", size: 4, signed: true }, scalar ? [] : [values.length], Int32Array.from(values));
}

/** Throw (naming `where`) unless writeLabelled can write `arr`; returns the array's dataset name. */
export function checkLabelledArray(arr: LabelledArray, where: string): string {
  checkLabelled(arr, where);
  const clash = arr.name !== undefined && arr.dims.includes(arr.name);
  const varName = arr.name === undefined || clash ? DATAARRAY_VARIABLE : arr.name.replaceAll("/", "_");
  checkLinkName(varName, `${where} name`);
  if (arr.dims.includes(varName)) throw new Error(`${where}: a dimension cannot be called ${varName}`);
  for (const [key, value] of Object.entries(arr.attrs ?? {})) {
    if (typeof value === "string" && value.includes("\0")) throw new Error(`${where}: attribute ${key}: HDF5 strings cannot contain NUL characters`);
  }
  return varName;
}

/** Write `arr` as a NetCDF4 group at `path` (which must not exist). */
export function writeLabelled(w: H5Writer, path: string, arr: LabelledArray, book: ScaleBook, where: string): void {
  const varName = checkLabelledArray(arr, where);
  writeNetcdfGroup(w, path, [[varName, arr]], book);
  if (arr.name !== undefined && arr.dims.includes(arr.name)) w.writeStringAttribute(path, DATAARRAY_NAME, arr.name);
  w.writeStringAttribute(path, OBJTYPE_ATTR, "dataarray");
}

/** Throw (naming `where`) unless writeLabelledSet can write `set`; returns its variables' dataset names. */
export function checkLabelledSet(set: LabelledSet, where: string): string[] {
  const names: string[] = [];
  const lengths = new Map<string, number>();
  for (const variable of set.variables) {
    checkLabelled(variable, where);
    if (typeof variable.name !== "string" || variable.name === "") throw new Error(`${where}: every variable of a Dataset has a name`);
    const name = variable.name.replaceAll("/", "_");
    checkLinkName(name, `${where} variable name`);
    if (names.includes(name)) throw new Error(`${where}: two variables are called ${name}`);
    names.push(name);
    variable.dims.forEach((dim, axis) => {
      const length = variable.data.shape[axis]!;
      const seen = lengths.get(dim);
      if (seen !== undefined && seen !== length) throw new Error(`${where}: dimension ${dim} has length ${seen} and ${length}`);
      lengths.set(dim, length);
    });
  }
  for (const name of names) if (lengths.has(name)) throw new Error(`${where}: a variable and a dimension are both called ${name}`);
  for (const [key, value] of Object.entries(set.attrs ?? {})) {
    if (typeof value !== "string" && typeof value !== "number") throw new TypeError(`${where}: attribute ${key} must be a string or number`);
    if (typeof value === "string" && value.includes("\0")) throw new Error(`${where}: attribute ${key}: HDF5 strings cannot contain NUL characters`);
  }
  return names;
}

/**
 * Write `set` (an xarray Dataset) as a NetCDF4 group at `path`, as DAMNIT's save_dataset_netcdf does through
 * h5netcdf: one dimension scale per dimension shared by the variables, the Dataset's attributes on the group,
 * `_damnit_objtype = "dataset"`.
 */
export function writeLabelledSet(w: H5Writer, path: string, set: LabelledSet, book: ScaleBook, where: string): void {
  const names = checkLabelledSet(set, where);
  writeNetcdfGroup(
    w,
    path,
    set.variables.map((v, i) => [names[i]!, v]),
    book,
  );
  for (const [key, value] of Object.entries(set.attrs ?? {})) {
    if (typeof value === "string") w.writeStringAttribute(path, key, value);
    else writeNumberAttribute(w, path, key, value);
  }
  w.writeStringAttribute(path, OBJTYPE_ATTR, "dataset");
}

/** The NetCDF4 group: the dimensions (coordinates or bare scales) in order of first use, then the variables. */
function writeNetcdfGroup(w: H5Writer, path: string, variables: ReadonlyArray<readonly [string, LabelledArray]>, book: ScaleBook): void {
  w.createGroup(path);
  const dimIds = new Map<string, number>();
  for (const [, arr] of variables) {
    arr.dims.forEach((dim, axis) => {
      if (dimIds.has(dim)) return;
      const id = ++book.maxDimId;
      dimIds.set(dim, id);
      const scalePath = `${path}/${dim}`;
      const coord = variables.map(([, a]) => a.coords?.[dim]).find((c) => c !== undefined);
      if (coord) {
        writeVariable(w, scalePath, coord, false, true);
        w.makeScale(scalePath, dim);
      } else {
        const length = arr.data.shape[axis]!;
        w.writeDataset(scalePath, { class: "float", size: 4 }, [length], new Float32Array(length));
        w.makeScale(scalePath, NOT_A_VARIABLE + String(length || 1).padStart(10));
      }
      writeInt32Attribute(w, scalePath, "_Netcdf4Dimid", [id], true);
    });
  }
  for (const [varName, arr] of variables) {
    const ids = arr.dims.map((dim) => dimIds.get(dim)!);
    const varPath = `${path}/${varName}`;
    writeVariable(w, varPath, arr.data, true, !(arr.attrs && "_FillValue" in arr.attrs));
    arr.dims.forEach((dim, axis) => w.attachScale(varPath, axis, `${path}/${dim}`));
    if (ids.length > 1) writeInt32Attribute(w, varPath, "_Netcdf4Coordinates", ids, false);
    if (ids.length > 0) writeInt32Attribute(w, varPath, "_Netcdf4Dimid", [ids[0]!], true);
    for (const [key, value] of Object.entries(arr.attrs ?? {})) {
      if (typeof value === "string") w.writeStringAttribute(varPath, key, value);
      else writeNumberAttribute(w, varPath, key, value);
    }
  }
}

/** A NetCDF variable as an NdArray, undoing xarray's bool encoding. */
function readVariable(lib: H5Lib, file: H5File, path: string): NdArray | undefined {
  const arr = readNdArray(lib.module, file, path);
  if (arr && (arr.dtype === "int8" || arr.dtype === "uint8") && stringAttribute(lib, file.file_id, path, "dtype") === "bool") {
    return { ...arr, dtype: "bool", data: new Uint8Array(arr.data.buffer, arr.data.byteOffset, arr.data.length) };
  }
  return arr;
}

function isScale(lib: H5Lib, fileId: bigint, path: string): boolean {
  return attributeNames(lib.module, fileId, path).includes("CLASS") && attributeValue(lib, fileId, path, "CLASS") === "DIMENSION_SCALE";
}

/**
 * Read the DataArray stored in the NetCDF4 group at `path`: its data variable with dimensions from the attached
 * scales and coordinates from the scales that are variables. Non-dimension coordinates are not returned (a
 * LabelledArray has none). Undefined if the group holds no array an NdArray can represent.
 */
export function readLabelled(lib: H5Lib, file: H5File, path: string): LabelledArray | undefined {
  const { module } = lib;
  const id = file.file_id;
  const datasets = childNames(module, id, path).filter((n) => objectKind(module, id, `${path}/${n}`) === "dataset");
  const variables = datasets.filter((n) => !isScale(lib, id, `${path}/${n}`));
  // xarray lists non-dimension coordinates in the data variable's `coordinates` attribute.
  const coordNames = new Set(variables.flatMap((n) => (stringAttribute(lib, id, `${path}/${n}`, "coordinates") ?? "").split(" ")));
  const varName = variables.find((n) => !coordNames.has(n)) ?? variables[0];
  if (varName === undefined) return undefined;
  const varPath = `${path}/${varName}`;
  const data = readVariable(lib, file, varPath);
  if (!data) return undefined;

  const dims: string[] = [];
  const coords: Record<string, NdArray> = {};
  const hasDimList = attributeNames(module, id, varPath).includes("DIMENSION_LIST");
  for (let axis = 0; axis < data.shape.length; axis++) {
    // As netCDF-C and h5netcdf: with several scales on one dimension, the last one counts.
    const scale = hasDimList ? module.get_attached_scales(id, varPath, axis).at(-1) : undefined;
    if (scale === undefined) {
      dims.push(`dim_${axis}`);
      continue;
    }
    const dim = scale.slice(scale.lastIndexOf("/") + 1);
    dims.push(dim);
    if (!(stringAttribute(lib, id, scale, "NAME") ?? "").startsWith(NOT_A_VARIABLE)) {
      const coord = readVariable(lib, file, scale);
      if (coord) coords[dim] = coord;
    }
  }

  const attrs: Record<string, string | number> = {};
  const boolEncoded = data.dtype === "bool";
  for (const key of attributeNames(module, id, varPath)) {
    if (BOOKKEEPING_ATTRS.has(key) || (boolEncoded && key === "dtype")) continue;
    const value = attributeValue(lib, id, varPath, key);
    const scalar = ArrayBuffer.isView(value) && (value as unknown as ArrayLike<unknown>).length === 1 ? (value as unknown as ArrayLike<unknown>)[0] : value;
    if (typeof scalar === "string") attrs[key] = scalar;
    else if (typeof scalar === "number" || typeof scalar === "bigint") attrs[key] = Number(scalar);
  }

  const name = varName === DATAARRAY_VARIABLE ? stringAttribute(lib, id, path, DATAARRAY_NAME) : varName.replace(/^_nc4_non_coord_/, "");
  return {
    kind: "labelled",
    data,
    dims,
    coords,
    ...(name !== undefined ? { name } : {}),
    ...(Object.keys(attrs).length > 0 ? { attrs } : {}),
  };
}

/** Whether the object at `path` is a group DAMNIT marked as a DataArray. */
export function isDataArrayGroup(lib: H5Lib, file: H5File, path: string): boolean {
  return objectKind(lib.module, file.file_id, path) === "group" && stringAttribute(lib, file.file_id, path, OBJTYPE_ATTR) === "dataarray";
}
