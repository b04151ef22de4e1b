/**
 * Writes a synthetic European XFEL run (EXDF HDF5 files, raw and proc) whose every value comes from `layout.ts`.
 * Big arrays are filled from per-pixel patterns computed once, and each frame is checked against the layout
 * functions at a few pixels, so the fast loops cannot drift from the contract. Files are written with the HDF5
 * layer's H5Writer in HDF5 1.8's file format; big chunked datasets are filled in slices of rows.
 */
import { existsSync, mkdirSync, renameSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { DamnitError } from "../core/errors.js";
import { type H5Lib, loadH5 } from "../h5/file.js";
import { elementTypeFor } from "../h5/values.js";
import { H5Writer } from "../h5/writer.js";
import { type DtypeArrays, newArray, paddedArray, paddedLength, product, type SynthArray, type SynthDtype } from "./arrays.js";
import { proposalDirectory, runDirectory as runDirectoryIn } from "../exdf/open-run.js";
import {
  CAMERA,
  cameraHasTrain,
  cameraPixel,
  correctedGain,
  correctedMask,
  correctedPixel,
  correctedSource,
  da01SplitPosition,
  detectorCellId,
  detectorFrames,
  detectorPixel,
  detectorPulseId,
  detectorSource,
  EMPTY_CAMERA,
  firstTrainId,
  LATE_DEVICE,
  moduleTrainRange,
  MOTOR,
  MOTOR_CLASS_ID,
  motorPosition,
  motorRoi,
  SYNTH_CYCLE,
  SYNTH_FORMATS,
  SYNTH_INSTRUMENT,
  SYNTH_PRESETS,
  SYNTH_SIZES,
  type SynthFormat,
  type SynthPreset,
  type SynthSize,
  trainTimestampNs,
  UNDULATOR,
  UNDULATOR_ENERGY_KEV,
  XGM_CONTROL,
  XGM_OUTPUT,
  XGM_VECTOR_LENGTH,
  XGM_WAVELENGTH_NM,
  xgmIntensity,
  xgmPhotonFlux,
  xgmState,
} from "./layout.js";

export interface SynthRunOptions {
  root: string;
  proposal: number;
  run: number;
  /** Default "small". */
  size?: SynthSize;
  /** Default "1.2". */
  format?: SynthFormat;
  /** Write the proc/ variant (CORR files), default true. */
  proc?: boolean;
  /** Raw detector modules use the old INDEX first/last/status instead of first/count. */
  legacyIndex?: boolean;
  /** LATE_DEVICE appears in DA01-S00001 only. */
  partialSource?: boolean;
  /** Default SYNTH_INSTRUMENT. */
  instrument?: string;
  /** Default SYNTH_CYCLE. */
  cycle?: string;
  /** Replace existing run directories instead of refusing. */
  overwrite?: boolean;
  /** Progress hook, called after each file is written with its final path (it is renamed into place at the end). */
  onFile?: (path: string) => void;
}

export interface SynthRunResult {
  rawDir: string;
  procDir: string | null;
  /** Final paths of the files written, in the order they were written. */
  files: string[];
  bytes: number;
}

const pad = (n: number, width: number): string => String(n).padStart(width, "0");

/** `<root>/<INSTR>/<cycle>/p<6-digit proposal>/<kind>/r<4-digit run>`: the reader's layout, so it finds what we write. */
export function runDirectory(root: string, instrument: string, cycle: string, proposal: number, run: number, kind: "raw" | "proc"): string {
  return runDirectoryIn(proposalDirectory(root, instrument, cycle, proposal), kind, run);
}

const fileName = (category: "RAW" | "CORR", run: number, aggregator: string, seq: number): string =>
  `${category}-R${pad(run, 4)}-${aggregator}-S${pad(seq, 5)}.h5`;
const moduleAggregator = (module: number): string => `AGIPD${pad(module, 2)}`;

/** The file names of a run, per directory, in the order written below. */
export function synthRunFileNames(run: number, size: SynthSize = "small", proc = true): { raw: string[]; proc: string[] } {
  const preset = SYNTH_PRESETS[size];
  const raw = [fileName("RAW", run, "DA01", 0), fileName("RAW", run, "DA01", 1), fileName("RAW", run, "DA02", 0)];
  const corr: string[] = [];
  for (let m = 0; m < preset.modules; m++) {
    for (const seq of [0, 1]) {
      raw.push(fileName("RAW", run, moduleAggregator(m), seq));
      if (proc) corr.push(fileName("CORR", run, moduleAggregator(m), seq));
    }
  }
  return { raw, proc: corr };
}

// ---- one sequence file ----

interface RunContext {
  lib: H5Lib;
  preset: SynthPreset;
  proposal: number;
  run: number;
  format: SynthFormat;
  version: number;
  legacyIndex: boolean;
  /** Files not closed yet, abandoned if writing fails. */
  open: Set<H5Writer>;
}

interface ControlKey {
  /** Property path below the device, e.g. "pulseEnergy/photonFlux". */
  path: string;
  dtype: "int32" | "float32" | "float64" | "string";
  entryShape?: readonly number[];
  /** The value for a train: a number, a flattened entry, or a string. */
  value: (tid: number) => number | readonly number[] | string;
  /** Karabo attributes, stored on the property's group. */
  attrs?: Record<string, string>;
}

/** Frames are written in slices of about this many bytes, so no big dataset needs to exist in one piece. */
const SLICE_BYTES = 4 << 20;

class SequenceFile {
  readonly w: H5Writer;
  /** dataSourceId entries, in order. */
  readonly sources: string[] = [];
  readonly tids: number[] = [];
  readonly timestamps: bigint[] = [];

  constructor(
    readonly ctx: RunContext,
    readonly path: string,
    readonly seq: number,
    /** Train positions [start, end) of the run that this file holds. */
    readonly start: number,
    readonly end: number,
  ) {
    for (let i = start; i < end; i++) {
      this.tids.push(firstTrainId(ctx.run) + i);
      this.timestamps.push(trainTimestampNs(ctx.run, i));
    }
    // HDF5 1.8's format: its compact object headers make the many small datasets and groups take half the space.
    this.w = new H5Writer(ctx.lib, path, { lowBound: "v108" });
    ctx.open.add(this.w);
    for (const group of ["METADATA", "INDEX", "CONTROL", "RUN", "INSTRUMENT"]) this.w.createGroup(group);
    this.writeBaseIndex();
  }

  /** A contiguous dataset (groups above it created); `data` holds exactly product(shape) elements. */
  array(path: string, dtype: SynthDtype, shape: readonly number[], data: SynthArray): void {
    this.w.requireParent(path);
    this.w.writeDataset(path, elementTypeFor(dtype), shape, data);
  }

  /** An array made by paddedArray, as a contiguous dataset of shape (padded rows, ...entryShape). */
  padded(path: string, dtype: SynthDtype, data: SynthArray, entryShape: readonly number[] = []): void {
    this.array(path, dtype, [data.length / Math.max(1, product(entryShape)), ...entryShape], data);
  }

  /** A 1-D variable-length UTF-8 string dataset. */
  strings(path: string, values: readonly string[]): void {
    this.w.requireParent(path);
    this.w.writeStringDataset(path, values, [values.length]);
  }

  /**
   * A gzip-compressed dataset of `rows` entries of `entryShape` in chunks of one entry, its first axis unlimited;
   * fill(buffer, firstRow, n) computes slices of the first `filledRows` rows (the rest stay 0 and take no space), so it
   * never has to exist in one piece.
   */
  chunked<D extends SynthDtype>(
    path: string,
    dtype: D,
    rows: number,
    entryShape: readonly number[],
    filledRows: number,
    fill: (buffer: DtypeArrays[D], firstRow: number, rows: number) => void,
  ): void {
    this.w.requireParent(path);
    this.w.createEmptyDataset(path, elementTypeFor(dtype), [rows, ...entryShape], { chunks: [1, ...entryShape], deflate: 1 });
    const entrySize = product(entryShape);
    const sliceRows = Math.max(1, Math.floor(SLICE_BYTES / (entrySize * newArray(dtype, 0).BYTES_PER_ELEMENT)));
    let buffer = newArray(dtype, Math.min(filledRows, sliceRows) * entrySize);
    for (let row = 0; row < filledRows; row += sliceRows) {
      const n = Math.min(sliceRows, filledRows - row);
      if (n * entrySize !== buffer.length) buffer = newArray(dtype, n * entrySize);
      fill(buffer, row, n);
      this.w.writeRows(path, row, [n, ...entryShape], buffer);
    }
  }

  /** Variable-length UTF-8 string attributes on a group or dataset. */
  stringAttributes(path: string, attrs: Readonly<Record<string, string>>): void {
    for (const [name, value] of Object.entries(attrs)) this.w.writeStringAttribute(path, name, value);
  }

  get trains(): number {
    return this.tids.length;
  }

  private writeBaseIndex(): void {
    const n = this.trains;
    const trainId = paddedArray("uint64", n);
    for (let i = 0; i < n; i++) trainId[i] = BigInt(this.tids[i]!);
    this.padded("INDEX/trainId", "uint64", trainId);
    if (this.ctx.version < 1.0) return;
    const timestamp = paddedArray("uint64", n);
    timestamp.set(this.timestamps);
    this.padded("INDEX/timestamp", "uint64", timestamp);
    // Format 1.1 turned the flag into an index where 0 (the time server) means a good train; 1.2 restored 1 = good.
    const flag = paddedArray("int32", n);
    flag.fill(this.ctx.format === "1.1" ? 0 : 1, 0, n);
    this.padded("INDEX/flag", "int32", flag);
    if (this.ctx.version < 1.2) return;
    const origin = paddedArray("int32", n);
    origin.fill(-1, 0, n);
    this.padded("INDEX/origin", "int32", origin);
  }

  /**
   * INDEX/<path>/{first,count} (or the old first/last/status) for per-train entry counts, padded like
   * INDEX/trainId with zeros.
   */
  writeIndex(path: string, counts: readonly number[], legacy = false): void {
    const n = this.trains;
    // One row per train, unpadded (only INDEX/trainId is padded): EXtra-data's validator checks these lengths.
    const first = new BigUint64Array(n);
    const count = new BigUint64Array(n);
    let offset = 0;
    for (let i = 0; i < n; i++) {
      first[i] = BigInt(offset);
      count[i] = BigInt(counts[i]!);
      offset += counts[i]!;
    }
    this.array(`${path}/first`, "uint64", [n], first);
    if (!legacy) {
      this.array(`${path}/count`, "uint64", [n], count);
      return;
    }
    // Readers take count = status ? last - first + 1 : 0; an empty train's `last` is first - 1, kept >= 0 for uint64.
    const last = new BigUint64Array(n);
    const status = new BigUint64Array(n);
    for (let i = 0; i < n; i++) {
      const c = counts[i]!;
      last[i] = c > 0 ? first[i]! + BigInt(c - 1) : first[i]! > 0n ? first[i]! - 1n : 0n;
      status[i] = c > 0 ? 1n : 0n;
    }
    this.array(`${path}/last`, "uint64", [n], last);
    this.array(`${path}/status`, "uint64", [n], status);
  }

  /** A control device: INDEX, CONTROL (one row per train), RUN (the run's first train) and RUN-only strings. */
  control(device: string, keys: readonly ControlKey[], runOnly: Readonly<Record<string, string>> = {}): void {
    this.sources.push(`CONTROL/${device}`);
    this.writeIndex(`INDEX/${device}`, this.tids.map(() => 1));
    const timestamps = BigUint64Array.from(this.timestamps);
    const runTid = firstTrainId(this.ctx.run);
    const runTimestamp = BigUint64Array.of(trainTimestampNs(this.ctx.run, 0));
    for (const key of keys) {
      const base = `CONTROL/${device}/${key.path}`;
      this.writeValues(`${base}/value`, key, this.tids);
      this.array(`${base}/timestamp`, "uint64", [timestamps.length], timestamps);
      if (key.attrs) this.stringAttributes(base, key.attrs);
      this.writeValues(`RUN/${device}/${key.path}/value`, key, [runTid]);
      this.array(`RUN/${device}/${key.path}/timestamp`, "uint64", [1], runTimestamp);
    }
    for (const [name, value] of Object.entries(runOnly)) {
      this.strings(`RUN/${device}/${name}/value`, [value]);
      this.array(`RUN/${device}/${name}/timestamp`, "uint64", [1], runTimestamp);
    }
  }

  private writeValues(path: string, key: ControlKey, tids: readonly number[]): void {
    if (key.dtype === "string") {
      this.strings(path, tids.map((tid) => key.value(tid) as string));
      return;
    }
    const entryShape = key.entryShape ?? [];
    const entrySize = entryShape.reduce((a, b) => a * b, 1);
    const data: Int32Array | Float32Array | Float64Array = newArray(key.dtype, tids.length * entrySize);
    tids.forEach((tid, row) => {
      const value = key.value(tid);
      data.set(typeof value === "number" ? [value] : (value as readonly number[]), row * entrySize);
    });
    this.array(path, key.dtype, [tids.length, ...entryShape], data);
  }

  /** Lists an instrument source's index group and writes its INDEX entries. */
  instrumentIndex(source: string, group: string, counts: readonly number[], legacy = false): void {
    this.sources.push(`INSTRUMENT/${source}/${group}`);
    this.writeIndex(`INDEX/${source}/${group}`, counts, legacy);
  }

  /** Writes METADATA and closes the file. */
  close(): void {
    const { format, version, proposal, run } = this.ctx;
    // Padded with empty strings like the DAQ's lists, which readers must skip.
    const ids = [...this.sources];
    while (ids.length < paddedLength(this.sources.length + 1, 16)) ids.push("");
    const roots = ids.map((id) => (id ? id.slice(0, id.indexOf("/")) : ""));
    const deviceIds = ids.map((id) => (id ? id.slice(id.indexOf("/") + 1) : ""));
    const listGroup = version < 1.0 ? "METADATA" : "METADATA/dataSources";
    this.strings(`${listGroup}/dataSourceId`, ids);
    this.strings(`${listGroup}/root`, roots);
    this.strings(`${listGroup}/deviceId`, deviceIds);
    if (version >= 1.0) {
      const date = exdfDate(trainTimestampNs(run, 0));
      this.strings("METADATA/dataFormatVersion", [format]);
      this.strings("METADATA/creationDate", [date]);
      this.strings("METADATA/updateDate", [date]);
      this.strings("METADATA/daqLibrary", ["1.9.0"]);
      this.strings("METADATA/karaboFramework", ["2.19.0"]);
      this.array("METADATA/proposalNumber", "uint32", [1], Uint32Array.of(proposal));
      this.array("METADATA/runNumber", "uint32", [1], Uint32Array.of(run));
      this.array("METADATA/sequenceNumber", "uint32", [1], Uint32Array.of(this.seq));
    }
    this.w.close();
    this.ctx.open.delete(this.w);
  }
}

/** "YYYYmmddTHHMMSSZ" (UTC) of a timestamp in ns. */
function exdfDate(ns: bigint): string {
  return `${new Date(Number(ns / 1_000_000n)).toISOString().slice(0, 19).replace(/[-:]/g, "")}Z`;
}

/** The fast fills are checked against layout.ts at sample pixels; a mismatch is our bug, not the user's. */
function expectLayout(actual: number, expected: number, what: string): void {
  if (actual !== expected) throw new Error(`synth: ${what} is ${actual} but layout.ts says ${expected}`);
}

// ---- the aggregators ----

function writeDa01(ctx: RunContext, path: string, seq: 0 | 1, partialSource: boolean): void {
  const split = da01SplitPosition(ctx.preset);
  const file = seq === 0 ? new SequenceFile(ctx, path, 0, 0, split) : new SequenceFile(ctx, path, 1, split, ctx.preset.trains);
  const run = ctx.run;
  file.control(XGM_CONTROL, [
    { path: "pulseEnergy/photonFlux", dtype: "float32", value: xgmPhotonFlux, attrs: { unitSymbol: "J", metricPrefixSymbol: "u" } },
    { path: "pulseEnergy/wavelengthUsed", dtype: "float64", value: () => XGM_WAVELENGTH_NM },
    { path: "state", dtype: "string", value: xgmState },
  ]);
  file.control(
    MOTOR,
    [
      {
        path: "actualPosition",
        dtype: "float32",
        value: (tid) => motorPosition(tid, run),
        attrs: { unitSymbol: "m", metricPrefixSymbol: "m", description: "Sample X position", alias: "sample_x" },
      },
      { path: "roi", dtype: "int32", entryShape: [2, 3], value: (tid) => [0, 1].flatMap((r) => [0, 1, 2].map((c) => motorRoi(tid, r, c))) },
    ],
    { classId: MOTOR_CLASS_ID },
  );
  file.control(UNDULATOR, [{ path: "actualEnergy", dtype: "float64", value: () => UNDULATOR_ENERGY_KEV }]);
  if (partialSource && seq === 1) {
    file.control(LATE_DEVICE, [{ path: "actualPosition", dtype: "float32", value: (tid) => motorPosition(tid, run) + 100 }]);
  }

  const n = file.trains;
  file.instrumentIndex(XGM_OUTPUT, "data", file.tids.map(() => 1));
  const intensity = paddedArray("float32", n, [XGM_VECTOR_LENGTH]);
  const trainId = paddedArray("uint64", n);
  file.tids.forEach((tid, row) => {
    for (let p = 0; p < XGM_VECTOR_LENGTH; p++) intensity[row * XGM_VECTOR_LENGTH + p] = xgmIntensity(tid, p);
    trainId[row] = BigInt(tid);
  });
  file.padded(`INSTRUMENT/${XGM_OUTPUT}/data/intensityTD`, "float32", intensity, [XGM_VECTOR_LENGTH]);
  file.stringAttributes(`INSTRUMENT/${XGM_OUTPUT}/data/intensityTD`, { unitSymbol: "J", metricPrefixSymbol: "u" });
  file.padded(`INSTRUMENT/${XGM_OUTPUT}/data/trainId`, "uint64", trainId);
  file.close();
}

function writeDa02(ctx: RunContext, path: string): void {
  const file = new SequenceFile(ctx, path, 0, 0, ctx.preset.trains);
  const [height, width] = ctx.preset.cameraShape;
  const pixels = height * width;

  const counts = file.tids.map((_, row) => (cameraHasTrain(file.start + row) ? 1 : 0));
  const imageTids = file.tids.filter((_, row) => counts[row] === 1);
  file.instrumentIndex(CAMERA, "data", counts);
  const pattern = new Uint16Array(pixels);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) pattern[y * width + x] = (y * 3 + x) % 50;
  const imageShape = [height, width];
  file.chunked(`INSTRUMENT/${CAMERA}/data/image/pixels`, "uint16", paddedLength(imageTids.length), imageShape, imageTids.length, (buffer, firstRow, rows) => {
    for (let r = 0; r < rows; r++) {
      const tid = imageTids[firstRow + r]!;
      const base = tid % 1000;
      const offset = r * pixels;
      for (let j = 0; j < pixels; j++) buffer[offset + j] = base + pattern[j]!;
      expectLayout(buffer[offset]!, cameraPixel(tid, 0, 0), "camera pixel");
      expectLayout(buffer[offset + pixels - 1]!, cameraPixel(tid, height - 1, width - 1), "camera pixel");
    }
  });
  const trainId = paddedArray("uint64", imageTids.length);
  trainId.set(imageTids.map(BigInt));
  file.padded(`INSTRUMENT/${CAMERA}/data/trainId`, "uint64", trainId);

  // Listed with an index, but no entries at all.
  file.instrumentIndex(EMPTY_CAMERA, "data", file.tids.map(() => 0));
  file.chunked(`INSTRUMENT/${EMPTY_CAMERA}/data/image/pixels`, "uint16", 0, imageShape, 0, () => {});
  file.array(`INSTRUMENT/${EMPTY_CAMERA}/data/trainId`, "uint64", [0], new BigUint64Array(0));
  file.close();
}

