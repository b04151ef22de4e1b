/**
 * Copying HDF5 objects from an open file into a new one by value: groups, datasets (element type, shape, values,
 * chunking, gzip level) and attributes. Dimension scales hold object references, which cannot be copied as values;
 * their bookkeeping attributes (CLASS, NAME, REFERENCE_LIST, DIMENSION_LIST) are left out and the scales made and
 * attached again once every object exists (`finishScales`). Anything that cannot be reproduced fails with an Error
 * naming the object; nothing is dropped silently.
 *
 * What changes in a copy (values never do): big-endian numbers become little-endian; the shuffle and fletcher32
 * filters are dropped (h5wasm sets one filter, so gzip is kept alone), as is gzip on variable-length strings; the
 * HDF5 fill value becomes the default (attributes such as netCDF's `_FillValue` are copied); strings are stored with
 * h5wasm's padding (space-padded UTF-8, null-terminated ASCII); virtual datasets and soft links become copies of
 * what they point to. Each dataset is copied in one piece through h5wasm's memory (2 GB at most).
 */
import type { File as H5File } from "h5wasm/node";
import type { H5Lib } from "./file.js";
import { hdf5Reason } from "./file.js";
import {
  type ObjectKind,
  attributeMeta,
  attributeNames,
  attributeValue,
  children,
  datasetMeta,
  elementTypeOf,
  objectKind,
  withAttributeBytes,
  withDatasetBytes,
} from "./inspect.js";
import type { H5Writer } from "./writer.js";
import { H5T_REFERENCE, H5T_VLEN } from "./type-classes.js";

/**
 * Dimension scales to re-create once all objects are copied, and the largest netCDF dimension id seen. Scales are
 * identified by keys: "ref:<object reference bytes>" (as DIMENSION_LIST holds them) and "path:<path>".
 */
export interface ScaleBook {
  readonly scales: Array<{ path: string; name: string; keys: string[] }>;
  readonly attachments: Array<{ path: string; axis: number; scales: string[] }>;
  maxDimId: number;
}

export function newScaleBook(): ScaleBook {
  return { scales: [], attachments: [], maxDimId: -1 };
}

const SCALE_ATTRS = new Set(["CLASS", "NAME", "REFERENCE_LIST"]);
/** h5wasm reports H5S_UNLIMITED (2^64 − 1) as a double. */
const UNLIMITED_AS_NUMBER = 2 ** 63;

/** Copy the object at `path` (a group with everything below it, or a dataset) to the same path in `w`. */
export function copyObject(lib: H5Lib, src: H5File, w: H5Writer, path: string, book: ScaleBook, kind?: ObjectKind): void {
  kind ??= objectKind(lib.module, src.file_id, path);
  switch (kind) {
    case "group":
      w.createGroup(path);
      copyAttributes(lib, src, w, path);
      for (const [name, childKind] of children(lib.module, src.file_id, path)) copyObject(lib, src, w, `${path}/${name}`, book, childKind);
      return;
    case "dataset":
      copyDataset(lib, src, w, path, book);
      return;
    case "softlink":
      // get_type follows links, so only a dangling one gets here: keep it as a link.
      lib.module.create_soft_link(w.fileId, lib.module.get_symbolic_link(src.file_id, path), path);
      return;
    case "extlink": {
      const link = lib.module.get_external_link(src.file_id, path);
      lib.module.create_external_link(w.fileId, link.filename, link.obj_path, path);
      return;
    }
    default:
      throw new Error(`${src.filename}:${path}: ${kind === "datatype" ? "named datatypes" : "this object"} cannot be copied`);
  }
}

function copyDataset(lib: H5Lib, src: H5File, w: H5Writer, path: string, book: ScaleBook): void {
  const { module } = lib;
  const where = `${src.filename}:${path}`;
  const meta = datasetMeta(module, src.file_id, path);
  if (meta.shape === null) throw new Error(`${where}: datasets without a dataspace (h5py.Empty) cannot be copied`);
  const shape = meta.shape;
  const type = elementTypeOf(meta, where);
  const vlen = type.class === "string" && type.size === "vlen";
  const chunks = meta.chunks ?? undefined;
  const gzip = chunks && !vlen ? module.get_dataset_filters(src.file_id, path).find((f) => f.id === 1) : undefined;
  const opts = {
    chunks,
    deflate: gzip ? (gzip.cd_values[0] ?? 4) : undefined,
    maxshape: chunks && meta.maxshape ? meta.maxshape.map((d) => (d >= UNLIMITED_AS_NUMBER ? null : d)) : undefined,
  };
  try {
    // Variable-length strings too: h5wasm reads them as pointers into its memory, which the write follows.
    withDatasetBytes(module, src.file_id, path, meta, (ptr, bytes) => {
      try {
        w.writeDatasetFromHeap(path, type, shape, ptr, opts);
      } finally {
        if (vlen && bytes > 0) module.reclaim_vlen_memory(src.file_id, path, "", BigInt(ptr));
      }
    });
  } catch (err) {
    throw new Error(`${where}: copying the dataset failed (${hdf5Reason(err)})`, { cause: err });
  }

  const names = attributeNames(module, src.file_id, path);
  const skip = new Set<string>(["DIMENSION_LIST"]);
  if (names.includes("CLASS") && attributeValue(lib, src.file_id, path, "CLASS") === "DIMENSION_SCALE") {
    for (const name of SCALE_ATTRS) skip.add(name);
    const name = names.includes("NAME") ? attributeValue(lib, src.file_id, path, "NAME") : "";
    const ref = refKey(module.create_object_reference(src.file_id, path));
    book.scales.push({ path, name: typeof name === "string" ? name : "", keys: [ref, `path:${path}`] });
  }
  if (names.includes("DIMENSION_LIST")) {
    attachedScales(module, src.file_id, path, shape.length).forEach((scales, axis) => {
      if (scales.length > 0) book.attachments.push({ path, axis, scales });
    });
  }
  if (names.includes("_Netcdf4Dimid")) {
    const id = Number(attributeValue(lib, src.file_id, path, "_Netcdf4Dimid"));
    if (Number.isFinite(id)) book.maxDimId = Math.max(book.maxDimId, id);
  }
  copyAttributes(lib, src, w, path, skip, names);
}

