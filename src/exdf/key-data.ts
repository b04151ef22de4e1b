/**
 * One key of one source across all files and sequences of a run: which rows belong to which train, and reading them
 * whole, in bounded slices, or one value per train aligned to the run's train IDs.
 */
import { DamnitError } from "../core/errors.js";
import { DTYPES, ndarray, type DType, type TypedArray, sizeOf } from "../core/ndarray.js";
import type { LabelledArray } from "../core/variable-output.js";
import {
  type DatasetInfo,
  type ElementType,
  type EntryRoi,
  type H5Lib,
  HeapBuffer,
  checkFilters,
  readAttributes,
  readRowValues,
  readRowsToHeap,
} from "../h5/file.js";
import { readChunkedRows } from "./chunked-read.js";
import { releaseScratch, takeScratch } from "./scratch-pool.js";
import type { RunFile } from "./run-file.js";
import { timedRead } from "./read-clock.js";

/** Contiguous rows of one file that hold consecutive selected entries of a key. */
interface Segment {
  readonly file: RunFile;
  readonly info: DatasetInfo;
  readonly rowStart: number;
  readonly rows: number;
  /** Position of the segment's first entry in the key's entry list. */
  readonly entryStart: number;
}

interface Plan {
  /** Selected trains the source's files cover, sorted. */
  readonly trainIds: readonly number[];
  /** Entries per train, aligned with `trainIds`. */
  readonly counts: Uint32Array;
  /** The train of each entry, in order. */
  readonly entryTrainIds: Float64Array;
  readonly segments: readonly Segment[];
}

/** Every entry of a numeric key with the train each belongs to. */
export interface KeyArray {
  readonly dtype: DType;
  /** [entries, ...entry shape] */
  readonly shape: readonly number[];
  readonly data: TypedArray;
  readonly entryTrainIds: Float64Array;
  readonly trainIds: readonly number[];
  readonly counts: Uint32Array;
  /** EXtra-data's DataArray name for the key (see xarrayName) */
  readonly name: string;
}

/** A bounded piece of a key: consecutive entries starting at `firstEntry`. */
export interface KeySlice {
  readonly firstEntry: number;
  readonly shape: readonly number[];
  readonly data: TypedArray;
  readonly entryTrainIds: Float64Array;
}

/** One value per train for the given train IDs; `present[i]` is 0 where train i has no entry. */
export interface PerTrain {
  readonly dtype: DType;
  /** [trains, ...entry shape] */
  readonly shape: readonly number[];
  readonly data: TypedArray;
  readonly trainIds: readonly number[];
  readonly present: Uint8Array;
  /** EXtra-data's DataArray name for the key (see xarrayName) */
  readonly name: string;
}

/** EXtra-data's name for a key's DataArray, which DAMNIT stores it under: `<source>.<key>`, without `.value`. */
export function xarrayName(source: string, key: string): string {
  const name = `${source}.${key}`;
  return name.endsWith(".value") ? name.slice(0, -".value".length) : name;
}

export type MissingTrains = "nan" | "mask";

/** Reads larger than this go through the reader's memory in pieces, so its 2 GiB heap is never the limit. */
export const DEFAULT_READ_BYTES = 64 * 1024 * 1024;
/** Default slice size: small enough to stay in the CPU cache while a reduction runs over it (fastest measured). */
export const DEFAULT_SLICE_BYTES = 4 * 1024 * 1024;

export class KeyData {
  private planCache: Plan | undefined;
  readonly info: DatasetInfo;

  constructor(
    private readonly lib: H5Lib,
    readonly source: string,
    readonly key: string,
    /** Index group: "" for control keys, the first key component for instrument keys. */
    readonly group: string,
    private readonly datasetPath: string,
    private readonly files: readonly RunFile[],
    private readonly selectedTrainIds: readonly number[],
  ) {
    const first = files.map((f) => f.dataset(datasetPath)).find((i) => i !== null);
    if (!first) throw new DamnitError("UNKNOWN_KEY", `${source} has no key ${key} in any file`);
    this.info = first;
  }

  get type(): ElementType {
    return this.info.type;
  }

  /** Shape of one entry (after the train/entry dimension). */
  get entryShape(): readonly number[] {
    return this.info.shape.slice(1);
  }

  get trainIds(): readonly number[] {
    return this.plan().trainIds;
  }

