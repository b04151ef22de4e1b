/**
 * Uncompressed, contiguous datasets (raw detector data) read straight from the file into the caller's memory,
 * skipping the copy through h5wasm's heap: at the speed of a plain file read.
 *
 * h5wasm does not expose where a dataset's bytes start (H5Dget_offset), so we let libhdf5 tell us: it reads rows
 * larger than its sieve buffer with one pread straight into our buffer, and the file position of that pread is
 * where the rows start. The mapping is then checked by reading the same bytes from the file ourselves; anything
 * unexpected (filters, chunks, big-endian, another file, a mismatch) keeps the dataset on the libhdf5 path.
 */
import { closeSync, openSync, readSync, statSync } from "node:fs";
import { resolve } from "node:path";
import { type DatasetInfo, type H5Lib, HeapBuffer } from "../h5/file.js";

export interface DirectLayout {
  /** Byte offset of row 0 in the file. */
  readonly offset: number;
  readonly rowBytes: number;
  readonly rows: number;
}

/** Below this a dataset is read through libhdf5: too small for the difference to matter, and below the probe size. */
const MIN_DIRECT_BYTES = 128 * 1024;
/** Larger than libhdf5's sieve buffer (64 KiB), so the probe read goes straight into our buffer. */
const PROBE_BYTES = 256 * 1024;

interface EmscriptenFS {
  read(stream: { path?: string }, buffer: Uint8Array, offset: number, length: number, position?: number): number;
}

export function findDirectLayout(lib: H5Lib, info: DatasetInfo): DirectLayout | null {
  const rows = info.shape[0] ?? 0;
  const rowBytes = info.shape.slice(1).reduce((a, b) => a * b, 1) * info.itemSize;
  if (info.chunked || info.filters.length > 0 || !info.littleEndian || info.itemSize === 0 || rowBytes === 0) return null;
  if (rows * rowBytes < MIN_DIRECT_BYTES) return null;
  const probeRows = Math.min(rows, Math.ceil(PROBE_BYTES / rowBytes));
  const probeBytes = probeRows * rowBytes;
  const fs = (lib.module as unknown as { FS: EmscriptenFS }).FS;
  const heap = new HeapBuffer(lib.module);
  const original = fs.read;
  const seen: Array<{ path: string | undefined; offset: number; length: number; position: number | undefined }> = [];
  try {
    const ptr = heap.reserve(probeBytes);
    fs.read = function (stream, buffer, offset, length, position) {
      seen.push({ path: stream.path, offset, length, position });
      return original.call(this, stream, buffer, offset, length, position);
    };
    try {
      lib.module.get_dataset_data(info.file.file_id, info.path, [BigInt(probeRows), ...info.shape.slice(1).map(BigInt)], info.shape.map(() => 0n), info.shape.map(() => 1n), BigInt(ptr));
    } finally {
      fs.read = original;
    }
    const hit = seen.find((r) => r.offset === ptr && r.length === probeBytes && r.position !== undefined);
    if (!hit || !hit.path || resolve(hit.path) !== resolve(info.file.filename)) return null;
    const offset = hit.position!;
    if (offset + rows * rowBytes > statSync(info.file.filename).size) return null;
    const fromFile = Buffer.alloc(probeBytes);
    const fd = openSync(info.file.filename, "r");
    try {
      if (readSync(fd, fromFile, 0, probeBytes, offset) !== probeBytes) return null;
    } finally {
      closeSync(fd);
    }
    const fromLibrary = lib.module.HEAPU8.subarray(ptr, ptr + probeBytes);
    return Buffer.compare(fromFile, fromLibrary) === 0 ? { offset, rowBytes, rows } : null;
  } catch {
    return null; // libhdf5's own read path will report the problem properly
  } finally {
    heap.release();
  }
}
