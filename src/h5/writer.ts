/**
 * Writing HDF5 files through h5wasm's low-level module, in the layout h5py makes by default (HDF5's "earliest" file
 * format: superblock 0, version-1 object headers), with full control over element types, chunking and heap memory.
 *
 * h5wasm cannot create enumerated types, but h5py writes every numpy bool as the enum {FALSE: 0, TRUE: 1} on int8,
 * and DAMNIT's files hold them (the `bold` attribute, boolean results). So enums are written with a stand-in: a
 * one-member compound type of the enum's integer size whose member name is a random nonce. Its encoded datatype
 * message (60 bytes or more) is at least as long as the enum's (38 bytes for a bool), and the element bytes are the
 * same. After the file is closed, every stand-in message is found by its bytes (nonce included) and overwritten with
 * the enum's encoding followed by zeros, which HDF5 ignores: an attribute message locates its dataspace by the
 * datatype size it stores, and a datatype message may be longer than its encoding. There must be at least as many
 * matches as objects written with the stand-in, or the write fails (more are stale copies of moved messages). The
 * nonce makes a match in data practically impossible. This is sound only in the earliest file format, whose object
 * headers carry no checksums; that is why the writer uses it by default. A writer may instead start at HDF5 1.8's
 * format ("v108": superblock 2, version-2 object headers with compact links, h5wasm's own default), which is smaller
 * for files of many small objects, but then it cannot write enums.
 *
 * Large datasets need not exist in memory in one piece: createEmptyDataset makes a chunked dataset whose rows are then
 * written in blocks with writeRows (unwritten chunks take no space and read as 0).
 */
import { randomBytes } from "node:crypto";
import { closeSync, openSync, readSync, writeSync } from "node:fs";
import type { File as H5File } from "h5wasm/node";
import { type H5Lib, hdf5Reason } from "./file.js";
import { H5T_COMPOUND, H5T_CSET_ASCII, H5T_CSET_UTF8, H5T_FLOAT, H5T_INTEGER, H5T_STRING } from "./type-classes.js";

type H5Module = H5Lib["module"];
type WriteMetadata = Parameters<H5Module["create_dataset"]>[3];

/** An HDF5 element type this writer can create (all little-endian). */
export type H5Type =
  | { readonly class: "int"; readonly size: number; readonly signed: boolean }
  | { readonly class: "float"; readonly size: number }
  | {
      readonly class: "enum";
      readonly size: number;
      readonly signed: boolean;
      readonly members: ReadonlyArray<readonly [name: string, value: number]>;
    }
  /** size: bytes of a fixed-length string, or "vlen" */
  | { readonly class: "string"; readonly size: number | "vlen"; readonly utf8: boolean }
  | { readonly class: "compound"; readonly size: number; readonly members: readonly CompoundMember[] };

export interface CompoundMember {
  readonly name: string;
  readonly offset: number;
  readonly type: H5Type;
}

/** numpy's bool as h5py stores it. */
export const BOOL_ENUM: H5Type = { class: "enum", size: 1, signed: true, members: [["FALSE", 0], ["TRUE", 1]] };
export const VLEN_UTF8: H5Type = { class: "string", size: "vlen", utf8: true };

export interface DatasetOptions {
  /** chunk shape; omit for contiguous storage */
  readonly chunks?: readonly number[];
  /** gzip level (needs chunks) */
  readonly deflate?: number;
  /** null = unlimited; default: the shape */
  readonly maxshape?: ReadonlyArray<number | null>;
}

const H5S_UNLIMITED = 18446744073709551615n;

export interface H5WriterOptions {
  /**
   * The oldest file format the objects may use: "earliest" (default; h5py's layout, and what enums need) or "v108"
   * (HDF5 1.8's, as h5wasm writes by default).
   */
  readonly lowBound?: "earliest" | "v108";
}