  get entryCount(): number {
    return this.plan().entryTrainIds.length;
  }

  get shape(): readonly number[] {
    return [this.entryCount, ...this.entryShape];
  }

  /** Bytes the whole key takes in memory (numbers only). */
  get nbytes(): number {
    return this.entryCount * sizeOf(this.entryShape) * this.info.itemSize;
  }

  /** Entries per selected train, aligned with `trainIds`. */
  dataCounts(): Uint32Array {
    return this.plan().counts;
  }

  entryTrainIds(): Float64Array {
    return this.plan().entryTrainIds;
  }

  /** Karabo attributes (units, description, …): the parent group's win over the dataset's, as in EXtra-data. */
  attributes(): Record<string, unknown> {
    const file = this.info.file;
    const own = readAttributes(this.lib, file, this.datasetPath);
    if (this.group !== "") return own;
    const parent = this.datasetPath.slice(0, this.datasetPath.lastIndexOf("/"));
    return { ...own, ...readAttributes(this.lib, file, parent) };
  }

  /** Units from Karabo's unitSymbol and metricPrefixSymbol, e.g. "mm"; undefined when none is recorded. */
  units(): string | undefined {
    const attrs = this.attributes();
    const symbol = typeof attrs.unitSymbol === "string" ? attrs.unitSymbol : "";
    if (!symbol || symbol === "N_A") return undefined;
    const prefix = typeof attrs.metricPrefixSymbol === "string" ? attrs.metricPrefixSymbol : "";
    return `${prefix}${symbol}`;
  }

  /** All selected entries of a numeric key, read in pieces of at most `maxReadBytes`. */
  ndarray(opts: { roi?: EntryRoi; maxReadBytes?: number } = {}): KeyArray {
    const dtype = this.numericType();
    const plan = this.plan();
    const entryShape = this.roiShape(opts.roi);
    const entryBytes = sizeOf(entryShape) * this.info.itemSize;
    const total = plan.entryTrainIds.length;
    const data = makeTyped(dtype, total * sizeOf(entryShape));
    const out = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    const heap = new HeapBuffer(this.lib.module);
    try {
      for (const piece of this.pieces(plan, entryBytes, opts.maxReadBytes ?? DEFAULT_READ_BYTES)) {
        const target = out.subarray(piece.entryStart * entryBytes, (piece.entryStart + piece.rows) * entryBytes);
        timedRead(() => {
          if (!this.readDirect(piece, opts.roi, target, heap)) {
            target.set(readRowsToHeap(this.lib, piece.info, piece.rowStart, piece.rows, opts.roi, heap));
          }
        });
      }
    } finally {
      heap.release();
    }
    return { dtype, shape: [total, ...entryShape], data, entryTrainIds: plan.entryTrainIds, trainIds: plan.trainIds, counts: plan.counts, name: xarrayName(this.source, this.key) };
  }

  /**
   * The selected entries in pieces of at most `maxBytes`, so memory stays flat however large the key is.
   * With `borrow`, each piece is a view into the reader's memory, valid only until the next piece is requested:
   * no copy is made, so reductions (sums, means) run at the speed of the read itself.
   */
  *slices(opts: { maxBytes?: number; roi?: EntryRoi; borrow?: boolean } = {}): Generator<KeySlice> {
    const dtype = this.numericType();
    const plan = this.plan();
    const entryShape = this.roiShape(opts.roi);
    const entryBytes = sizeOf(entryShape) * this.info.itemSize;
    const maxBytes = opts.maxBytes ?? DEFAULT_SLICE_BYTES;
    const heap = new HeapBuffer(this.lib.module);
    // Directly read pieces land here when borrowed: one buffer for the whole iteration, reused by later iterations.
    let scratch: Uint8Array | undefined;
    try {
      for (const piece of this.pieces(plan, entryBytes, maxBytes)) {
        const size = piece.rows * entryBytes;
        let bytes: Uint8Array;
        if (this.canReadDirect(piece, opts.roi)) {
          if (opts.borrow) {
            scratch ??= takeScratch(Math.min(Math.max(1, Math.floor(maxBytes / entryBytes)), plan.entryTrainIds.length) * entryBytes);
            bytes = scratch.subarray(0, size);
          } else {
            bytes = new Uint8Array(size);
          }
          timedRead(() => this.readDirect(piece, opts.roi, bytes, heap));
        } else {
          const fromHeap = timedRead(() => readRowsToHeap(this.lib, piece.info, piece.rowStart, piece.rows, opts.roi, heap));
          bytes = opts.borrow ? fromHeap : fromHeap.slice();
        }
        yield {
          firstEntry: piece.entryStart,
          shape: [piece.rows, ...entryShape],
          data: DTYPES[dtype].make(bytes.buffer as ArrayBuffer, bytes.byteOffset, piece.rows * sizeOf(entryShape)),
          entryTrainIds: plan.entryTrainIds.subarray(piece.entryStart, piece.entryStart + piece.rows),
        };
      }
    } finally {
      heap.release();
      if (scratch) releaseScratch(scratch);
    }
  }