/** The entries (frames) of a detector module file: train ID and frame number of each row, and per-train counts. */
interface ModuleEntries {
  counts: number[];
  tids: number[];
  frames: number[];
}

function moduleEntries(file: SequenceFile): ModuleEntries {
  const entries: ModuleEntries = { counts: [], tids: [], frames: [] };
  file.tids.forEach((tid, row) => {
    const count = detectorFrames(file.ctx.preset, file.start + row);
    entries.counts.push(count);
    for (let frame = 0; frame < count; frame++) {
      entries.tids.push(tid);
      entries.frames.push(frame);
    }
  });
  return entries;
}

/** (y * 7 + x * 3 + r) % 16 for each r = tid % 16: the part of detectorPixel's signal plane that varies by pixel. */
const detectorPatterns = new Map<string, Uint16Array[]>();
function detectorPattern(rows: number, columns: number, tid: number): Uint16Array {
  const key = `${rows}x${columns}`;
  let patterns = detectorPatterns.get(key);
  if (!patterns) {
    patterns = [];
    for (let r = 0; r < 16; r++) {
      const p = new Uint16Array(rows * columns);
      for (let y = 0; y < rows; y++) for (let x = 0; x < columns; x++) p[y * columns + x] = (y * 7 + x * 3 + r) % 16;
      patterns.push(p);
    }
    detectorPatterns.set(key, patterns);
  }
  return patterns[tid % 16]!;
}

