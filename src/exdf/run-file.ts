/**
 * One HDF5 file of a run: its train IDs, format version, the sources it lists and their per-train indexes.
 * Everything is read lazily and cached; the file stays open until `close()`.
 */
import { closeSync, fstatSync, openSync, readSync, statSync } from "node:fs";
import { basename } from "node:path";
import type { Dataset, File as H5File } from "h5wasm/node";
import { DamnitError } from "../core/errors.js";
import { type ChunkedLayout, type ReadAt, findChunkedLayout } from "./chunked-read.js";
import { type DirectLayout, findDirectLayout } from "./direct-read.js";
import { type DatasetInfo, type H5Lib, datasetInfo, hdf5Reason, openH5File } from "../h5/file.js";

export interface FileNameParts {
  category: string;
  run: number;
  aggregator: string;
  sequence: number | null;
}

const FILE_NAME = /^([A-Z]+)-R(\d{4})-(\w+?)(?:-S(\d{5}))?\.h5$/;

/** `RAW-R0001-DA01-S00000.h5` → its parts; null for names outside the EXDF pattern (still readable). */
export function parseRunFileName(name: string): FileNameParts | null {
  const m = FILE_NAME.exec(name);
  if (!m) return null;
  return { category: m[1]!, run: Number(m[2]), aggregator: m[3]!, sequence: m[4] === undefined ? null : Number(m[4]) };
}

/** Rows of one (source, index group) for each train of the file. */
export interface TrainIndex {
  readonly first: Float64Array;
  readonly count: Float64Array;
}

export type SourceKind = "control" | "instrument";

/** Format versions whose layout we know; later 1.x versions are read like 1.2, as EXtra-data does. */
const NEWEST_MAJOR = 1;

export class RunFile {
  readonly name: string;
  readonly parts: FileNameParts | null;
  readonly formatVersion: string;
  /** Train IDs in file order, padding zeros dropped. */
  readonly trainIds: readonly number[];
  /** Train timestamps in ns since the epoch (format ≥ 1.0), aligned with `trainIds`. */
  readonly timestamps: readonly bigint[] | null;
  readonly controlSources: ReadonlySet<string>;
  /** Instrument source → its index groups (`image`, `header`, `data`, …). */
  readonly instrumentSources: ReadonlyMap<string, readonly string[]>;

  private readonly indexes = new Map<string, TrainIndex>();
  private readonly infos = new Map<string, DatasetInfo | null>();
  private readonly keyLists = new Map<string, string[]>();
  private readonly layouts = new Map<string, DirectLayout | null>();
  private readonly chunkedLayouts = new Map<string, ChunkedLayout | null>();
  /** Row of INDEX/trainId (and of every per-source index) for each train in `trainIds`. */
  private readonly trainRows: readonly number[];
  /** The file as it was when opened, so direct reads can tell if it was replaced since. */
  private readonly identity: { ino: number; size: number; mtimeMs: number };

  private constructor(
    private readonly lib: H5Lib,
    readonly path: string,
    readonly h5: H5File,
  ) {
    this.name = basename(path);
    const stat = statSync(path);
    this.identity = { ino: stat.ino, size: stat.size, mtimeMs: stat.mtimeMs };
    this.parts = parseRunFileName(this.name);
    this.formatVersion = this.readVersion();
    const tids = this.numbers("INDEX/trainId");
    if (!tids) throw new DamnitError("BAD_RUN_FILE", `${path}: not a European XFEL run file (no INDEX/trainId)`);
    // Padding zeros are dropped; the per-source index rows stay aligned with the rows of INDEX/trainId they belong to.
    const keep: number[] = [];
    tids.forEach((t, i) => {
      if (t !== 0) keep.push(i);
    });
    this.trainRows = keep;
    this.trainIds = keep.map((i) => tids[i]!);
    const ts = this.bigints("INDEX/timestamp");
    this.timestamps = ts ? keep.map((i) => ts[i] ?? 0n) : null;
    const { control, instrument } = this.readSources();
    this.controlSources = control;
    this.instrumentSources = instrument;
  }