  /** Whole rows of uncompressed contiguous, or chunked (uncompressed, deflate, shuffle) data can be read directly. */
  private canReadDirect(piece: Segment, roi: EntryRoi | undefined): boolean {
    if (roi) return false;
    return piece.info.chunked ? piece.file.chunkedLayout(piece.info) !== null : piece.file.directLayout(piece.info) !== null;
  }

  /** Read whole rows straight from the file, without libhdf5 (but for missing chunks); false when that isn't possible. */
  private readDirect(piece: Segment, roi: EntryRoi | undefined, target: Uint8Array, heap: HeapBuffer): boolean {
    if (roi) return false;
    if (piece.info.chunked) {
      const layout = piece.file.chunkedLayout(piece.info);
      if (!layout) return false;
      const fallback = (rowStart: number, rows: number, into: Uint8Array) => into.set(readRowsToHeap(this.lib, piece.info, rowStart, rows, undefined, heap));
      piece.file.withReader((read) => readChunkedRows(layout, read, piece.rowStart, piece.rows, target, fallback));
      return true;
    }
    const layout = piece.file.directLayout(piece.info);
    if (!layout) return false;
    piece.file.readAt(layout.offset + piece.rowStart * layout.rowBytes, target);
    return true;
  }

  /**
   * Every selected entry as a labelled array, as EXtra-data's `KeyData.xarray()` gives it: dimensions `trainId`
   * (one per entry), then `dim_0`, `dim_1`, … (or `extraDims`); the train ID of each entry as the `trainId`
   * coordinate (uint64); named `<source>.<key>` (a control key without its `.value`), or `name`.
   */
  xarray(opts: { roi?: EntryRoi; extraDims?: readonly string[]; name?: string } = {}): LabelledArray {
    const array = this.ndarray({ roi: opts.roi });
    const extra = opts.extraDims ?? array.shape.slice(1).map((_, i) => `dim_${i}`);
    if (extra.length !== array.shape.length - 1) {
      throw new DamnitError("BAD_ARGUMENT", `${this.source} ${this.key} entries have ${array.shape.length - 1} dimensions, ${extra.length} names were given`);
    }
    let name = opts.name ?? `${this.source}.${this.key}`;
    if (opts.name === undefined && this.group === "" && name.endsWith(".value")) name = name.slice(0, -".value".length);
    const trainId = ndarray("uint64", [array.entryTrainIds.length], BigUint64Array.from(array.entryTrainIds, (t) => BigInt(t)));
    return {
      kind: "labelled",
      data: ndarray(array.dtype, array.shape, array.data),
      dims: ["trainId", ...extra],
      coords: array.entryTrainIds.length > 0 ? { trainId } : {},
      name,
    };
  }

  /** Every selected entry as a JS value: strings, records (objects), or numbers for numeric scalars. */
  values(): unknown[] {
    const plan = this.plan();
    if (this.type !== "string" && this.type !== "compound") {
      if (this.entryShape.length > 0) throw new DamnitError("BAD_ARGUMENT", `${this.source} ${this.key} holds arrays; read it with ndarray()`);
      const array = this.ndarray();
      return Array.from(array.data as ArrayLike<number | bigint>, (v) => v);
    }
    const out: unknown[] = [];
    for (const segment of plan.segments) {
      for (const v of timedRead(() => readRowValues(this.lib, segment.info, segment.rowStart, segment.rows))) out.push(v);
    }
    return out;
  }