/** Writes a raw module file and returns its image.data (padded), from which the CORR file is derived. */
function writeRawModule(ctx: RunContext, path: string, module: number, seq: 0 | 1): Uint16Array {
  const [start, end] = moduleTrainRange(ctx.preset, module, seq);
  const file = new SequenceFile(ctx, path, seq, start, end);
  const source = detectorSource(module);
  const [, rows, columns] = ctx.preset.frameShape;
  const plane = rows * columns;
  const entries = moduleEntries(file);
  const nEntries = entries.tids.length;

  file.instrumentIndex(source, "header", entries.counts.map(() => 1), ctx.legacyIndex);
  file.instrumentIndex(source, "image", entries.counts, ctx.legacyIndex);

  // Contiguous and uncompressed on purpose: this is the key the read benchmark measures.
  const data = paddedArray("uint16", nEntries, ctx.preset.frameShape);
  for (let e = 0; e < nEntries; e++) {
    const tid = entries.tids[e]!;
    const frame = entries.frames[e]!;
    const base = (tid % 1000) + 10 * frame + 100 * module;
    const pattern = detectorPattern(rows, columns, tid);
    const offset = e * 2 * plane;
    for (let j = 0; j < plane; j++) data[offset + j] = base + pattern[j]!;
    data.fill(detectorPixel(tid, frame, module, 1, 0, 0), offset + plane, offset + 2 * plane);
    expectLayout(data[offset]!, detectorPixel(tid, frame, module, 0, 0, 0), "detector pixel");
    expectLayout(data[offset + plane - 1]!, detectorPixel(tid, frame, module, 0, rows - 1, columns - 1), "detector pixel");
    expectLayout(data[offset + 2 * plane - 1]!, detectorPixel(tid, frame, module, 1, rows - 1, columns - 1), "detector gain pixel");
  }
  file.padded(`INSTRUMENT/${source}/image/data`, "uint16", data, ctx.preset.frameShape);

  const cellId = paddedArray("uint16", nEntries, [1]);
  const pulseId = paddedArray("uint64", nEntries, [1]);
  const trainId = paddedArray("uint64", nEntries, [1]);
  for (let e = 0; e < nEntries; e++) {
    cellId[e] = detectorCellId(entries.frames[e]!);
    pulseId[e] = BigInt(detectorPulseId(entries.frames[e]!));
    trainId[e] = BigInt(entries.tids[e]!);
  }
  file.padded(`INSTRUMENT/${source}/image/cellId`, "uint16", cellId, [1]);
  file.padded(`INSTRUMENT/${source}/image/pulseId`, "uint64", pulseId, [1]);
  file.padded(`INSTRUMENT/${source}/image/trainId`, "uint64", trainId, [1]);

  const pulseCount = paddedArray("uint64", file.trains);
  const headerTrainId = paddedArray("uint64", file.trains);
  file.tids.forEach((tid, row) => {
    pulseCount[row] = BigInt(entries.counts[row]!);
    headerTrainId[row] = BigInt(tid);
  });
  file.padded(`INSTRUMENT/${source}/header/pulseCount`, "uint64", pulseCount);
  file.padded(`INSTRUMENT/${source}/header/trainId`, "uint64", headerTrainId);
  file.close();
  return data;
}

