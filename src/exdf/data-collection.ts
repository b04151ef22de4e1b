/**
 * A run, or a selection of its trains: the union of trains over all files and sequences, the sources, and access to
 * their keys. Selections share the open files; `close()` on any of them closes the run.
 */
import { dirname } from "node:path";
import { DamnitError } from "../core/errors.js";
import { didYouMean } from "../core/close-names.js";
import type { H5Lib } from "../h5/file.js";
import type { KeyData } from "./key-data.js";
import type { RunFile, SourceKind } from "./run-file.js";
import { SourceData } from "./source-data.js";
import { type TrainSelection, selectTrainIds } from "./train-selection.js";

/** A file of the run that could not be opened. */
export interface RunProblem {
  readonly path: string;
  readonly directory: string;
  /** From the file name (`DA01`, `AGIPD00`, …); null for names outside the EXDF pattern. */
  readonly aggregator: string | null;
  readonly message: string;
}

export interface RunContents {
  readonly lib: H5Lib;
  /** The directories the files come from (raw, proc, or both). */
  readonly directories: readonly string[];
  readonly files: readonly RunFile[];
  /** Source → the files that provide it, in train order (for "all", proc's files where proc has the source). */
  readonly sourceFiles: ReadonlyMap<string, readonly RunFile[]>;
  /** Files that could not be opened; sources of other aggregators are still readable. */
  readonly problems: readonly RunProblem[];
}

export interface RunMetadata {
  formatVersions: string[];
  proposal?: number;
  run?: number;
  creationDate?: string;
  updateDate?: string;
  daqLibrary?: string;
  karaboFramework?: string;
}

/** METADATA datasets EXtra-data's run_metadata() reports, by type (spec exdf-and-hdf5.md, METADATA). */
const RUN_METADATA_STRINGS = ["dataFormatVersion", "creationDate", "updateDate", "daqLibrary", "karaboFramework", "runType", "sample"];
const RUN_METADATA_NUMBERS = ["proposalNumber", "runNumber", "sequenceNumber"];

export class DataCollection {
  private readonly sourceCache = new Map<string, SourceData>();

  constructor(
    private readonly contents: RunContents,
    /** Selected train IDs, sorted. */
    readonly trainIds: readonly number[],
  ) {}

  /** Open every file of the run (the sorted union of their trains is the run's train list). */
  static fromContents(contents: RunContents): DataCollection {
    const ids = new Set<number>();
    for (const f of contents.files) for (const t of f.trainIds) ids.add(t);
    return new DataCollection(contents, [...ids].sort((a, b) => a - b));
  }

  get files(): readonly RunFile[] {
    return this.contents.files;
  }

  get directories(): readonly string[] {
    return this.contents.directories;
  }

  /** Why files of the run could not be opened (they are skipped). */
  get problems(): string[] {
    return this.contents.problems.map((p) => p.message);
  }

  get controlSources(): string[] {
    return this.sourcesOf("control");
  }

  get instrumentSources(): string[] {
    return this.sourcesOf("instrument");
  }

  get allSources(): string[] {
    return [...this.contents.sourceFiles.keys()].sort();
  }

  hasSource(name: string): boolean {
    return this.contents.sourceFiles.has(name);
  }

  source(name: string): SourceData {
    let source = this.sourceCache.get(name);
    if (!source) {
      const files = this.contents.sourceFiles.get(name);
      if (!files) {
        const skipped = this.problems.length
          ? `; ${this.problems.length} unreadable file${this.problems.length === 1 ? " was" : "s were"} skipped and may hold it (${this.problems[0]})`
          : "";
        throw new DamnitError("UNKNOWN_SOURCE", `this run has no source '${name}'${didYouMean(name, this.allSources)}${skipped}`);
      }
      // Another sequence file of the same aggregator could not be read: this source's trains would be incomplete.
      const damaged = this.contents.problems.find(
        (p) => p.aggregator !== null && files.some((f) => f.parts?.aggregator === p.aggregator && dirname(f.path) === p.directory),
      );
      if (damaged) {
        throw new DamnitError("BAD_RUN_FILE", `${name} is incomplete: part of its data is in a file that cannot be read (${damaged.message})`);
      }
      const kind = files[0]!.sourceKind(name)!;
      const trains = new Set(this.trainIds);
      // Files without selected trains drop out, as in EXtra-data.
      const selected = files.filter((f) => f.trainIds.some((t) => trains.has(t)));
      source = new SourceData(this.contents.lib, name, kind, selected.length > 0 ? selected : files.slice(0, 1), this.trainIds);
      this.sourceCache.set(name, source);
    }
    return source;
  }