  static open(lib: H5Lib, path: string): RunFile {
    const h5 = openH5File(lib, path);
    try {
      return new RunFile(lib, path, h5);
    } catch (err) {
      h5.close();
      if (err instanceof DamnitError) throw err;
      throw new DamnitError("BAD_RUN_FILE", `${path}: cannot read the run file structure (${hdf5Reason(err)})`, { cause: err });
    }
  }

  close(): void {
    this.h5.close();
  }

  /** Where an uncompressed contiguous dataset's rows are in the file, when they can be read directly. */
  directLayout(info: DatasetInfo): DirectLayout | null {
    if (!this.layouts.has(info.path)) this.layouts.set(info.path, findDirectLayout(this.lib, info));
    return this.layouts.get(info.path)!;
  }

  /** Where the chunks of an uncompressed or deflate/shuffle chunked dataset are, when they can be read directly. */
  chunkedLayout(info: DatasetInfo): ChunkedLayout | null {
    if (!this.chunkedLayouts.has(info.path)) this.chunkedLayouts.set(info.path, findChunkedLayout(this.lib, info, (use) => this.withReader(use)));
    return this.chunkedLayouts.get(info.path)!;
  }

  /**
   * Fill `out` with the file's bytes from `position`; a short read means the file was cut off. The descriptor is
   * opened per call (libhdf5 already holds one per file, and runs can have hundreds of files), and checked to be the
   * file that was opened: a file replaced since is refused rather than read at the old offsets.
   */
  readAt(position: number, out: Uint8Array): void {
    this.withReader((read) => read(position, out));
  }

  /** As readAt, for many reads through one descriptor (one per chunk of a chunked key), checked once. */
  withReader<T>(use: (read: ReadAt) => T): T {
    const fd = openSync(this.path, "r");
    try {
      const now = fstatSync(fd);
      if (now.ino !== this.identity.ino || now.size !== this.identity.size || now.mtimeMs !== this.identity.mtimeMs) {
        throw new DamnitError("BAD_RUN_FILE", `${this.path} was replaced or changed while the run was open; open the run again`);
      }
      return use((position, out) => {
        let done = 0;
        while (done < out.length) {
          const n = readSync(fd, out, done, out.length - done, position + done);
          if (n === 0) {
            throw new DamnitError("BAD_RUN_FILE", `${this.path}: file ends at byte ${position + done}, before the data it indexes (truncated)`);
          }
          done += n;
        }
      });
    } finally {
      closeSync(fd);
    }
  }

  hasSource(source: string): boolean {
    return this.controlSources.has(source) || this.instrumentSources.has(source);
  }

  sourceKind(source: string): SourceKind | undefined {
    if (this.controlSources.has(source)) return "control";
    if (this.instrumentSources.has(source)) return "instrument";
    return undefined;
  }