/** Writes the CORR file of a module sequence from the raw frames, with the legacy raw name as soft links. */
function writeCorrModule(ctx: RunContext, path: string, module: number, seq: 0 | 1, raw: Uint16Array): void {
  const [start, end] = moduleTrainRange(ctx.preset, module, seq);
  const file = new SequenceFile(ctx, path, seq, start, end);
  const source = correctedSource(module);
  const legacy = detectorSource(module);
  const [, rows, columns] = ctx.preset.frameShape;
  const plane = rows * columns;
  const entries = moduleEntries(file);
  const nEntries = entries.tids.length;
  const padded = paddedLength(nEntries);

  file.instrumentIndex(source, "image", entries.counts);
  file.sources.push(`INSTRUMENT/${legacy}/image`);

  const frame = [rows, columns];
  file.chunked(`INSTRUMENT/${source}/image/data`, "float32", padded, frame, nEntries, (buffer, firstRow, n) => {
    for (let r = 0; r < n; r++) {
      const e = firstRow + r;
      const rawOffset = e * 2 * plane;
      const offset = r * plane;
      // correctedPixel is half the raw signal plus a quarter.
      for (let j = 0; j < plane; j++) buffer[offset + j] = raw[rawOffset + j]! * 0.5 + 0.25;
      const [tid, f] = [entries.tids[e]!, entries.frames[e]!];
      expectLayout(buffer[offset]!, Math.fround(correctedPixel(tid, f, module, 0, 0)), "corrected pixel");
      expectLayout(buffer[offset + plane - 1]!, Math.fround(correctedPixel(tid, f, module, rows - 1, columns - 1)), "corrected pixel");
    }
  });
  const maskFrame = new Uint32Array(plane);
  for (let y = 0; y < rows; y++) for (let x = 0; x < columns; x++) maskFrame[y * columns + x] = correctedMask(y, x, columns);
  file.chunked(`INSTRUMENT/${source}/image/mask`, "uint32", padded, frame, nEntries, (buffer, _firstRow, n) => {
    for (let r = 0; r < n; r++) buffer.set(maskFrame, r * plane);
  });
  file.chunked(`INSTRUMENT/${source}/image/gain`, "uint8", padded, frame, nEntries, (buffer, firstRow, n) => {
    for (let r = 0; r < n; r++) buffer.fill(correctedGain(entries.frames[firstRow + r]!), r * plane, (r + 1) * plane);
  });

  const cellId = paddedArray("uint16", nEntries);
  const pulseId = paddedArray("uint64", nEntries);
  const trainId = paddedArray("uint64", nEntries);
  for (let e = 0; e < nEntries; e++) {
    cellId[e] = detectorCellId(entries.frames[e]!);
    pulseId[e] = BigInt(detectorPulseId(entries.frames[e]!));
    trainId[e] = BigInt(entries.tids[e]!);
  }
  file.padded(`INSTRUMENT/${source}/image/cellId`, "uint16", cellId);
  file.padded(`INSTRUMENT/${source}/image/pulseId`, "uint64", pulseId);
  file.padded(`INSTRUMENT/${source}/image/trainId`, "uint64", trainId);

  // Newer calibration pipelines keep the raw source name as a soft link to the corrected data.
  for (const section of ["INSTRUMENT", "INDEX"]) {
    const link = `${section}/${legacy}`;
    file.w.requireParent(link);
    file.w.createSoftLink(link, `/${section}/${source}`);
  }
  file.close();
}