/** h5wasm's description of an element type (enums excluded: they are written as stand-ins). */
function typeMetadata(type: H5Type): Record<string, unknown> {
  const base = { signed: false, littleEndian: true, vlen: false };
  switch (type.class) {
    case "int":
      return { ...base, type: H5T_INTEGER, size: type.size, signed: type.signed };
    case "float":
      return { ...base, type: H5T_FLOAT, size: type.size };
    case "string":
      return {
        ...base,
        type: H5T_STRING,
        size: type.size === "vlen" ? 0 : type.size,
        vlen: type.size === "vlen",
        cset: type.utf8 ? H5T_CSET_UTF8 : H5T_CSET_ASCII,
      };
    case "compound":
      return {
        ...base,
        type: H5T_COMPOUND,
        size: type.size,
        compound_type: {
          nmembers: type.members.length,
          members: type.members.map((m) => {
            if (m.type.class === "enum") throw new Error(`compound member ${m.name}: enumerated members cannot be written`);
            return { ...typeMetadata(m.type), name: m.name, offset: m.offset };
          }),
        },
      };
    case "enum":
      throw new Error("internal error: enum types are written through stand-ins");
  }
}

const bigShape = (dims: readonly number[]): bigint[] => dims.map((d) => BigInt(d));

/** Encoded datatype message (version 1) of a little-endian integer type. */
function integerMessage(size: number, signed: boolean): Buffer {
  const msg = Buffer.alloc(12);
  msg[0] = 0x10; // class 0 (fixed-point), version 1
  msg[1] = signed ? 0x08 : 0x00; // little-endian, zero padding, signed bit
  msg.writeUInt32LE(size, 4);
  msg.writeUInt16LE(0, 8); // bit offset
  msg.writeUInt16LE(size * 8, 10); // precision
  return msg;
}

/** A null-terminated name padded with NULs to a multiple of 8 bytes (datatype message version 1). */
function paddedName(name: string): Buffer {
  const bytes = Buffer.from(name, "utf8");
  const out = Buffer.alloc(Math.ceil((bytes.length + 1) / 8) * 8);
  bytes.copy(out);
  return out;
}

function encodeInteger(value: number, size: number, signed: boolean): Buffer {
  const out = Buffer.alloc(size);
  if (size === 8) {
    if (signed) out.writeBigInt64LE(BigInt(value));
    else out.writeBigUInt64LE(BigInt(value));
  } else if (signed) out.writeIntLE(value, 0, size);
  else out.writeUIntLE(value, 0, size);
  return out;
}

/** Encoded datatype message (version 1) of an enum on a little-endian integer, as libhdf5 writes it for h5py. */
function enumMessage(type: Extract<H5Type, { class: "enum" }>): Buffer {
  const n = type.members.length;
  const head = Buffer.alloc(8);
  head[0] = 0x18; // class 8 (enum), version 1
  head.writeUInt16LE(n, 1); // number of members
  head.writeUInt32LE(type.size, 4);
  return Buffer.concat([
    head,
    integerMessage(type.size, type.signed),
    ...type.members.map(([name]) => paddedName(name)),
    ...type.members.map(([, value]) => encodeInteger(value, type.size, type.signed)),
  ]);
}

/** Encoded datatype message (version 1) of a compound with one integer member at offset 0. */
function standInMessage(memberName: string, size: number, signed: boolean): Buffer {
  const head = Buffer.alloc(8);
  head[0] = 0x16; // class 6 (compound), version 1
  head.writeUInt16LE(1, 1); // one member
  head.writeUInt32LE(size, 4);
  // member: name, byte offset (4), dimensionality (1), reserved (3), permutation (4), reserved (4), dim sizes (16)
  return Buffer.concat([head, paddedName(memberName), Buffer.alloc(4 + 28), integerMessage(size, signed)]);
}

const NONCE_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

function nonce(length: number): string {
  return [...randomBytes(length)].map((b) => NONCE_ALPHABET[b % NONCE_ALPHABET.length]).join("");
}

interface StandIn {
  readonly memberName: string;
  readonly search: Buffer;
  readonly replacement: Buffer;
  /** objects written with it */
  count: number;
}