  /**
   * The source a legacy name points to: newer CORR files store data under `…/CORR/<n>CH0:output` and keep the old
   * `…/DET/<n>CH0:xtdf` as a soft link. Undefined for sources stored under their own name.
   */
  linkTarget(source: string): string | undefined {
    if (!this.instrumentSources.has(source)) return undefined;
    try {
      const target = this.h5.get_link(`/INSTRUMENT/${source}`);
      return target ? target.replace(/^\/INSTRUMENT\//, "") : undefined;
    } catch {
      return undefined;
    }
  }

  /** Rows of `source`'s index group for each train (control sources use group ""). */
  index(source: string, group: string): TrainIndex {
    const id = `${source}\u0000${group}`;
    let index = this.indexes.get(id);
    if (!index) {
      index = this.readIndex(source, group);
      this.indexes.set(id, index);
    }
    return index;
  }

  /** Dataset description, or null when the file has no dataset at `path`. */
  dataset(path: string): DatasetInfo | null {
    if (!this.infos.has(path)) {
      let isDataset: boolean;
      try {
        isDataset = this.h5.get(path) instanceof this.lib.h5.Dataset;
      } catch {
        isDataset = false; // e.g. a path continuing below a dataset: there is no dataset there
      }
      this.infos.set(path, isDataset ? datasetInfo(this.lib, this.h5, path) : null);
    }
    return this.infos.get(path)!;
  }

  /** Dataset paths under `CONTROL/<src>` or `INSTRUMENT/<src>`, relative to it, in HDF5 order. */
  datasetPaths(source: string): string[] {
    let paths = this.keyLists.get(source);
    if (!paths) {
      const kind = this.sourceKind(source);
      const root = `/${kind === "control" ? "CONTROL" : "INSTRUMENT"}/${source}`;
      const { module } = this.lib;
      try {
        const names = module.get_names(this.h5.file_id, root, true);
        paths = names.filter((p) => module.get_type(this.h5.file_id, `${root}/${p}`) === module.H5G_DATASET);
      } catch (err) {
        throw new DamnitError("BAD_RUN_FILE", `${this.path}: cannot list the keys of ${source} (${hdf5Reason(err)})`, { cause: err });
      }
      this.keyLists.set(source, paths);
    }
    return paths;
  }

  /**
   * A run-start value, `RUN/<source>/<key>/value[0]`: a number, bigint, string, or an array for array-valued keys.
   * Undefined when the file has no such value.
   */
  runValue(source: string, key: string): unknown {
    const path = `RUN/${source}/${key.replaceAll(".", "/")}/value`;
    const entity = this.h5.get(path);
    if (!(entity instanceof this.lib.h5.Dataset)) return undefined;
    const info = this.dataset(path);
    let value: unknown;
    try {
      value = (entity as Dataset).slice([[0, 1]]);
    } catch (err) {
      throw new DamnitError("BAD_RUN_FILE", `${this.path}: cannot read ${path} (${hdf5Reason(err)})`, { cause: err });
    }
    const scalarEntry = (info?.shape.length ?? 1) <= 1;
    if (Array.isArray(value)) return scalarEntry ? value[0] : value;
    if (ArrayBuffer.isView(value)) return scalarEntry ? (value as unknown as ArrayLike<unknown>)[0] : Array.from(value as unknown as ArrayLike<unknown>);
    return value;
  }

  /** Keys with a run-start value under `RUN/<source>`, without the `.value` suffix. */
  runKeys(source: string): string[] {
    const root = `/RUN/${source}`;
    const { module } = this.lib;
    if (!(this.h5.get(root) instanceof this.lib.h5.Group)) return [];
    return module
      .get_names(this.h5.file_id, root, true)
      .filter((p) => p.endsWith("/value") || p === "value")
      .filter((p) => module.get_type(this.h5.file_id, `${root}/${p}`) === module.H5G_DATASET)
      .map((p) => p.slice(0, -"/value".length).replaceAll("/", "."));
  }

  /** The whole of a small 1-D dataset as numbers (train IDs and indexes stay far below 2^53). */
  numbers(path: string): number[] | null {
    const values = this.rawValue(path);
    if (values === null) return null;
    if (typeof values === "number" || typeof values === "bigint") return [Number(values)];
    if (ArrayBuffer.isView(values)) return Array.from(values as unknown as ArrayLike<number | bigint>, Number);
    throw new DamnitError("BAD_RUN_FILE", `${this.path}: ${path} is not numeric`);
  }

  strings(path: string): string[] | null {
    const values = this.rawValue(path);
    if (values === null) return null;
    if (typeof values === "string") return [values];
    if (Array.isArray(values)) return values.map(String);
    throw new DamnitError("BAD_RUN_FILE", `${this.path}: ${path} is not a list of strings`);
  }

  private bigints(path: string): bigint[] | null {
    const values = this.rawValue(path);
    if (values === null) return null;
    if (values instanceof BigUint64Array || values instanceof BigInt64Array) return Array.from(values);
    return null;
  }

  private rawValue(path: string): unknown {
    const entity = this.h5.get(path);
    if (!(entity instanceof this.lib.h5.Dataset)) return null;
    try {
      return (entity as Dataset).value;
    } catch (err) {
      throw new DamnitError("BAD_RUN_FILE", `${this.path}: cannot read ${path} (${hdf5Reason(err)})`, { cause: err });
    }
  }

  private readVersion(): string {
    const version = this.strings("METADATA/dataFormatVersion")?.[0]?.trim();
    if (!version) return "0.5";
    const major = Number(version.split(".")[0]);
    if (!Number.isInteger(major) || major > NEWEST_MAJOR) {
      throw new DamnitError("UNSUPPORTED_DATA", `${this.path}: data format version ${version} is newer than this reader understands (1.x)`);
    }
    return version;
  }

  private readSources(): { control: Set<string>; instrument: Map<string, string[]> } {
    const ids = this.strings("METADATA/dataSources/dataSourceId") ?? this.strings("METADATA/dataSourceId");
    if (!ids) throw new DamnitError("BAD_RUN_FILE", `${this.path}: not a European XFEL run file (no METADATA source list)`);
    const control = new Set<string>();
    const instrument = new Map<string, string[]>();
    for (const id of ids) {
      const slash = id.indexOf("/");
      if (!id || slash < 0) continue; // padding, or pseudo sources such as Karabo_TimerServer
      const category = id.slice(0, slash);
      const rest = id.slice(slash + 1);
      if (category === "CONTROL") {
        control.add(rest);
      } else if (category === "INSTRUMENT") {
        // `<device>:<channel>/<index group>`: the source ends at the first "/" after the ":".
        const colon = rest.indexOf(":");
        const cut = colon < 0 ? rest.lastIndexOf("/") : rest.indexOf("/", colon);
        if (cut < 0) continue;
        const source = rest.slice(0, cut);
        const groups = instrument.get(source) ?? [];
        groups.push(rest.slice(cut + 1));
        instrument.set(source, groups);
      }
    }
    return { control, instrument };
  }

  private readIndex(source: string, group: string): TrainIndex {
    const base = group ? `INDEX/${source}/${group}` : `INDEX/${source}`;
    const rowsNeeded = (this.trainRows.at(-1) ?? -1) + 1;
    const column = (name: string): number[] | null => {
      const values = this.numbers(`${base}/${name}`);
      if (values && values.length < rowsNeeded) {
        throw new DamnitError("BAD_RUN_FILE", `${this.path}: ${base}/${name} has ${values.length} rows, the file has ${rowsNeeded} trains`);
      }
      return values;
    };
    const first = column("first");
    if (!first) throw new DamnitError("BAD_RUN_FILE", `${this.path}: ${source} is listed but has no index (${base}/first)`);
    let count = column("count");
    if (!count) {
      // Old detector files: first, last and status instead of count.
      const last = column("last");
      const status = column("status");
      if (!last || !status) throw new DamnitError("BAD_RUN_FILE", `${this.path}: ${base} has neither count nor last/status`);
      count = first.map((f, i) => (status[i] ? last[i]! - f + 1 : 0));
    }
    const rows = this.trainRows;
    const index = { first: Float64Array.from(rows, (r) => first[r]!), count: Float64Array.from(rows, (r) => count[r]!) };
    index.count.forEach((c, i) => {
      if (!Number.isSafeInteger(c) || c < 0 || !Number.isSafeInteger(index.first[i]!)) {
        throw new DamnitError("BAD_RUN_FILE", `${this.path}: ${base} gives train ${this.trainIds[i]} an impossible row range (first ${index.first[i]}, count ${c})`);
      }
    });
    return index;
  }
}
