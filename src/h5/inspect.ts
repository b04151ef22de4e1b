/**
 * Reading HDF5 objects through h5wasm's low-level module: what a group holds, element types as the writer describes
 * them, raw element bytes into h5wasm's memory, and datasets as NdArrays.
 */
import type { File as H5File } from "h5wasm/node";
import type { H5Lib } from "./file.js";
import { DTYPES, type DType, type NdArray, sizeOf } from "../core/ndarray.js";
import type { H5Type } from "./writer.js";
import { H5T_COMPOUND, H5T_ENUM, H5T_FLOAT, H5T_INTEGER, H5T_STRING, numericDType } from "./type-classes.js";

type H5Module = H5Lib["module"];

/** The part of h5wasm's metadata this module uses (datasets and attributes alike). */
export interface H5Meta {
  type: number;
  size: number;
  signed: boolean;
  littleEndian: boolean;
  vlen: boolean;
  cset?: number;
  shape: number[] | null;
  maxshape: number[] | null;
  chunks: number[] | null;
  virtual_sources?: unknown[];
  compound_type?: { nmembers: number; members: Array<H5Meta & { name: string; offset: number }> };
  enum_type?: { members: Record<string, number>; nmembers: number; type: number };
}


const CLASS_NAMES: Record<number, string> = {
  2: "time",
  4: "bitfield",
  5: "opaque",
  7: "object reference",
  9: "variable-length sequence",
  10: "array",
};

export type ObjectKind = "group" | "dataset" | "datatype" | "softlink" | "extlink" | "missing";

/** What is at `path` ("missing" when nothing is; links are followed). */
export function objectKind(module: H5Module, fileId: bigint, path: string): ObjectKind {
  let type: number;
  try {
    type = module.get_type(fileId, path);
  } catch {
    return "missing";
  }
  if (type === module.H5G_GROUP) return "group";
  if (type === module.H5G_DATASET) return "dataset";
  if (type === module.H5G_TYPE) return "datatype";
  if (type === module.H5G_LINK) return "softlink";
  if (type === module.H5G_UDLINK) return "extlink";
  return "missing";
}

/**
 * A group's members and what each is, in one call where possible (h5wasm's get_types, which fails on a dangling
 * link; then member by member).
 */
export function children(module: H5Module, fileId: bigint, path: string): Array<[name: string, kind: ObjectKind]> {
  let types: Record<string, number>;
  try {
    types = (module as unknown as { get_types(id: bigint, path: string): Record<string, number> }).get_types(fileId, path);
  } catch {
    const prefix = path === "/" ? "" : path;
    return childNames(module, fileId, path).map((name) => [name, objectKind(module, fileId, `${prefix}/${name}`)]);
  }
  return Object.entries(types).map(([name, type]): [string, ObjectKind] => [
    name,
    type === module.H5O_TYPE_GROUP ? "group" : type === module.H5O_TYPE_DATASET ? "dataset" : type === 2 ? "datatype" : "missing",
  ]);
}

export function childNames(module: H5Module, fileId: bigint, path: string): string[] {
  return module.get_names(fileId, path, false);
}

export function attributeNames(module: H5Module, fileId: bigint, path: string): string[] {
  return module.get_attribute_names(fileId, path);
}

export function datasetMeta(module: H5Module, fileId: bigint, path: string): H5Meta {
  return module.get_dataset_metadata(fileId, path) as unknown as H5Meta;
}

export function attributeMeta(module: H5Module, fileId: bigint, path: string, name: string): H5Meta {
  return module.get_attribute_metadata(fileId, path, name) as unknown as H5Meta;
}

/** An attribute's value as h5wasm decodes it (strings, numbers, typed arrays). */
export function attributeValue(lib: H5Lib, fileId: bigint, path: string, name: string): unknown {
  return new lib.h5.Group(fileId, path).get_attribute(name, false);
}

/** A string attribute's value, or undefined when it is missing or not a string. */
export function stringAttribute(lib: H5Lib, fileId: bigint, path: string, name: string): string | undefined {
  if (!attributeNames(lib.module, fileId, path).includes(name)) return undefined;
  const value = attributeValue(lib, fileId, path, name);
  return typeof value === "string" ? value : undefined;
}