  /**
   * One entry per train for `trainIds` (default: the selected trains), for keys with at most one entry per train.
   * Missing trains are NaN (`missing: "nan"`, integers become float64) or zero with `present` 0 (`"mask"`).
   */
  perTrain(opts: { trainIds?: readonly number[]; missing?: MissingTrains } = {}): PerTrain {
    const plan = this.plan();
    const most = plan.counts.reduce((a, b) => Math.max(a, b), 0);
    if (most > 1) {
      throw new DamnitError(
        "UNSUPPORTED_DATA",
        `${this.source} ${this.key} has up to ${most} entries per train; read all entries with their counts, or reduce them per train first`,
      );
    }
    const trainIds = opts.trainIds ?? this.selectedTrainIds;
    const array = this.ndarray();
    const entrySize = sizeOf(array.shape.slice(1));
    const missing = opts.missing ?? "nan";
    const dtype: DType = missing === "nan" && !array.dtype.startsWith("float") ? "float64" : array.dtype;
    if (dtype !== array.dtype && (array.data instanceof BigInt64Array || array.data instanceof BigUint64Array)) {
      assertSafeIntegers(array.data, `${this.source} ${this.key}`);
    }
    const data = makeTyped(dtype, trainIds.length * entrySize);
    if (missing === "nan") (data as Float32Array | Float64Array).fill(Number.NaN);
    const present = new Uint8Array(trainIds.length);
    const position = new Map<number, number>();
    trainIds.forEach((t, i) => position.set(t, i));
    const convert = dtype !== array.dtype;
    for (let e = 0; e < array.entryTrainIds.length; e++) {
      const i = position.get(array.entryTrainIds[e]!);
      if (i === undefined) continue;
      present[i] = 1;
      if (!convert) {
        (data as Uint8Array).set((array.data as Uint8Array).subarray(e * entrySize, (e + 1) * entrySize), i * entrySize);
      } else {
        for (let k = 0; k < entrySize; k++) (data as Float64Array)[i * entrySize + k] = Number(array.data[e * entrySize + k]!);
      }
    }
    return { dtype, shape: [trainIds.length, ...array.shape.slice(1)], data, trainIds, present, name: array.name };
  }

  private numericType(): DType {
    const type = this.type;
    if (type === "string" || type === "compound") {
      throw new DamnitError("BAD_ARGUMENT", `${this.source} ${this.key} holds ${type === "string" ? "strings" : "records"}; read it with values()`);
    }
    for (const segment of this.plan().segments) checkFilters(segment.info);
    return type;
  }

  private roiShape(roi: EntryRoi | undefined): number[] {
    const dims = this.entryShape;
    if (!roi) return [...dims];
    if (roi.length > dims.length) {
      throw new DamnitError("BAD_ARGUMENT", `ROI has ${roi.length} dimensions, but ${this.source} ${this.key} entries have ${dims.length}`);
    }
    return dims.map((d, i) => {
      const r = roi[i];
      if (!r) return d;
      if (!(Number.isInteger(r[0]) && Number.isInteger(r[1]) && r[0] >= 0 && r[1] <= d && r[0] < r[1])) {
        throw new DamnitError("BAD_ARGUMENT", `ROI ${r[0]}:${r[1]} is outside dimension ${i + 1} of ${this.source} ${this.key} (size ${d})`);
      }
      return r[1] - r[0];
    });
  }

  /** Segments cut so that no single read exceeds `maxBytes` (at least one entry per read). */
  private *pieces(plan: Plan, entryBytes: number, maxBytes: number): Generator<Segment> {
    const maxRows = Math.max(1, Math.floor(maxBytes / Math.max(1, entryBytes)));
    for (const s of plan.segments) {
      for (let done = 0; done < s.rows; done += maxRows) {
        const rows = Math.min(maxRows, s.rows - done);
        yield { ...s, rowStart: s.rowStart + done, rows, entryStart: s.entryStart + done };
      }
    }
  }

  private plan(): Plan {
    this.planCache ??= this.makePlan();
    return this.planCache;
  }

