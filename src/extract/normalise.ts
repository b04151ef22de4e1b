/**
 * Turning what a variable's function returned into what is stored (DAMNIT's `Cell` validation, spec §3.6):
 * numbers, bigints, booleans, strings, typed arrays, nested number arrays, NdArrays, the run reader's results
 * (per-train values become arrays labelled by train ID) and `labelled()` arrays. Anything else is a TypeError,
 * recorded as the variable's error.
 */
import { DTYPES, TYPED_DTYPES, ndarray, type DType, type NdArray, type TypedArray } from "../core/ndarray.js";
import type { DataValue, FigureImage, LabelledArray, LabelledSet, StoredValue } from "../core/variable-output.js";

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const UINT64_MAX = 2n ** 64n - 1n;

/** What a Cell (or a bare return value) holds, checked. */
export interface CellParts {
  data?: DataValue;
  preview?: DataValue;
  summaryValue?: StoredValue;
  summary?: string;
  bold?: boolean;
  background?: [number, number, number];
  units?: string;
}

export function isCell(value: unknown): value is {
  data: unknown;
  summary?: string;
  summaryValue?: unknown;
  preview?: unknown;
  bold?: boolean;
  background?: [number, number, number];
  units?: string;
} {
  return typeof value === "object" && value !== null && (value as { __damnitCell?: unknown }).__damnitCell === true;
}

/** The data a dependent variable receives: the Cell's data, as the function returned it. */
export function dependencyValue(result: unknown): unknown {
  return isCell(result) ? result.data : result;
}

/** Check a returned value (Cell or bare) and convert it for storage; throws TypeError naming the problem. */
export function cellParts(result: unknown, limitBytes: number): CellParts {
  const cell = isCell(result) ? result : { data: result };
  const parts: CellParts = {};
  const data = toDataValue(cell.data, "returned data");
  if (data !== undefined) {
    checkSize(data, limitBytes);
    parts.data = data;
  }
  if ("summaryValue" in cell && cell.summaryValue !== undefined && cell.summaryValue !== null) {
    const value = toDataValue(cell.summaryValue, "summaryValue");
    if (value !== undefined && typeof value !== "string" && (value.kind === "image" || value.kind === "dataset")) {
      throw new TypeError("summaryValue should be a number, string or array");
    }
    parts.summaryValue = value === undefined || typeof value === "string" ? value : arrayOf(value);
  }
  if ("preview" in cell && cell.preview !== undefined && cell.preview !== null) {
    const preview = toDataValue(cell.preview, "preview");
    const figure = preview !== undefined && typeof preview !== "string" && preview.kind === "image";
    const array = preview === undefined || figure ? undefined : arrayOf(preview);
    if (!array && !figure) throw new TypeError("preview must be a 1-D or 2-D numeric array, or a figure");
    if (array && array.shape.length !== 1 && array.shape.length !== 2) {
      throw new TypeError(`preview should be a 1D or 2D array (shape is (${array.shape.join(", ")}))`);
    }
    parts.preview = preview;
  }
  if (isCell(result)) {
    if (result.summary !== undefined) parts.summary = result.summary;
    if (result.bold !== undefined) parts.bold = result.bold;
    if (result.background !== undefined) parts.background = result.background;
    if (result.units !== undefined) parts.units = result.units;
  }
  checkSize(parts.summaryValue, limitBytes);
  checkSize(parts.preview, limitBytes);
  if (parts.units === undefined && data !== undefined && typeof data !== "string" && data.kind === "labelled") {
    const units = data.attrs?.units;
    if (typeof units === "string" && units !== "") parts.units = units;
  }
  return parts;
}

function checkSize(value: DataValue | undefined, limitBytes: number): void {
  if (value === undefined) return;
  if (typeof value === "string") return;
  const arrays = value.kind === "dataset" ? value.variables.map((v) => v.data) : [value.kind === "labelled" || value.kind === "image" ? value.data : value];
  const bytes = arrays.reduce((total, array) => total + array.data.byteLength, 0);
  if (bytes > limitBytes) {
    throw new RangeError(
      `returned ${(bytes / 2 ** 20).toFixed(1)} MiB of data, more than the ${(limitBytes / 2 ** 20).toFixed(0)} MiB a result may have ` +
        "(reduce it, or raise the database setting result_size_limit_mb)",
    );
  }
}

