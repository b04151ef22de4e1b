/**
 * Chunked datasets (how DAQ and synthetic runs store every large key) read straight from the file by chunk address:
 * uncompressed chunks land in the caller's memory with one pread per run of adjacent chunks, deflate chunks are read
 * raw and inflated by Node's native zlib, shuffle is undone in JS. Chunks never written (missing) are read through
 * libhdf5, which fills them with the dataset's fill value without touching the file. Only chunks that span whole
 * entries (chunk shape [n, ...entry shape]) and the filters deflate and shuffle are handled; anything else stays on
 * libhdf5's path. Like the contiguous path, a layout is only used once a chunk decoded here matched libhdf5's read.
 */
import { inflateSync } from "node:zlib";
import type { File as H5File } from "h5wasm/node";
import { DamnitError } from "../core/errors.js";
import { readChunkIndex, type StoredChunk } from "../h5/chunk-index.js";
import { type DatasetInfo, type H5Lib, HeapBuffer, readRowsToHeap } from "../h5/file.js";

const DEFLATE = 1;
const SHUFFLE = 2;
const HANDLED_FILTERS = new Set([DEFLATE, SHUFFLE]);
/** Below this a dataset is read through libhdf5: too small for the difference to matter. */
const MIN_CHUNKED_BYTES = 64 * 1024;

export interface ChunkedLayout {
  readonly rows: number;
  readonly rowBytes: number;
  readonly chunkRows: number;
  readonly itemSize: number;
  /** Filter ids in pipeline (write) order. */
  readonly filters: readonly number[];
  /** Stored chunk of each chunk number (rows k·chunkRows …); undefined where none was written. */
  readonly chunks: ReadonlyArray<StoredChunk | undefined>;
}

/** Positional reads of the run file, through one descriptor checked to be the file that was opened. */
export type ReadAt = (position: number, out: Uint8Array) => void;
/** Rows read through libhdf5 into `target` (for missing chunks). */
export type FallbackRead = (rowStart: number, rows: number, target: Uint8Array) => void;

/** The object header address of `path`: an H5R_OBJECT reference is exactly that. */
function headerAddress(lib: H5Lib, file: H5File, path: string): number | null {
  try {
    const ref = lib.module.create_object_reference(file.file_id, path) as unknown as number[];
    if (!Array.isArray(ref) || ref.length !== 8) return null;
    const value = Buffer.from(ref).readBigUInt64LE(0);
    return value > 0n && value < BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : null;
  } catch {
    return null;
  }
}

export function findChunkedLayout(lib: H5Lib, info: DatasetInfo, readAt: (use: (read: ReadAt) => void) => void): ChunkedLayout | null {
  const rank = info.shape.length;
  const rows = info.shape[0] ?? 0;
  const rowBytes = info.shape.slice(1).reduce((a, b) => a * b, 1) * info.itemSize;
  if (!info.chunked || rank === 0 || !info.littleEndian || info.itemSize === 0 || rowBytes === 0) return null;
  if (rows * rowBytes < MIN_CHUNKED_BYTES) return null;
  const filters = info.filters.map((f) => f.id);
  if (filters.some((f) => !HANDLED_FILTERS.has(f)) || new Set(filters).size !== filters.length) return null;
  const at = headerAddress(lib, info.file, info.path);
  if (at === null) return null;
  const index = readChunkIndex(info.file.filename, at, rank);
  if (!index) return null;
  const [chunkRows, ...inner] = index.chunkShape as [number, ...number[]];
  if (inner.some((c, d) => c !== info.shape[d + 1])) return null; // chunks split entries: libhdf5 assembles them
  const chunkBytes = chunkRows * rowBytes;
  const chunks: Array<StoredChunk | undefined> = Array.from({ length: Math.ceil(rows / chunkRows) }, () => undefined);
  for (const c of index.chunks) {
    if (c.offsets.slice(1).some((o) => o !== 0)) return null;
    const k = c.offsets[0]! / chunkRows;
    if (k >= chunks.length) continue; // beyond the current extent (dataset shrunk)
    if (chunks[k] !== undefined) return null;
    if (activeFilters(filters, c.filterMask).length === 0 && c.size !== chunkBytes) return null;
    chunks[k] = c;
  }
  const layout: ChunkedLayout = { rows, rowBytes, chunkRows, itemSize: info.itemSize, filters, chunks };
  return verified(lib, info, layout, readAt) ? layout : null;
}

/** Decode the first stored chunk here and through libhdf5; the layout is used only if they agree byte for byte. */
function verified(lib: H5Lib, info: DatasetInfo, layout: ChunkedLayout, readAt: (use: (read: ReadAt) => void) => void): boolean {
  const k = layout.chunks.findIndex((c) => c !== undefined);
  if (k < 0) return true; // nothing stored: every read goes to libhdf5's fill path anyway
  const first = k * layout.chunkRows;
  const n = Math.min(layout.chunkRows, layout.rows - first);
  const ours = new Uint8Array(n * layout.rowBytes);
  const heap = new HeapBuffer(lib.module);
  try {
    readAt((read) => readChunkedRows(layout, read, first, n, ours, () => {
      throw new Error("internal error: stored chunk treated as missing");
    }));
    const theirs = readRowsToHeap(lib, info, first, n, undefined, heap);
    return Buffer.compare(ours, theirs) === 0;
  } catch {
    return false; // libhdf5's own read path will report the problem properly
  } finally {
    heap.release();
  }
}