/** A new HDF5 file being written; close() finishes it (enum stand-ins replaced), abort() abandons it. */
export class H5Writer {
  readonly module: H5Module;
  readonly fileId: bigint;
  private readonly file: H5File;
  private readonly standIns = new Map<string, StandIn>();
  /** Groups made through this writer ("" is the root), so requireGroup looks nothing up in the file. */
  private readonly groups = new Set<string>([""]);
  private closed = false;
  private readonly lowBound: "earliest" | "v108";

  /** Create `path`, which must not exist. */
  constructor(
    readonly lib: H5Lib,
    readonly path: string,
    opts: H5WriterOptions = {},
  ) {
    this.module = lib.module;
    this.lowBound = opts.lowBound ?? "earliest";
    try {
      this.file = new lib.h5.File(path, "x", { libver: [this.lowBound, "latest"] });
    } catch (err) {
      throw new Error(`cannot create ${path} (${hdf5Reason(err)})`, { cause: err });
    }
    this.fileId = this.file.file_id;
  }

  /** The type to give h5wasm for `type`, and the stand-in whose count to raise once the object exists. */
  private resolve(type: H5Type): { meta: Record<string, unknown>; standIn?: StandIn } {
    if (type.class !== "enum") return { meta: typeMetadata(type) };
    if (this.lowBound !== "earliest") throw new Error(`${this.path}: enums can only be written in the earliest file format`);
    if (![1, 2, 4, 8].includes(type.size)) throw new Error(`enum of ${type.size}-byte integers cannot be written`);
    const key = JSON.stringify(type);
    let standIn = this.standIns.get(key);
    if (!standIn) {
      const replacement = enumMessage(type);
      // The stand-in message is 52 bytes plus the padded member name; make it at least as long as the enum's.
      const nameLength = Math.max(8, Math.ceil((replacement.length - 52) / 8) * 8) - 1;
      const name = nonce(nameLength);
      const search = standInMessage(name, type.size, type.signed);
      standIn = { memberName: name, search, replacement: Buffer.concat([replacement, Buffer.alloc(search.length - replacement.length)]), count: 0 };
      this.standIns.set(key, standIn);
    }
    const member = { ...typeMetadata({ class: "int", size: type.size, signed: type.signed }), name: standIn.memberName, offset: 0 };
    return { meta: { ...typeMetadata({ class: "compound", size: type.size, members: [] }), compound_type: { nmembers: 1, members: [member] } }, standIn };
  }

  createGroup(path: string): void {
    this.module.create_group(this.fileId, path, false);
    this.groups.add(groupKey(path));
  }

  /**
   * The group at `path`, with every missing group above it, created unless this writer made it already (h5wasm
   * creates no intermediate groups). Only groups made through this writer count as existing.
   */
  requireGroup(path: string): void {
    const parts = groupKey(path).split("/").filter(Boolean);
    for (let i = 1; i <= parts.length; i++) {
      const key = parts.slice(0, i).join("/");
      if (!this.groups.has(key)) this.createGroup(`/${key}`);
    }
  }

  /** requireGroup for the group that holds `path`. */
  requireParent(path: string): void {
    const key = groupKey(path);
    this.requireGroup(key.slice(0, Math.max(0, key.lastIndexOf("/"))));
  }

  /** A soft link at `linkPath` to the absolute path `target` (which need not exist yet). */
  createSoftLink(linkPath: string, target: string): void {
    this.module.create_soft_link(this.fileId, target, linkPath);
  }

  /** A dataset of numbers (or fixed-length strings, enums, records) from raw little-endian element bytes. */
  writeDataset(path: string, type: H5Type, shape: readonly number[], bytes: ArrayBufferView, opts: DatasetOptions = {}): void {
    this.withHeapCopy(bytes, (ptr) => this.writeDatasetFromHeap(path, type, shape, ptr, opts));
  }

  /** As writeDataset, with the element bytes already in h5wasm's memory at `ptr`. */
  writeDatasetFromHeap(path: string, type: H5Type, shape: readonly number[], ptr: number, opts: DatasetOptions = {}): void {
    const { meta, standIn } = this.resolve(type);
    this.module.create_dataset(this.fileId, path, BigInt(ptr), this.datasetMetadata(meta, shape, opts));
    if (standIn) standIn.count++;
  }

