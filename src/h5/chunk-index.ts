/**
 * Where a chunked dataset's chunks are in the file, read from the file itself: h5wasm exposes neither H5Dget_offset
 * nor H5Dget_chunk_info, but an object reference (H5R_OBJECT) is the address of the dataset's object header. From
 * there we parse the data layout message and walk the version-1 B-tree of chunks (the index of HDF5's "earliest"
 * format, which h5py, Karabo's DAQ and our writer use). Only what this parser fully understands is returned; anything
 * else (other chunk indexes, other offset sizes, a user block) gives null and the dataset stays on libhdf5's path.
 * Every structure is bounds-checked; callers additionally compare a decoded chunk with libhdf5's read of it.
 */
import { closeSync, fstatSync, openSync, readSync } from "node:fs";

/** One stored chunk: its file address, stored (possibly compressed) size, and which filters were skipped. */
export interface StoredChunk {
  readonly address: number;
  readonly size: number;
  readonly filterMask: number;
  /** Element offsets of the chunk's first element along each dimension. */
  readonly offsets: readonly number[];
}

export interface ChunkIndex {
  /** Chunk shape in elements, one per dataset dimension. */
  readonly chunkShape: readonly number[];
  /** Allocated chunks, in B-tree order; chunks never written are absent (they read as the fill value). */
  readonly chunks: readonly StoredChunk[];
}

const UNDEFINED_ADDRESS = 0xffffffffffffffffn;
const MAX_BTREE_NODES = 1_000_000;
const MAX_BTREE_DEPTH = 64;
const MAX_HEADER_BLOCKS = 1000;

/** Reads bounded pieces of one file through one descriptor, refusing anything beyond its end. */
class FileBytes {
  readonly size: number;
  constructor(private readonly fd: number) {
    this.size = fstatSync(fd).size;
  }

  read(position: number, length: number): Buffer {
    if (!Number.isSafeInteger(position) || position < 0 || length < 0 || position + length > this.size) {
      throw new ParseError(`read of ${length} bytes at ${position} is outside the file`);
    }
    const out = Buffer.alloc(length);
    let done = 0;
    while (done < length) {
      const n = readSync(this.fd, out, done, length - done, position + done);
      if (n === 0) throw new ParseError("file ended early");
      done += n;
    }
    return out;
  }
}

class ParseError extends Error {}

function address(buf: Buffer, at: number): number | null {
  const value = buf.readBigUInt64LE(at);
  if (value === UNDEFINED_ADDRESS) return null;
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new ParseError("address beyond 2^53");
  return Number(value);
}

/** Offsets and lengths must be 8 bytes and the base address 0 (no user block): the only case parsed here. */
function checkSuperblock(file: FileBytes): void {
  const head = file.read(0, 32);
  if (head.readUInt32BE(0) !== 0x89484446 || head.readUInt32BE(4) !== 0x0d0a1a0a) throw new ParseError("no superblock at 0");
  const version = head[8]!;
  let offsets: number;
  let lengths: number;
  let base: number | null;
  if (version === 0 || version === 1) {
    offsets = head[13]!;
    lengths = head[14]!;
    base = address(head, version === 0 ? 24 : 28);
  } else if (version === 2 || version === 3) {
    offsets = head[9]!;
    lengths = head[10]!;
    base = address(head, 12);
  } else {
    throw new ParseError(`superblock version ${version}`);
  }
  if (offsets !== 8 || lengths !== 8 || base !== 0) throw new ParseError("unsupported offset/length size or base address");
}