// ---- the run ----

function checkOptions(opts: SynthRunOptions): void {
  const bad = (what: string) => {
    throw new DamnitError("BAD_ARGUMENT", what);
  };
  if (!Number.isInteger(opts.proposal) || opts.proposal < 0 || opts.proposal > 999_999) bad(`proposal ${opts.proposal} is not a whole number from 0 to 999999`);
  if (!Number.isInteger(opts.run) || opts.run < 0 || opts.run > 9999) bad(`run ${opts.run} is not a whole number from 0 to 9999`);
  if (opts.size !== undefined && !SYNTH_SIZES.includes(opts.size)) bad(`unknown size '${opts.size}'; choose ${SYNTH_SIZES.join(", ")}`);
  if (opts.format !== undefined && !SYNTH_FORMATS.includes(opts.format)) bad(`unknown format '${opts.format}'; choose ${SYNTH_FORMATS.join(", ")}`);
  for (const [name, value] of [
    ["instrument", opts.instrument],
    ["cycle", opts.cycle],
  ] as const) {
    if (value !== undefined && !/^[A-Za-z0-9_-]+$/.test(value)) bad(`${name} '${value}' must be letters, digits, '-' or '_'`);
  }
}

/** Refuses when a target run directory exists (unless overwriting). */
export function checkRunTargets(dirs: readonly string[], overwrite: boolean): void {
  if (overwrite) return;
  for (const dir of dirs) {
    if (existsSync(dir)) throw new DamnitError("BAD_ARGUMENT", `run directory ${dir} already exists; use --force to overwrite`);
  }
}