/** Convert one value; `undefined` means "nothing" (null/undefined). */
export function toDataValue(value: unknown, what: string): DataValue | undefined {
  if (value === null || value === undefined) return undefined;
  switch (typeof value) {
    case "string":
      return value;
    case "number":
      if (!Number.isFinite(value)) {
        throw new TypeError(`${what} is ${value}; return null to store nothing, or a finite number`);
      }
      // A JS number is a double, whole or not: always float64, so a column never changes type between runs
      // because a value happened to be whole. Integers are bigints, integer(n) or integer arrays.
      return ndarray("float64", [], Float64Array.of(value));
    case "bigint":
      if (value >= INT64_MIN && value <= INT64_MAX) return ndarray("int64", [], BigInt64Array.of(value));
      if (value >= 0n && value <= UINT64_MAX) return ndarray("uint64", [], BigUint64Array.of(value));
      throw new RangeError(`${what} ${value} does not fit in 64 bits`);
    case "boolean":
      return ndarray("bool", [], Uint8Array.of(value ? 1 : 0));
    case "object":
      break;
    default:
      throw new TypeError(`${what} of type ${typeof value} cannot be saved`);
  }
  const object = value as Record<string, unknown>;
  if (object.__damnitLabelled === true) return labelledFrom(object, what);
  if (object.kind === "image") return figureFrom(object, what);
  if (object.kind === "dataset") return datasetFrom(object, what);
  if (object.kind === "ndarray") return checkedArray(object as unknown as NdArray, what);
  if (ArrayBuffer.isView(value)) return typedArray(value, [(value as TypedArray).length], what);
  if (Array.isArray(value)) return nestedArray(value, what);
  // The run reader's results: { dtype, shape, data } plus train IDs.
  if (typeof object.dtype === "string" && Array.isArray(object.shape) && ArrayBuffer.isView(object.data)) {
    const array = checkedArray(ndarray(object.dtype as DType, object.shape as number[], object.data as TypedArray), what);
    const perTrainIds = object.present instanceof Uint8Array && Array.isArray(object.trainIds) ? (object.trainIds as number[]) : undefined;
    const entryIds = object.entryTrainIds instanceof Float64Array ? object.entryTrainIds : undefined;
    const ids = perTrainIds ?? (entryIds ? Array.from(entryIds) : undefined);
    if (!ids || array.shape.length === 0 || ids.length !== array.shape[0]) return array;
    const dims = ["trainId", ...array.shape.slice(1).map((_, i) => `dim_${i + 1}`)];
    const trainId = ndarray("uint64", [ids.length], BigUint64Array.from(ids, (t) => BigInt(t)));
    // Named as EXtra-data names it (DAMNIT stores the data variable under that name, "/" becoming "_").
    return { kind: "labelled", data: array, dims, coords: { trainId }, ...(typeof object.name === "string" ? { name: object.name } : {}) };
  }
  if (value instanceof Date) throw new TypeError(`${what} is a Date, which cannot be saved; return its time in seconds (getTime() / 1000)`);
  const typeName = (value as object).constructor?.name ?? "object";
  throw new TypeError(`${what} of type ${typeName} cannot be saved (return a number, string, boolean, array or Cell)`);
}

function labelledFrom(object: Record<string, unknown>, what: string): LabelledArray {
  const inner = toDataValue(object.data, what);
  const data = inner === undefined ? undefined : arrayOf(inner);
  if (data === undefined) throw new TypeError(`${what}: labelled() needs a numeric array`);
  const dims = object.dims;
  if (!Array.isArray(dims) || dims.length !== data.shape.length || !dims.every((d) => typeof d === "string" && d !== "")) {
    throw new TypeError(`${what}: labelled() needs one dimension name per dimension (${data.shape.length})`);
  }
  const coords: Record<string, NdArray> = {};
  for (const [dim, raw] of Object.entries((object.coords ?? {}) as Record<string, unknown>)) {
    const index = dims.indexOf(dim);
    if (index < 0) throw new TypeError(`${what}: coordinate '${dim}' is not one of the dimensions (${dims.join(", ")})`);
    const coord = toDataValue(raw, `coordinate '${dim}'`);
    const array = coord === undefined ? undefined : arrayOf(coord);
    if (!array || array.shape.length !== 1 || array.shape[0] !== data.shape[index]) {
      throw new TypeError(`${what}: coordinate '${dim}' must be a 1-D array of length ${data.shape[index]}`);
    }
    coords[dim] = dim === "trainId" ? asTrainIds(array) : array;
  }
  const attrs = object.attrs as Record<string, string | number> | undefined;
  return { kind: "labelled", data, dims: dims as string[], coords, name: typeof object.name === "string" ? object.name : undefined, attrs };
}

/** The array of an array-like value (an NdArray, a labelled array's data); undefined for strings, figures, datasets. */
function arrayOf(value: DataValue): NdArray | undefined {
  if (typeof value === "string" || value.kind === "image" || value.kind === "dataset") return undefined;
  return value.kind === "labelled" ? value.data : value;
}

/** A figure's RGBA image (H, W, 4) uint8, and its PNG thumbnail if it has one. */
function figureFrom(object: Record<string, unknown>, what: string): FigureImage {
  const data = toDataValue(object.data, what);
  const image = data === undefined ? undefined : arrayOf(data);
  if (!image || image.dtype !== "uint8" || image.shape.length !== 3 || image.shape[2] !== 4) {
    throw new TypeError(`${what}: a figure's image is an (H, W, 4) uint8 array`);
  }
  const png = object.thumbnail === undefined || object.thumbnail === null ? undefined : toDataValue(object.thumbnail, `${what} thumbnail`);
  const thumbnail = png === undefined ? undefined : arrayOf(png);
  if (png !== undefined && (!thumbnail || thumbnail.dtype !== "uint8" || thumbnail.shape.length !== 1)) {
    throw new TypeError(`${what}: a figure's thumbnail is PNG bytes (a 1-D uint8 array)`);
  }
  return thumbnail ? { kind: "image", data: image, thumbnail } : { kind: "image", data: image };
}