  private makePlan(): Plan {
    const selected = new Set(this.selectedTrainIds);
    const perTrain = new Map<number, number>();
    const fileOfTrain = new Map<number, RunFile>();
    const pieces: Array<{ file: RunFile; info: DatasetInfo; rowStart: number; rows: number; firstTrain: number; trains: Array<[number, number]> }> = [];
    const entryShape = this.entryShape.join(",");
    for (const file of this.files) {
      const info = file.dataset(this.datasetPath);
      const index = file.index(this.source, this.group);
      if (!info) {
        // Listed in this file without the dataset: acceptable only if the file holds no entries for it.
        if (index.count.some((c, j) => c > 0 && selected.has(file.trainIds[j]!))) {
          throw new DamnitError("BAD_RUN_FILE", `${file.path}: ${this.source} has entries but no dataset for ${this.key}`);
        }
      } else if (info.type !== this.info.type || info.shape.slice(1).join(",") !== entryShape) {
        throw new DamnitError(
          "BAD_RUN_FILE",
          `${this.source} ${this.key} changes shape or type between files: (${entryShape}) ${this.info.type} in ${this.info.file.filename}, (${info.shape.slice(1).join(",")}) ${info.type} in ${file.path}`,
        );
      }
      let current: (typeof pieces)[number] | undefined;
      let rowsEnd = 0;
      for (let j = 0; j < file.trainIds.length; j++) {
        const tid = file.trainIds[j]!;
        const count = index.count[j]!;
        const first = index.first[j]!;
        if (count > 0) {
          // Trains' rows follow each other; overlapping rows would hand the same data to two trains.
          if (first < rowsEnd) {
            throw new DamnitError("BAD_RUN_FILE", `${file.path}: the index of ${this.source} gives train ${tid} rows ${first}–${first + count - 1}, which overlap or come before the previous train's rows`);
          }
          rowsEnd = first + count;
        }
        if (!selected.has(tid)) continue;
        const seenIn = fileOfTrain.get(tid);
        if (seenIn) {
          const where = seenIn === file ? `twice in ${file.name}` : `in both ${seenIn.name} and ${file.name}`;
          throw new DamnitError("BAD_RUN_FILE", `train ${tid} of ${this.source} is ${where}; the run is inconsistent`);
        }
        fileOfTrain.set(tid, file);
        perTrain.set(tid, count);
        if (count === 0) continue;
        if (!info) continue;
        if (first + count > info.shape[0]!) {
          throw new DamnitError(
            "BAD_RUN_FILE",
            `${file.path}: the index of ${this.source} points at rows ${first}–${first + count - 1} of ${this.key}, which has ${info.shape[0]} rows (file truncated or index corrupt)`,
          );
        }
        if (current && current.rowStart + current.rows === first) {
          current.rows += count;
          current.trains.push([tid, count]);
        } else {
          current = { file, info, rowStart: first, rows: count, firstTrain: tid, trains: [[tid, count]] };
          pieces.push(current);
        }
      }
    }
    pieces.sort((a, b) => a.firstTrain - b.firstTrain);
    const trainIds = [...perTrain.keys()].sort((a, b) => a - b);
    const counts = Uint32Array.from(trainIds, (t) => perTrain.get(t)!);
    const total = pieces.reduce((n, p) => n + p.rows, 0);
    const entryTrainIds = new Float64Array(total);
    const segments: Segment[] = [];
    let entry = 0;
    for (const p of pieces) {
      segments.push({ file: p.file, info: p.info, rowStart: p.rowStart, rows: p.rows, entryStart: entry });
      for (const [tid, count] of p.trains) {
        entryTrainIds.fill(tid, entry, entry + count);
        entry += count;
      }
    }
    // Pieces from different files interleave only if trains do, which the duplicate check above rules out.
    for (let i = 1; i < entryTrainIds.length; i++) {
      if (entryTrainIds[i]! < entryTrainIds[i - 1]!) {
        throw new DamnitError("BAD_RUN_FILE", `${this.source} ${this.key}: entries are not in train order across files; the run is inconsistent`);
      }
    }
    return { trainIds, counts, entryTrainIds, segments };
  }
}

export function makeTyped(dtype: DType, length: number): TypedArray {
  const info = DTYPES[dtype];
  return info.make(new ArrayBuffer(length * info.itemSize), 0, length * info.lanes);
}

function assertSafeIntegers(data: BigInt64Array | BigUint64Array, what: string): void {
  for (const v of data) {
    if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < -BigInt(Number.MAX_SAFE_INTEGER)) {
      throw new DamnitError("UNSUPPORTED_DATA", `${what} holds 64-bit integers beyond 2^53; NaN for missing trains would change them, use missing: "mask"`);
    }
  }
}