/** Copy the attributes of `path` (a group or dataset) except those named in `skip`. */
export function copyAttributes(
  lib: H5Lib,
  src: H5File,
  w: H5Writer,
  path: string,
  skip: ReadonlySet<string> = new Set(),
  names = attributeNames(lib.module, src.file_id, path),
): void {
  const { module } = lib;
  for (const name of names) {
    if (skip.has(name)) continue;
    const where = `${src.filename}:${path} attribute ${name}`;
    const meta = attributeMeta(module, src.file_id, path, name);
    if (meta.shape === null) throw new Error(`${where}: attributes without a dataspace (h5py.Empty) cannot be copied`);
    const shape = meta.shape;
    const type = elementTypeOf(meta, where);
    const vlen = type.class === "string" && type.size === "vlen";
    try {
      withAttributeBytes(module, src.file_id, path, name, meta, (ptr, bytes) => {
        try {
          w.writeAttributeFromHeap(path, name, type, shape, ptr);
        } finally {
          if (vlen && bytes > 0) module.reclaim_vlen_memory(src.file_id, path, name, BigInt(ptr));
        }
      });
    } catch (err) {
      throw new Error(`${where}: copying the attribute failed (${hdf5Reason(err)})`, { cause: err });
    }
  }
}

const refKey = (bytes: ArrayLike<number>): string => `ref:${Buffer.from(Uint8Array.from(bytes)).toString("hex")}`;

/**
 * Keys of the scales attached to each dimension of `path`. DIMENSION_LIST is read directly: its object references
 * are compared with those of the scales, because h5wasm's get_attached_scales finds each scale's path by searching
 * the whole file (about a millisecond per call even in small files).
 */
function attachedScales(module: H5Lib["module"], fileId: bigint, path: string, ndim: number): string[][] {
  const meta = attributeMeta(module, fileId, path, "DIMENSION_LIST") as ReturnType<typeof attributeMeta> & { vlen_type?: { type: number; size: number } };
  const refSize = module.SIZEOF_OBJ_REF;
  if (meta.type !== H5T_VLEN || meta.size !== 8 || meta.vlen_type?.type !== H5T_REFERENCE || meta.vlen_type.size !== refSize || meta.shape?.length !== 1) {
    // Not the layout H5DS writes (one hvl_t {length, pointer} of object references per dimension): ask HDF5.
    return Array.from({ length: ndim }, (_, axis) => module.get_attached_scales(fileId, path, axis).map((p) => `path:${p}`));
  }
  return withAttributeBytes(module, fileId, path, "DIMENSION_LIST", meta, (ptr, bytes) => {
    try {
      const heap = module.HEAPU8;
      const view = new DataView(heap.buffer);
      return Array.from({ length: Math.min(ndim, bytes / 8) }, (_, axis) => {
        const length = view.getUint32(ptr + axis * 8, true);
        const data = view.getUint32(ptr + axis * 8 + 4, true);
        return Array.from({ length }, (_, i) => refKey(heap.subarray(data + i * refSize, data + (i + 1) * refSize)));
      });
    } finally {
      if (bytes > 0) module.reclaim_vlen_memory(fileId, path, "DIMENSION_LIST", BigInt(ptr));
    }
  });
}

/** Make the recorded dimension scales and attach them as they were. */
export function finishScales(w: H5Writer, book: ScaleBook): void {
  const made = new Map<string, string>();
  for (const { path, name, keys } of book.scales) {
    w.makeScale(path, name);
    for (const key of keys) made.set(key, path);
  }
  for (const { path, axis, scales } of book.attachments) {
    for (const key of scales) {
      const scale = made.get(key);
      if (scale === undefined) {
        const which = key.startsWith("path:") ? ` ${key.slice(5)}` : "";
        throw new Error(`${path}: dimension ${axis} has a dimension scale${which} attached that is not among the copied objects`);
      }
      w.attachScale(path, axis, scale);
    }
  }
  book.scales.length = 0;
  book.attachments.length = 0;
}