/** The element type in the writer's terms; throws, naming `where`, for types the writer cannot create. */
export function elementTypeOf(meta: H5Meta, where: string): H5Type {
  switch (meta.type) {
    case H5T_INTEGER:
      if ([1, 2, 4, 8].includes(meta.size)) return { class: "int", size: meta.size, signed: meta.signed };
      break;
    case H5T_FLOAT:
      if (meta.size === 4 || meta.size === 8) return { class: "float", size: meta.size };
      throw new Error(`${where}: ${meta.size * 8}-bit floats cannot be written by h5wasm`);
    case H5T_STRING:
      return { class: "string", size: meta.vlen ? "vlen" : meta.size, utf8: meta.cset === 1 };
    case H5T_ENUM: {
      const base = meta.enum_type;
      if (base && base.type === H5T_INTEGER && [1, 2, 4, 8].includes(meta.size)) {
        return { class: "enum", size: meta.size, signed: meta.signed, members: Object.entries(base.members) };
      }
      break;
    }
    case H5T_COMPOUND: {
      const members = meta.compound_type?.members ?? [];
      return {
        class: "compound",
        size: meta.size,
        members: members.map((m) => {
          const type = elementTypeOf(m, `${where} (member ${m.name})`);
          if (type.class === "enum" || (type.class === "string" && type.size === "vlen")) {
            throw new Error(`${where}: records with ${type.class === "enum" ? "enumerated" : "variable-length string"} members cannot be copied`);
          }
          if (!m.littleEndian && m.size > 1 && type.class !== "string") {
            throw new Error(`${where}: records with big-endian members cannot be copied`);
          }
          return { name: m.name, offset: m.offset, type };
        }),
      };
    }
  }
  const kind = CLASS_NAMES[meta.type] ?? `HDF5 type class ${meta.type}`;
  throw new Error(`${where}: element type ${kind} (${meta.size} bytes) cannot be copied with h5wasm`);
}

/** The NdArray dtype of a dataset's elements, or undefined when it has none (strings, other records, …). */
export function dtypeOf(meta: H5Meta): DType | undefined {
  switch (meta.type) {
    case H5T_INTEGER:
    case H5T_FLOAT:
      return numericDType(meta.type, meta.size, meta.signed);
    case H5T_ENUM: {
      const names = Object.keys(meta.enum_type?.members ?? {}).sort().join(",");
      if (names === "FALSE,TRUE" && meta.size === 1) return "bool";
      return meta.enum_type?.type === H5T_INTEGER ? numericDType(H5T_INTEGER, meta.size, meta.signed) : undefined;
    }
    case H5T_COMPOUND: {
      // numpy complex numbers as h5py stores them: {r, i} of two floats
      const m = meta.compound_type?.members ?? [];
      const half = meta.size / 2;
      const isFloat = (x: H5Meta | undefined): boolean => x?.type === H5T_FLOAT && x.size === half;
      if (m.length === 2 && m[0]!.name === "r" && m[1]!.name === "i" && m[0]!.offset === 0 && m[1]!.offset === half && isFloat(m[0]) && isFloat(m[1])) {
        return meta.size === 8 ? "complex64" : meta.size === 16 ? "complex128" : undefined;
      }
      return undefined;
    }
  }
  return undefined;
}

function mallocChecked(module: H5Module, bytes: number): number {
  const ptr = module._malloc(Math.max(bytes, 1));
  if (ptr === 0) throw new Error(`cannot allocate ${bytes} bytes in the HDF5 library's memory`);
  return ptr;
}

/**
 * Read all of a dataset's elements (little-endian) into h5wasm's memory and pass their address to `use`; the memory
 * is freed afterwards. Not for variable-length types.
 */
export function withDatasetBytes<T>(module: H5Module, fileId: bigint, path: string, meta: H5Meta, use: (ptr: number, bytes: number) => T): T {
  const bytes = sizeOf(meta.shape ?? []) * meta.size;
  const ptr = mallocChecked(module, bytes);
  try {
    if (bytes > 0) module.get_dataset_data(fileId, path, null, null, null, BigInt(ptr));
    return use(ptr, bytes);
  } finally {
    module._free(ptr);
  }
}

/** As withDatasetBytes, for an attribute. */
export function withAttributeBytes<T>(
  module: H5Module,
  fileId: bigint,
  path: string,
  name: string,
  meta: H5Meta,
  use: (ptr: number, bytes: number) => T,
): T {
  const bytes = sizeOf(meta.shape ?? []) * meta.size;
  const ptr = mallocChecked(module, bytes);
  try {
    if (bytes > 0) module.get_attribute_data(fileId, path, name, BigInt(ptr));
    return use(ptr, bytes);
  } finally {
    module._free(ptr);
  }
}

/** A numeric dataset as an NdArray (its own copy of the elements), or undefined if its type has no dtype. */
export function readNdArray(module: H5Module, file: H5File, path: string, meta = datasetMeta(module, file.file_id, path)): NdArray | undefined {
  const dtype = dtypeOf(meta);
  if (dtype === undefined || meta.shape === null) return undefined;
  const shape = meta.shape;
  return withDatasetBytes(module, file.file_id, path, meta, (ptr, bytes) => {
    // HEAPU8 is looked up after the read: the heap may have grown (and been replaced) during it.
    const copy = new Uint8Array(module.HEAPU8.subarray(ptr, ptr + bytes));
    const info = DTYPES[dtype];
    return { kind: "ndarray", dtype, shape: [...shape], data: info.make(copy.buffer, 0, sizeOf(shape) * info.lanes) };
  });
}

/** The strings of a variable- or fixed-length string dataset, flattened in C order. */
export function readStrings(lib: H5Lib, fileId: bigint, path: string): string[] {
  const value: unknown = new lib.h5.Dataset(fileId, path).value;
  return flatten(value).map((v) => String(v));
}

/** Nested arrays (as h5wasm returns multi-dimensional string data) flattened in order. */
export function flatten(value: unknown): unknown[] {
  return Array.isArray(value) ? (value as unknown[]).flatMap((v) => flatten(v)) : [value];
}