  key(source: string, key: string): KeyData {
    return this.source(source).key(key);
  }

  selectTrains(selection: TrainSelection): DataCollection {
    return new DataCollection(this.contents, selectTrainIds(this.trainIds, selection));
  }

  /**
   * Only the trains where every given source (or source and key) has at least one entry: for control sources one
   * value, for instrument sources an entry in every index group (or in the key's group when a key is given).
   */
  selectTrainsWithData(items: ReadonlyArray<string | readonly [string, string]>): DataCollection {
    let keep = new Set(this.trainIds);
    for (const item of items) {
      const [sourceName, keyName] = typeof item === "string" ? [item, undefined] : item;
      const source = this.source(sourceName);
      const keys = keyName !== undefined ? [source.key(keyName)] : this.groupRepresentatives(source);
      for (const key of keys) {
        const counts = key.dataCounts();
        const withData = new Set(key.trainIds.filter((_, i) => counts[i]! > 0));
        keep = new Set([...keep].filter((t) => withData.has(t)));
      }
    }
    return new DataCollection(this.contents, this.trainIds.filter((t) => keep.has(t)));
  }

  /** Train timestamps in ns since the epoch, aligned with `trainIds`; null where no file records one (format 0.5). */
  trainTimestamps(): Array<bigint | null> {
    const byTrain = new Map<number, bigint>();
    for (const f of this.contents.files) {
      if (!f.timestamps) continue;
      f.trainIds.forEach((t, i) => {
        const ts = f.timestamps![i]!;
        if (ts !== 0n && !byTrain.has(t)) byTrain.set(t, ts);
      });
    }
    return this.trainIds.map((t) => byTrain.get(t) ?? null);
  }

  metadata(): RunMetadata {
    const versions = [...new Set(this.contents.files.map((f) => f.formatVersion))].sort();
    const first = this.contents.files[0];
    if (!first) return { formatVersions: versions };
    const str = (name: string) => first.strings(`METADATA/${name}`)?.[0] ?? undefined;
    const num = (name: string) => {
      const v = first.numbers(`METADATA/${name}`)?.[0];
      return v === undefined ? undefined : v;
    };
    return {
      formatVersions: versions,
      proposal: num("proposalNumber"),
      run: num("runNumber") ?? first.parts?.run,
      creationDate: str("creationDate"),
      updateDate: str("updateDate"),
      daqLibrary: str("daqLibrary"),
      karaboFramework: str("karaboFramework"),
    };
  }

  /**
   * The run's metadata as EXtra-data's `run_metadata()` gives it: the 1-element datasets of the first file's (by
   * name; EXtra-data takes whichever the directory lists first, so only `sequenceNumber` may differ)
   * METADATA under their own names (`dataFormatVersion`, `creationDate`, `updateDate`, `daqLibrary`,
   * `karaboFramework`, `proposalNumber`, `runNumber`, `sequenceNumber`, and where the file has them `runType`,
   * `sample`), strings as strings and numbers as numbers; format 0.5 files give only `{ dataFormatVersion: "0.5" }`.
   */
  runMetadata(): Record<string, string | number> {
    const first = this.contents.files[0];
    if (!first) return {};
    if (first.formatVersion === "0.5") return { dataFormatVersion: "0.5" };
    const out: Record<string, string | number> = {};
    for (const name of RUN_METADATA_STRINGS) {
      const v = first.strings(`METADATA/${name}`)?.[0];
      if (v !== undefined) out[name] = v;
    }
    for (const name of RUN_METADATA_NUMBERS) {
      const v = first.numbers(`METADATA/${name}`)?.[0];
      if (v !== undefined) out[name] = v;
    }
    return Object.fromEntries(Object.entries(out).sort(([a], [b]) => a.localeCompare(b)));
  }

  close(): void {
    for (const f of this.contents.files) f.close();
  }

  sourceKind(name: string): SourceKind | undefined {
    return this.contents.sourceFiles.get(name)?.[0]?.sourceKind(name);
  }

  private sourcesOf(kind: SourceKind): string[] {
    return this.allSources.filter((s) => this.sourceKind(s) === kind);
  }

  /** One key per index group of a source, to read its per-train counts. */
  private groupRepresentatives(source: SourceData): KeyData[] {
    const keys = source.keys();
    if (source.kind === "control") {
      const k = keys.find((k) => k.endsWith(".value"));
      return k ? [source.key(k)] : [];
    }
    return source.indexGroups.flatMap((g) => {
      const prefix = `${g.replaceAll("/", ".")}.`;
      const k = keys.find((k) => k.startsWith(prefix));
      return k ? [source.key(k)] : [];
    });
  }
}