/** Moves a finished temporary directory into place, replacing an old one only once the new one is complete. */
function moveIntoPlace(tmp: string, dir: string): void {
  if (existsSync(dir)) {
    const old = `${dir}.old-${process.pid}`;
    rmSync(old, { recursive: true, force: true });
    renameSync(dir, old);
    renameSync(tmp, dir);
    rmSync(old, { recursive: true, force: true });
  } else {
    renameSync(tmp, dir);
  }
}

export async function writeSyntheticRun(opts: SynthRunOptions): Promise<SynthRunResult> {
  checkOptions(opts);
  const size = opts.size ?? "small";
  const format = opts.format ?? "1.2";
  const withProc = opts.proc ?? true;
  const instrument = opts.instrument ?? SYNTH_INSTRUMENT;
  const cycle = opts.cycle ?? SYNTH_CYCLE;
  const rawDir = runDirectory(opts.root, instrument, cycle, opts.proposal, opts.run, "raw");
  const procDir = withProc ? runDirectory(opts.root, instrument, cycle, opts.proposal, opts.run, "proc") : null;
  checkRunTargets(procDir ? [rawDir, procDir] : [rawDir], opts.overwrite ?? false);

  const ctx: RunContext = {
    lib: await loadH5(),
    preset: SYNTH_PRESETS[size],
    proposal: opts.proposal,
    run: opts.run,
    format,
    version: Number.parseFloat(format),
    legacyIndex: opts.legacyIndex ?? false,
    open: new Set(),
  };
  // Written next to the target and renamed at the end, so a half-written run is never seen under its name.
  const temps = new Map<string, string>([[rawDir, `${rawDir}.partial-${process.pid}`]]);
  if (procDir) temps.set(procDir, `${procDir}.partial-${process.pid}`);
  const result: SynthRunResult = { rawDir, procDir, files: [], bytes: 0 };
  try {
    for (const tmp of temps.values()) {
      rmSync(tmp, { recursive: true, force: true });
      mkdirSync(tmp, { recursive: true });
    }
    const write = async (dir: string, name: string, writer: (path: string) => void) => {
      const path = join(temps.get(dir)!, name);
      writer(path);
      result.bytes += statSync(path).size;
      const final = join(dir, name);
      result.files.push(final);
      opts.onFile?.(final);
      // Let a progress bar or signal handler run between files; writing blocks the event loop.
      await new Promise((resolve) => setImmediate(resolve));
    };
    const run = opts.run;
    await write(rawDir, fileName("RAW", run, "DA01", 0), (p) => writeDa01(ctx, p, 0, opts.partialSource ?? false));
    await write(rawDir, fileName("RAW", run, "DA01", 1), (p) => writeDa01(ctx, p, 1, opts.partialSource ?? false));
    await write(rawDir, fileName("RAW", run, "DA02", 0), (p) => writeDa02(ctx, p));
    for (let module = 0; module < ctx.preset.modules; module++) {
      for (const seq of [0, 1] as const) {
        let raw: Uint16Array | undefined;
        await write(rawDir, fileName("RAW", run, moduleAggregator(module), seq), (p) => {
          raw = writeRawModule(ctx, p, module, seq);
        });
        if (procDir) await write(procDir, fileName("CORR", run, moduleAggregator(module), seq), (p) => writeCorrModule(ctx, p, module, seq, raw!));
      }
    }
    for (const [dir, tmp] of temps) moveIntoPlace(tmp, dir);
  } catch (err) {
    for (const writer of ctx.open) writer.abort();
    for (const tmp of temps.values()) rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
  return result;
}
