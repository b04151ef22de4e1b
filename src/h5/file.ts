/**
 * The thin layer between the run reader and h5wasm: opening files with errors a user understands, describing
 * datasets, refusing compression filters we cannot decode, and reading row ranges straight into caller-owned memory.
 */
import { isNodeError } from "../core/node-errors.js";
import { closeSync, openSync, readSync, statSync } from "node:fs";
import { basename } from "node:path";
import type { Dataset, File as H5File } from "h5wasm/node";
import { DamnitError } from "../core/errors.js";
import type { DType } from "../core/ndarray.js";
import { loadH5wasm } from "./h5wasm.js";
import { H5T_COMPOUND, H5T_ENUM, H5T_FLOAT, H5T_INTEGER, H5T_STRING, numericDType } from "./type-classes.js";

type H5wasm = Awaited<ReturnType<typeof loadH5wasm>>;
type H5Module = Awaited<H5wasm["ready"]>;
interface H5Metadata {
  type: number;
  size: number;
  signed: boolean;
  littleEndian: boolean;
  vlen: boolean;
  shape: number[] | null;
  chunks: number[] | null;
  virtual_sources?: unknown[];
  compound_type?: { members: Array<{ name: string }> };
  enum_type?: { members: Record<string, number>; type: number };
}

export interface H5Lib {
  readonly h5: H5wasm;
  readonly module: H5Module;
}

let lib: Promise<H5Lib> | undefined;

/** h5wasm and its module (HDF5 errors already turned into exceptions by `loadH5wasm`). */
export function loadH5(): Promise<H5Lib> {
  lib ??= loadH5wasm().then(async (h5) => ({ h5, module: await h5.ready }));
  return lib;
}