/** The raw bytes of every message of one type in an object header (continuation blocks followed). */
function headerMessages(file: FileBytes, headerAddress: number, wanted: number): Buffer[] {
  const found: Buffer[] = [];
  const first = file.read(headerAddress, 16);
  const blocks: Array<{ at: number; length: number }> = [];
  let v2 = false;
  let creationOrder = false;
  if (first[0] === 1) {
    blocks.push({ at: headerAddress + 16, length: first.readUInt32LE(8) });
  } else if (first.toString("latin1", 0, 4) === "OHDR" && first[4] === 2) {
    v2 = true;
    const flags = first[5]!;
    creationOrder = (flags & 0x04) !== 0;
    let pos = 6 + ((flags & 0x20) !== 0 ? 16 : 0) + ((flags & 0x10) !== 0 ? 4 : 0);
    const width = 1 << (flags & 0x03);
    const sizeBytes = file.read(headerAddress + pos, width);
    const size = width === 8 ? Number(sizeBytes.readBigUInt64LE(0)) : sizeBytes.readUIntLE(0, width);
    pos += width;
    blocks.push({ at: headerAddress + pos, length: size });
  } else {
    throw new ParseError("unknown object header version");
  }
  for (let b = 0; b < blocks.length; b++) {
    if (b >= MAX_HEADER_BLOCKS) throw new ParseError("too many header continuation blocks");
    const { at, length } = blocks[b]!;
    const block = file.read(at, length);
    const headerSize = v2 ? 4 + (creationOrder ? 2 : 0) : 8;
    let pos = 0;
    if (v2 && b > 0) {
      if (block.toString("latin1", 0, 4) !== "OCHK") throw new ParseError("bad continuation block");
      pos = 4;
    }
    const end = v2 && b > 0 ? block.length - 4 : block.length; // v2 continuation blocks end with a checksum
    while (pos + headerSize <= end) {
      const type = v2 ? block[pos]! : block.readUInt16LE(pos);
      const size = v2 ? block.readUInt16LE(pos + 1) : block.readUInt16LE(pos + 2);
      const data = pos + headerSize;
      if (data + size > end) throw new ParseError("message runs past its header block");
      const body = block.subarray(data, data + size);
      if (type === 0x10) {
        const next = address(body, 0);
        if (next !== null) blocks.push({ at: next, length: Number(body.readBigUInt64LE(8)) });
      } else if (type === wanted) {
        found.push(body);
      }
      pos = data + size;
    }
  }
  return found;
}

function walkBTree(file: FileBytes, root: number, rank: number, out: StoredChunk[]): void {
  const keySize = 8 + 8 * (rank + 1);
  const seen = new Set<number>();
  const visit = (at: number, depth: number, expectedLevel: number | null): void => {
    if (depth > MAX_BTREE_DEPTH || seen.size >= MAX_BTREE_NODES || seen.has(at)) throw new ParseError("B-tree too deep or cyclic");
    seen.add(at);
    const head = file.read(at, 24);
    if (head.toString("latin1", 0, 4) !== "TREE" || head[4] !== 1) throw new ParseError("not a chunk B-tree node");
    const level = head[5]!;
    if (expectedLevel !== null && level !== expectedLevel) throw new ParseError("B-tree levels inconsistent");
    const entries = head.readUInt16LE(6);
    const body = file.read(at + 24, entries * (keySize + 8) + keySize);
    for (let i = 0; i < entries; i++) {
      const key = i * (keySize + 8);
      const child = address(body, key + keySize);
      if (child === null) throw new ParseError("B-tree child without address");
      if (level > 0) {
        visit(child, depth + 1, level - 1);
        continue;
      }
      const offsets: number[] = [];
      for (let d = 0; d < rank; d++) {
        const v = body.readBigUInt64LE(key + 8 + 8 * d);
        if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new ParseError("chunk offset beyond 2^53");
        offsets.push(Number(v));
      }
      out.push({ address: child, size: body.readUInt32LE(key), filterMask: body.readUInt32LE(key + 4), offsets });
    }
  };
  visit(root, 0, null);
}

/** The chunk index of the dataset whose object header is at `headerAddress`, or null when it cannot be parsed here. */
export function readChunkIndex(filename: string, headerAddress: number, rank: number): ChunkIndex | null {
  let fd: number;
  try {
    fd = openSync(filename, "r");
  } catch {
    return null;
  }
  try {
    const file = new FileBytes(fd);
    checkSuperblock(file);
    const layouts = headerMessages(file, headerAddress, 0x0008);
    if (layouts.length !== 1) return null;
    const layout = layouts[0]!;
    // Version 3, chunked class: dimensionality (rank + 1, the last being the element size), B-tree address, sizes.
    if (layout[0] !== 3 || layout[1] !== 2 || layout[2] !== rank + 1 || layout.length < 11 + 4 * (rank + 1)) return null;
    const root = address(layout, 3);
    const chunkShape: number[] = [];
    for (let d = 0; d < rank; d++) chunkShape.push(layout.readUInt32LE(11 + 4 * d));
    if (chunkShape.some((c) => c === 0)) return null;
    const chunks: StoredChunk[] = [];
    if (root !== null) walkBTree(file, root, rank, chunks);
    for (const c of chunks) {
      if (c.address + c.size > file.size || c.size === 0) return null;
      if (c.offsets.some((o, d) => o % chunkShape[d]! !== 0)) return null;
    }
    return { chunkShape, chunks };
  } catch (err) {
    if (err instanceof ParseError || err instanceof RangeError) return null;
    throw err;
  } finally {
    closeSync(fd);
  }
}