function activeFilters(filters: readonly number[], mask: number): number[] {
  return filters.filter((_, i) => (mask & (1 << i)) === 0);
}

/** Rows [rowStart, rowStart + nRows) into `target` (nRows · rowBytes long). */
export function readChunkedRows(layout: ChunkedLayout, read: ReadAt, rowStart: number, nRows: number, target: Uint8Array, fallback: FallbackRead): void {
  const { chunkRows, rowBytes } = layout;
  const end = rowStart + nRows;
  // A run of uncompressed rows adjacent in the file, read with one pread when it ends.
  let pending: { file: number; target: number; length: number } | null = null;
  // Compressed chunks stored one after another, read together (one pread rather than one per small chunk).
  let block: { start: number; bytes: Uint8Array } | null = null;
  const flush = () => {
    if (pending) read(pending.file, target.subarray(pending.target, pending.target + pending.length));
    pending = null;
  };
  for (let k = Math.floor(rowStart / chunkRows); k * chunkRows < end; k++) {
    const a = Math.max(rowStart, k * chunkRows);
    const b = Math.min(end, (k + 1) * chunkRows);
    const into = (a - rowStart) * rowBytes;
    const length = (b - a) * rowBytes;
    const chunk = layout.chunks[k];
    if (!chunk) {
      flush();
      fallback(a, b - a, target.subarray(into, into + length));
      continue;
    }
    const within = (a - k * chunkRows) * rowBytes;
    const active = activeFilters(layout.filters, chunk.filterMask);
    if (active.length === 0) {
      const file = chunk.address + within;
      if (pending && pending.file + pending.length === file) {
        pending.length += length;
      } else {
        flush();
        pending = { file, target: into, length };
      }
      continue;
    }
    flush();
    if (!block || chunk.address < block.start || chunk.address + chunk.size > block.start + block.bytes.length) {
      block = readBlock(layout, read, k, Math.floor((end - 1) / chunkRows));
    }
    const raw = block.bytes.subarray(chunk.address - block.start, chunk.address - block.start + chunk.size);
    // A chunk wholly inside the read is unshuffled straight into the target.
    const whole = within === 0 && length === chunkRows * rowBytes ? target.subarray(into, into + length) : undefined;
    const decoded = decodeChunk(raw, active, layout.itemSize, chunkRows * rowBytes, chunk.address, whole);
    if (decoded !== whole) target.set(decoded.subarray(within, within + length), into);
  }
  flush();
}

/** Raw chunks are read into this buffer, reused across reads; chunks larger than a block get their own. */
let scratch = new Uint8Array(64 * 1024);
const MAX_BLOCK_BYTES = 4 * 1024 * 1024;

/** Stored chunk `k` and the chunks up to `lastK` that directly follow it in the file, in one read. */
function readBlock(layout: ChunkedLayout, read: ReadAt, k: number, lastK: number): { start: number; bytes: Uint8Array } {
  const first = layout.chunks[k]!;
  let end = first.address + first.size;
  for (let j = k + 1; j <= lastK; j++) {
    const next = layout.chunks[j];
    if (!next || next.address !== end || end + next.size - first.address > MAX_BLOCK_BYTES) break;
    end += next.size;
  }
  const length = end - first.address;
  if (length > scratch.length && length <= MAX_BLOCK_BYTES) scratch = new Uint8Array(Math.max(length, Math.min(MAX_BLOCK_BYTES, 2 * scratch.length)));
  const bytes = length <= scratch.length ? scratch.subarray(0, length) : new Uint8Array(length);
  read(first.address, bytes);
  return { start: first.address, bytes };
}

/** Undo the filters (in reverse pipeline order) of one chunk; the result must be exactly one chunk of elements. */
function decodeChunk(raw: Uint8Array, filters: readonly number[], itemSize: number, chunkBytes: number, where: number, into?: Uint8Array): Uint8Array {
  let bytes = raw;
  for (let i = filters.length - 1; i >= 0; i--) {
    if (filters[i] === DEFLATE) {
      try {
        bytes = inflateSync(bytes, { chunkSize: Math.max(64, chunkBytes) });
      } catch (err) {
        throw new DamnitError("BAD_RUN_FILE", `the deflate chunk at byte ${where} cannot be inflated (${(err as Error).message}); the file is damaged`, { cause: err });
      }
    } else {
      bytes = unshuffle(bytes, itemSize, i === 0 && bytes.length === into?.length ? into : undefined);
    }
  }
  if (bytes.length !== chunkBytes) {
    throw new DamnitError("BAD_RUN_FILE", `the chunk at byte ${where} decodes to ${bytes.length} bytes instead of ${chunkBytes}; the file is damaged`);
  }
  return bytes;
}

/** HDF5's shuffle filter stores byte j of every element together; put the bytes of each element back together. */
export function unshuffle(input: Uint8Array, itemSize: number, out: Uint8Array = new Uint8Array(input.length)): Uint8Array {
  if (itemSize <= 1) return input;
  const n = Math.floor(input.length / itemSize);
  for (let j = 0; j < itemSize; j++) {
    const from = j * n;
    for (let i = 0, o = j; i < n; i++, o += itemSize) out[o] = input[from + i]!;
  }
  // Bytes beyond the last whole element are stored unshuffled at the end.
  out.set(input.subarray(n * itemSize), n * itemSize);
  return out;
}