/** The deepest message of an HDF5-DIAG error stack, e.g. "truncated file: eof = 1000, ...". */
export function hdf5Reason(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  const lines = [...text.matchAll(/#\d+: .*? in [\w.]+\(\): (.*)$/gm)].map((m) => m[1]!.trim());
  return lines.at(-1) ?? text.split("\n")[0]!;
}

const HDF5_SIGNATURE = Buffer.from([0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a]);

/** HDF5 files start with a signature at 0, 512, 1024, 2048, … (after an optional user block). */
function hasHdf5Signature(path: string, size: number): boolean {
  const fd = openSync(path, "r"); // callers check first that `path` is a regular file
  try {
    const buf = Buffer.alloc(8);
    for (let offset = 0; offset + 8 <= size; offset = offset === 0 ? 512 : offset * 2) {
      if (readSync(fd, buf, 0, 8, offset) === 8 && buf.equals(HDF5_SIGNATURE)) return true;
      if (offset > 1 << 20) break;
    }
    return false;
  } finally {
    closeSync(fd);
  }
}

export function openH5File({ h5 }: H5Lib, path: string): H5File {
  let size: number;
  let signature: boolean;
  try {
    const stat = statSync(path);
    if (!stat.isFile()) throw new DamnitError("BAD_RUN_FILE", `${path}: not a file`);
    size = stat.size;
    signature = hasHdf5Signature(path, size);
  } catch (err) {
    if (err instanceof DamnitError) throw err;
    throw new DamnitError("BAD_RUN_FILE", `${path}: cannot be read (${isNodeError(err) ? err.code : String(err)})`);
  }
  if (!signature) {
    throw new DamnitError("BAD_RUN_FILE", `${path}: not an HDF5 file (${size} bytes, no HDF5 signature)`);
  }
  try {
    return new h5.File(path, "r");
  } catch (err) {
    const reason = hdf5Reason(err);
    const what = /truncated|eof/i.test(reason) ? "truncated or incompletely written HDF5 file" : "damaged HDF5 file";
    throw new DamnitError("BAD_RUN_FILE", `${path}: ${what} (${reason})`, { cause: err });
  }
}

/** Element types of run data: numbers map onto the database's dtypes; strings and records are read as JS values. */
export type ElementType = DType | "string" | "compound";

export interface DatasetInfo {
  readonly file: H5File;
  readonly path: string;
  readonly shape: readonly number[];
  readonly type: ElementType;
  /** Bytes per element in memory (numbers only; 0 for strings and records). */
  readonly itemSize: number;
  readonly littleEndian: boolean;
  /** Stored in chunks (or virtual), rather than as one contiguous block of the file. */
  readonly chunked: boolean;
  readonly filters: ReadonlyArray<{ id: number; name: string }>;
}


function elementType(meta: H5Metadata, where: string): ElementType {
  if (meta.type === H5T_STRING) return "string";
  if (meta.type === H5T_COMPOUND) return "compound";
  if (meta.type === H5T_ENUM) {
    const names = Object.keys(meta.enum_type?.members ?? {}).sort().join(",");
    if (names === "FALSE,TRUE" && meta.size === 1) return "bool";
    const base = numericDType(H5T_INTEGER, meta.size, meta.signed);
    if (base) return base;
  }
  const numeric = numericDType(meta.type, meta.size, meta.signed);
  if (numeric) return numeric;
  const kind = meta.type === H5T_FLOAT ? `float${meta.size * 8}` : `HDF5 type class ${meta.type} of ${meta.size} bytes`;
  throw new DamnitError("UNSUPPORTED_DATA", `${where}: element type ${kind} is not supported by this reader`);
}

/** Filters libhdf5 in h5wasm decodes: deflate, shuffle, fletcher32, nbit, scaleoffset. */
const DECODABLE_FILTERS = new Set([1, 2, 3, 5, 6]);
/** Registered HDF5 filter ids seen in facility data, to name them in errors. */
const KNOWN_FILTERS: Record<number, string> = {
  4: "szip",
  307: "bzip2",
  32000: "lzf",
  32001: "blosc",
  32004: "lz4",
  32008: "bitshuffle",
  32015: "zstd",
  32026: "blosc2",
};

export function datasetInfo(lib: H5Lib, file: H5File, path: string): DatasetInfo {
  const where = `${basename(file.filename)}:${path}`;
  let meta: H5Metadata;
  let filters: Array<{ id: number; name: string }>;
  try {
    meta = lib.module.get_dataset_metadata(file.file_id, path) as unknown as H5Metadata;
    filters = lib.module.get_dataset_filters(file.file_id, path);
  } catch (err) {
    throw new DamnitError("BAD_RUN_FILE", `${where}: cannot read dataset header (${hdf5Reason(err)})`, { cause: err });
  }
  const type = elementType(meta, where);
  const numeric = type !== "string" && type !== "compound";
  return {
    file,
    path,
    shape: meta.shape ?? [],
    type,
    itemSize: numeric ? meta.size : 0,
    littleEndian: meta.littleEndian,
    chunked: meta.chunks !== null || (meta.virtual_sources?.length ?? 0) > 0,
    filters: filters.map((f) => ({ id: f.id, name: f.name })),
  };
}

/** Refuse before reading: libhdf5 would otherwise fail mid-read, or (without the error handler) return garbage. */
export function checkFilters(info: DatasetInfo): void {
  for (const filter of info.filters) {
    if (DECODABLE_FILTERS.has(filter.id)) continue;
    const name = KNOWN_FILTERS[filter.id] ?? filter.name ?? "unknown";
    throw new DamnitError(
      "UNSUPPORTED_DATA",
      `${basename(info.file.filename)}:${info.path} is compressed with filter ${filter.id} (${name}), which this reader cannot decode`,
    );
  }
}

/** A block of wasm memory reused across reads, so reading a big key in slices keeps the heap at one slice. */
export class HeapBuffer {
  private ptr = 0;
  private capacity = 0;
  constructor(private readonly module: H5Module) {}

  reserve(bytes: number): number {
    if (bytes > this.capacity) {
      this.release();
      const ptr = this.module._malloc(Math.max(bytes, 1));
      if (ptr === 0) throw new DamnitError("UNSUPPORTED_DATA", `cannot allocate ${bytes} bytes in the HDF5 reader's memory`);
      this.ptr = ptr;
      this.capacity = bytes;
    }
    return this.ptr;
  }

  release(): void {
    if (this.ptr !== 0) this.module._free(this.ptr);
    this.ptr = 0;
    this.capacity = 0;
  }
}

/** [start, stop) along each dimension after the first. */
export type EntryRoi = ReadonlyArray<readonly [number, number]>;

/**
 * Read rows [rowStart, rowStart + nRows) of a numeric dataset (optionally an ROI of each row) into `heap`, and return
 * a view of them there: valid until the next read into the same buffer. h5wasm reads into little-endian memory order
 * whatever the file's order, so big-endian datasets need no swapping here.
 */
export function readRowsToHeap(
  lib: H5Lib,
  info: DatasetInfo,
  rowStart: number,
  nRows: number,
  roi: EntryRoi | undefined,
  heap: HeapBuffer,
): Uint8Array {
  const entryDims = info.shape.slice(1);
  const offset = [BigInt(rowStart), ...entryDims.map((_, i) => BigInt(roi?.[i]?.[0] ?? 0))];
  const count = [BigInt(nRows), ...entryDims.map((d, i) => BigInt(roi?.[i] ? roi[i]![1] - roi[i]![0] : d))];
  const bytes = Number(count.reduce((a, b) => a * b, 1n)) * info.itemSize;
  if (bytes === 0) return new Uint8Array(0);
  const ptr = heap.reserve(bytes);
  try {
    lib.module.get_dataset_data(info.file.file_id, info.path, count, offset, count.map(() => 1n), BigInt(ptr));
  } catch (err) {
    throw new DamnitError(
      "BAD_RUN_FILE",
      `${basename(info.file.filename)}:${info.path}: reading rows ${rowStart}–${rowStart + nRows - 1} failed (${hdf5Reason(err)})`,
      { cause: err },
    );
  }
  // HEAPU8 is looked up after the read: the heap may have grown (and been replaced) during it.
  return lib.module.HEAPU8.subarray(ptr, ptr + bytes);
}

/** Rows of a string or record dataset, as JS values (records become objects keyed by field name). */
export function readRowValues(lib: H5Lib, info: DatasetInfo, rowStart: number, nRows: number): unknown[] {
  if (nRows === 0) return [];
  let raw: unknown;
  try {
    const ds = new lib.h5.Dataset(info.file.file_id, info.path) as Dataset;
    raw = ds.slice([[rowStart, rowStart + nRows]]);
  } catch (err) {
    throw new DamnitError(
      "BAD_RUN_FILE",
      `${basename(info.file.filename)}:${info.path}: reading rows ${rowStart}–${rowStart + nRows - 1} failed (${hdf5Reason(err)})`,
      { cause: err },
    );
  }
  const values = Array.isArray(raw) ? raw : [raw];
  if (info.type !== "compound") return values;
  const meta = lib.module.get_dataset_metadata(info.file.file_id, info.path) as unknown as H5Metadata;
  const names = meta.compound_type?.members.map((m) => m.name) ?? [];
  return values.map((row) => Object.fromEntries((row as unknown[]).map((v, i) => [names[i] ?? `f${i}`, v])));
}

/** A dataset's own attributes, or those of a group, as plain JS values. */
export function readAttributes(lib: H5Lib, file: H5File, path: string): Record<string, unknown> {
  const entity = file.get(path);
  if (!entity || !("attrs" in entity)) return {};
  const out: Record<string, unknown> = {};
  try {
    for (const [name, attr] of Object.entries(entity.attrs)) {
      const value = attr.json_value;
      out[name] = Array.isArray(value) && value.length === 1 ? value[0] : value;
    }
  } catch {
    // Attributes are decoration (units, descriptions); an unreadable one must not stop reading the data.
  }
  return out;
}