  /**
   * A chunked dataset of `shape` with nothing written yet, to be filled with writeRows. It is created with 0 rows and
   * resized, so no data has to be passed; maxshape defaults to an unlimited first axis.
   */
  createEmptyDataset(path: string, type: H5Type, shape: readonly number[], opts: DatasetOptions & { readonly chunks: readonly number[] }): void {
    if (shape.length === 0) throw new Error(`internal error: ${path}: an empty dataset needs at least one axis`);
    const [rows, ...rest] = shape as [number, ...number[]];
    const maxshape = opts.maxshape ?? [null, ...rest];
    this.writeDataset(path, type, [0, ...rest], new Uint8Array(0), { ...opts, maxshape });
    if (rows > 0) this.resizeDataset(path, shape);
  }

  /** Change the shape of a chunked dataset within its maxshape. */
  resizeDataset(path: string, shape: readonly number[]): void {
    this.module.resize_dataset(this.fileId, path, bigShape(shape));
  }

  /**
   * Write a block of whole rows from raw element bytes: rows [firstRow, firstRow + blockShape[0]) of a dataset whose
   * other axes are blockShape's.
   */
  writeRows(path: string, firstRow: number, blockShape: readonly number[], bytes: ArrayBufferView): void {
    this.withHeapCopy(bytes, (ptr) => this.writeRowsFromHeap(path, firstRow, blockShape, ptr));
  }

  /** As writeRows, with the element bytes already in h5wasm's memory at `ptr`. */
  writeRowsFromHeap(path: string, firstRow: number, blockShape: readonly number[], ptr: number): void {
    if (blockShape.length === 0 || blockShape[0] === 0) return;
    const offset = blockShape.map((_, axis) => BigInt(axis === 0 ? firstRow : 0));
    const strides = blockShape.map(() => 1n);
    this.module.set_dataset_data(this.fileId, path, bigShape(blockShape), offset, strides, BigInt(ptr));
  }

  /** A dataset of variable-length strings (shape [] for a scalar). */
  writeStringDataset(path: string, values: readonly string[], shape: readonly number[], utf8 = true, opts: DatasetOptions = {}): void {
    checkStrings(values, path);
    const meta = typeMetadata({ class: "string", size: "vlen", utf8 });
    this.module.create_vlen_str_dataset(this.fileId, path, [...values], this.datasetMetadata(meta, shape, opts));
  }

  writeAttribute(objPath: string, name: string, type: H5Type, shape: readonly number[], bytes: ArrayBufferView): void {
    this.withHeapCopy(bytes, (ptr) => this.writeAttributeFromHeap(objPath, name, type, shape, ptr));
  }

  writeAttributeFromHeap(objPath: string, name: string, type: H5Type, shape: readonly number[], ptr: number): void {
    const { meta, standIn } = this.resolve(type);
    this.module.create_attribute(this.fileId, objPath, name, BigInt(ptr), { ...meta, shape: bigShape(shape), maxshape: null } as unknown as WriteMetadata);
    if (standIn) standIn.count++;
  }

  /** Variable-length string attribute: a scalar for a string, 1-D for an array unless `shape` says otherwise. */
  writeStringAttribute(objPath: string, name: string, value: string | readonly string[], utf8 = true, shape?: readonly number[]): void {
    const values = typeof value === "string" ? [value] : [...value];
    checkStrings(values, `${objPath} attribute ${name}`);
    const meta = typeMetadata({ class: "string", size: "vlen", utf8 });
    shape ??= typeof value === "string" ? [] : [values.length];
    this.module.create_vlen_str_attribute(this.fileId, objPath, name, values, { ...meta, shape: bigShape(shape), maxshape: null } as unknown as WriteMetadata);
  }

  /** Make `path` an HDF5 dimension scale (H5DSset_scale: attributes CLASS and NAME). */
  makeScale(path: string, name: string): void {
    this.module.set_scale(this.fileId, path, name);
  }