/**
 * An xarray Dataset: named labelled arrays whose shared dimensions agree in length and coordinate (as they must
 * in one Dataset; the check keeps a bad value from writing an invalid NetCDF group).
 */
function datasetFrom(object: Record<string, unknown>, what: string): LabelledSet {
  if (!Array.isArray(object.variables)) throw new TypeError(`${what}: a dataset holds a list of variables`);
  const variables: Array<LabelledArray & { name: string }> = [];
  const lengths = new Map<string, number>();
  const names = new Set<string>();
  for (const raw of object.variables as unknown[]) {
    const variable = toDataValue(raw, what);
    if (variable === undefined || typeof variable === "string" || variable.kind !== "labelled" || typeof variable.name !== "string" || variable.name === "") {
      throw new TypeError(`${what}: every variable of a dataset is a named labelled array`);
    }
    const name = variable.name.replaceAll("/", "_");
    if (names.has(name)) throw new TypeError(`${what}: the dataset has two variables named ${name}`);
    names.add(name);
    variable.dims.forEach((dim, axis) => {
      const length = variable.data.shape[axis]!;
      if ((lengths.get(dim) ?? length) !== length) throw new TypeError(`${what}: dimension ${dim} has different lengths in the dataset's variables`);
      lengths.set(dim, length);
    });
    variables.push({ ...variable, name: variable.name });
  }
  const attrs = object.attrs as Record<string, string | number> | undefined;
  return attrs && Object.keys(attrs).length > 0 ? { kind: "dataset", variables, attrs } : { kind: "dataset", variables };
}

/**
 * A `trainId` coordinate given as plain numbers (e.g. `entryTrainIds`) stored as DAMNIT stores train IDs: uint64,
 * not float64. Left as given when any value is not a non-negative integer.
 */
function asTrainIds(array: NdArray): NdArray {
  if (array.dtype !== "float64" && array.dtype !== "float32") return array;
  const values = array.data as Float64Array | Float32Array;
  if (!values.every((v) => Number.isSafeInteger(v) && v >= 0)) return array;
  return ndarray("uint64", [values.length], BigUint64Array.from(values, (v) => BigInt(v)));
}

function checkedArray(array: NdArray, what: string): NdArray {
  if (!(array.dtype in DTYPES)) throw new TypeError(`${what} has the unknown dtype '${array.dtype}'`);
  return ndarray(array.dtype, array.shape, array.data);
}


function typedArray(view: ArrayBufferView, shape: number[], what: string): NdArray {
  if (view instanceof Uint8ClampedArray) return ndarray("uint8", shape, new Uint8Array(view.buffer, view.byteOffset, view.length));
  for (const [type, dtype] of TYPED_DTYPES) if (view instanceof type) return ndarray(dtype, shape, view as TypedArray);
  throw new TypeError(`${what} is a ${view.constructor.name}, which cannot be saved`);
}

/**
 * Nested JS arrays → a rectangular array: booleans → bool, bigints → int64, numbers → float64 (what a JS number
 * is, as for a single number).
 */
function nestedArray(value: unknown[], what: string): NdArray {
  const shape: number[] = [];
  let level: unknown = value;
  while (Array.isArray(level)) {
    shape.push(level.length);
    level = level[0];
  }
  const flat: unknown[] = [];
  const walk = (item: unknown, depth: number): void => {
    if (depth === shape.length) {
      if (Array.isArray(item)) throw new TypeError(`${what} is a ragged nested array`);
      flat.push(item);
      return;
    }
    if (!Array.isArray(item) || item.length !== shape[depth]) throw new TypeError(`${what} is a ragged nested array (not rectangular)`);
    for (const child of item) walk(child, depth + 1);
  };
  walk(value, 0);
  if (flat.length === 0) return ndarray("float64", shape, new Float64Array(0));
  if (flat.every((v) => typeof v === "boolean")) return ndarray("bool", shape, Uint8Array.from(flat as boolean[], (b) => (b ? 1 : 0)));
  if (flat.every((v) => typeof v === "bigint")) {
    const big = flat as bigint[];
    if (big.every((v) => v >= INT64_MIN && v <= INT64_MAX)) return ndarray("int64", shape, BigInt64Array.from(big));
    if (big.every((v) => v >= 0n && v <= UINT64_MAX)) return ndarray("uint64", shape, BigUint64Array.from(big));
    throw new RangeError(`${what} holds integers that do not fit in 64 bits`);
  }
  if (!flat.every((v) => typeof v === "number")) {
    const odd = flat.find((v) => typeof v !== "number");
    throw new TypeError(`${what} is an array holding ${typeof odd === "string" ? "strings" : typeof odd}, which cannot be saved; arrays must be numeric or boolean`);
  }
  return ndarray("float64", shape, Float64Array.from(flat as number[]));
}
