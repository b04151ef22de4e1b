/** One source (a Karabo device or output channel) across the files of a run: its keys, trains and run values. */
import { DamnitError } from "../core/errors.js";
import { didYouMean } from "../core/close-names.js";
import type { H5Lib } from "../h5/file.js";
import { KeyData } from "./key-data.js";
import type { RunFile, SourceKind } from "./run-file.js";

export class SourceData {
  private keyCache: string[] | undefined;

  constructor(
    private readonly lib: H5Lib,
    readonly name: string,
    readonly kind: SourceKind,
    /** Files holding the source, in train order. */
    readonly files: readonly RunFile[],
    private readonly selectedTrainIds: readonly number[],
  ) {}

  /** Selected trains covered by the files that hold this source (with or without entries), sorted. */
  get trainIds(): number[] {
    const selected = new Set(this.selectedTrainIds);
    const ids = new Set<number>();
    for (const f of this.files) for (const t of f.trainIds) if (selected.has(t)) ids.add(t);
    return [...ids].sort((a, b) => a - b);
  }

  /** For a legacy name kept as a soft link (e.g. `…/DET/0CH0:xtdf`), the source it points to. */
  get linkTarget(): string | undefined {
    return this.files[0]?.linkTarget(this.name);
  }

  /** Index groups: "" for control sources; `data`, `image`, `header`, … for instrument sources. */
  get indexGroups(): string[] {
    if (this.kind === "control") return [""];
    const groups = new Set<string>();
    for (const f of this.files) for (const g of f.instrumentSources.get(this.name) ?? []) groups.add(g);
    return [...groups];
  }

  /**
   * Key names, sorted. Control sources have `<property>.value` and `<property>.timestamp` keys; with
   * `incTimestamps: false` only the properties are listed, by their Karabo names (without `.value`).
   */
  keys(opts: { incTimestamps?: boolean } = {}): string[] {
    this.keyCache ??= this.files[0]!.datasetPaths(this.name).map((p) => p.replaceAll("/", ".")).sort();
    if (opts.incTimestamps !== false || this.kind !== "control") return this.keyCache;
    return this.keyCache.filter((k) => k.endsWith(".value")).map((k) => k.slice(0, -".value".length));
  }

  hasKey(key: string): boolean {
    return this.resolve(key) !== undefined;
  }

  key(key: string): KeyData {
    const resolved = this.resolve(key);
    if (resolved === undefined) {
      const known = this.keys({ incTimestamps: this.kind !== "control" });
      throw new DamnitError("UNKNOWN_KEY", `${this.name} has no key '${key}'${didYouMean(key, this.keys())}; it has ${describeKeys(known)}`);
    }
    const root = this.kind === "control" ? "CONTROL" : "INSTRUMENT";
    const group = this.kind === "control" ? "" : this.groupOf(resolved);
    return new KeyData(this.lib, this.name, resolved, group, `${root}/${this.name}/${resolved.replaceAll(".", "/")}`, this.files, this.selectedTrainIds);
  }

  /** The value at run start (`RUN` section) of a control key, e.g. `actualPosition` or `classId`. */
  runValue(key: string): unknown {
    if (this.kind !== "control") throw new DamnitError("BAD_ARGUMENT", `${this.name} is an instrument source; only control sources have run values`);
    const property = key.endsWith(".value") ? key.slice(0, -".value".length) : key;
    for (const f of this.files) {
      const value = f.runValue(this.name, property);
      if (value !== undefined) return value;
    }
    const known = this.runKeys();
    throw new DamnitError("UNKNOWN_KEY", `${this.name} has no run value '${key}'${didYouMean(property, known)}`);
  }

  runKeys(): string[] {
    return this.files[0]?.runKeys(this.name).sort() ?? [];
  }

  /**
   * The stored key a name refers to, looked up directly by its path in the first file (as `keys()` lists the first
   * file's): no listing of the source's hundreds of datasets. Control keys may be named without `.value`.
   */
  private resolve(key: string): string | undefined {
    if (key === "" || key.includes("/") || key.split(".").some((part) => part === "")) return undefined;
    if (this.isDataset(key)) return key;
    if (this.kind === "control" && this.isDataset(`${key}.value`)) return `${key}.value`;
    return undefined;
  }

  private isDataset(key: string): boolean {
    const root = this.kind === "control" ? "CONTROL" : "INSTRUMENT";
    return this.files[0]!.dataset(`${root}/${this.name}/${key.replaceAll(".", "/")}`) !== null;
  }

  /** The index group of an instrument key: the longest group that prefixes it (groups may contain dots in old data). */
  private groupOf(key: string): string {
    const groups = this.indexGroups.filter((g) => key === g || key.startsWith(`${g.replaceAll("/", ".")}.`));
    if (groups.length === 0) {
      throw new DamnitError("BAD_RUN_FILE", `${this.name}: key ${key} belongs to no index group (${this.indexGroups.join(", ")})`);
    }
    return groups.sort((a, b) => b.length - a.length)[0]!;
  }
}

function describeKeys(keys: readonly string[]): string {
  if (keys.length === 0) return "no keys";
  const shown = keys.slice(0, 8).join(", ");
  return keys.length > 8 ? `${keys.length} keys: ${shown}, …` : shown;
}