  /** Attach the scale at `scalePath` to dimension `axis` of `path` (H5DSattach_scale). */
  attachScale(path: string, axis: number, scalePath: string): void {
    this.module.attach_scale(this.fileId, path, scalePath, axis);
  }

  /** Close the file and replace the enum stand-ins. Throws (file left for the caller to delete) on failure. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.file.close();
    replaceStandIns(this.path, [...this.standIns.values()].filter((s) => s.count > 0));
  }

  /** Close without finishing, ignoring errors; the caller deletes the file. */
  abort(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      this.file.close();
    } catch {
      // already failing
    }
  }

  private datasetMetadata(meta: Record<string, unknown>, shape: readonly number[], opts: DatasetOptions): WriteMetadata {
    if (opts.deflate !== undefined && !opts.chunks) throw new Error("internal error: compression needs chunks");
    return {
      ...meta,
      shape: bigShape(shape),
      maxshape: opts.maxshape ? opts.maxshape.map((d) => (d === null ? H5S_UNLIMITED : BigInt(d))) : bigShape(shape),
      chunks: opts.chunks ? bigShape(opts.chunks) : null,
      compression: opts.deflate === undefined ? 0 : 1,
      compression_opts: opts.deflate === undefined ? [] : [opts.deflate],
      track_order: false,
    } as unknown as WriteMetadata;
  }

  private withHeapCopy(bytes: ArrayBufferView, use: (ptr: number) => void): void {
    const view = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const ptr = this.module._malloc(Math.max(view.length, 1));
    if (ptr === 0) throw new Error(`cannot allocate ${view.length} bytes in the HDF5 writer's memory`);
    try {
      this.module.HEAPU8.set(view, ptr);
      use(ptr);
    } finally {
      this.module._free(ptr);
    }
  }
}

/** A group path as the key of `groups`: no leading or trailing slashes. */
function groupKey(path: string): string {
  return path.split("/").filter(Boolean).join("/");
}

function checkStrings(values: readonly string[], where: string): void {
  for (const v of values) {
    if (typeof v !== "string") throw new TypeError(`${where}: expected a string, got ${typeof v}`);
    if (v.includes("\0")) throw new Error(`${where}: HDF5 strings cannot contain NUL characters`);
  }
}

const SCAN_BLOCK = 8 << 20;

/** Overwrite each stand-in datatype message in the file with its enum; the match count must be exact. */
function replaceStandIns(path: string, standIns: readonly StandIn[]): void {
  if (standIns.length === 0) return;
  const overlap = Math.max(...standIns.map((s) => s.search.length)) - 1;
  const found = standIns.map(() => new Set<number>());
  const fd = openSync(path, "r+");
  try {
    const buffer = Buffer.alloc(SCAN_BLOCK + overlap);
    let kept = 0; // bytes carried over from the previous block
    let start = 0; // file offset of buffer[0]
    for (;;) {
      const read = readSync(fd, buffer, kept, SCAN_BLOCK, start + kept);
      const filled = kept + read;
      standIns.forEach((s, i) => {
        for (let at = buffer.indexOf(s.search, 0); at >= 0 && at + s.search.length <= filled; at = buffer.indexOf(s.search, at + 1)) {
          found[i]!.add(start + at);
        }
      });
      if (read === 0) break;
      kept = Math.min(overlap, filled);
      buffer.copy(buffer, 0, filled - kept, filled);
      start += filled - kept;
    }
    // More matches than objects are stale copies HDF5 left in free space when it moved a message; rewriting them
    // is harmless. Fewer would leave an object with the stand-in type.
    standIns.forEach((s, i) => {
      if (found[i]!.size < s.count) {
        throw new Error(`${path}: found ${found[i]!.size} stand-ins for an enumerated type where ${s.count} were written`);
      }
    });
    standIns.forEach((s, i) => {
      for (const offset of found[i]!) writeSync(fd, s.replacement, 0, s.replacement.length, offset);
    });
  } finally {
    closeSync(fd);
  }
}
