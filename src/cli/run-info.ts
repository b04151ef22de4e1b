/** What `damnit data info` reports about a run, as data (for --json) and as text (like EXtra-data's lsxfel). */
import { statSync } from "node:fs";
import { isDamnitError } from "../core/errors.js";
import type { DataCollection, SourceData } from "../exdf/index.js";

export interface KeyInfo {
  key: string;
  /** Why the key cannot be read (unsupported type, damaged dataset); the other fields are then empty. */
  problem?: string;
  dtype: string;
  entryShape: number[];
  entries: number;
  trainsWithData: number;
  units?: string;
}

export interface SourceInfo {
  name: string;
  kind: "control" | "instrument";
  /** Set for legacy names kept as soft links: the source they point to. */
  linkTarget?: string;
  trains: number;
  files: string[];
  keys: KeyInfo[];
  /** Why the source's keys cannot be listed. */
  problem?: string;
}

export interface FileInfo {
  name: string;
  formatVersion: string;
  trains: number;
  firstTrain: number | null;
  lastTrain: number | null;
  bytes: number;
}

export interface RunInfo {
  directories: string[];
  formatVersions: string[];
  proposal?: number;
  run?: number;
  trains: number;
  firstTrain: number | null;
  lastTrain: number | null;
  /** ISO times of the first and last train, when the files record them. */
  start: string | null;
  end: string | null;
  sources: SourceInfo[];
  files: FileInfo[];
  problems: string[];
}

/** One unreadable key or source is reported in place; it must not hide the rest of the run. */
function problemText(err: unknown): string {
  if (isDamnitError(err)) return err.message;
  throw err;
}

function keyInfo(source: SourceData, name: string): KeyInfo {
  try {
    const key = source.key(name);
    const counts = key.dataCounts();
    return {
      key: name,
      dtype: key.type,
      entryShape: [...key.entryShape],
      entries: key.entryCount,
      trainsWithData: counts.reduce((n, c) => n + (c > 0 ? 1 : 0), 0),
      units: key.units(),
    };
  } catch (err) {
    return { key: name, problem: problemText(err), dtype: "unreadable", entryShape: [], entries: 0, trainsWithData: 0 };
  }
}

const iso = (ns: bigint | null | undefined) => (ns ? new Date(Number(ns / 1_000_000n)).toISOString() : null);

export function collectRunInfo(run: DataCollection, opts: { keys: boolean }): RunInfo {
  const timestamps = run.trainTimestamps();
  const meta = run.metadata();
  const sources = run.allSources.map((name): SourceInfo => {
    let source: SourceData;
    try {
      source = run.source(name);
    } catch (err) {
      return { name, kind: run.sourceKind(name) ?? "instrument", trains: 0, files: [], keys: [], problem: problemText(err) };
    }
    const info: SourceInfo = { name, kind: source.kind, linkTarget: source.linkTarget, trains: source.trainIds.length, files: source.files.map((f) => f.name), keys: [] };
    if (!opts.keys) return info;
    try {
      info.keys = source.keys({ incTimestamps: false }).map((k) => keyInfo(source, k));
    } catch (err) {
      info.problem = problemText(err);
    }
    return info;
  });
  return {
    directories: [...run.directories],
    formatVersions: meta.formatVersions,
    proposal: meta.proposal,
    run: meta.run,
    trains: run.trainIds.length,
    firstTrain: run.trainIds[0] ?? null,
    lastTrain: run.trainIds.at(-1) ?? null,
    start: iso(timestamps[0]),
    end: iso(timestamps.at(-1)),
    sources,
    files: run.files.map((f) => ({
      name: f.name,
      formatVersion: f.formatVersion,
      trains: f.trainIds.length,
      firstTrain: f.trainIds[0] ?? null,
      lastTrain: f.trainIds.at(-1) ?? null,
      bytes: statSync(f.path).size,
    })),
    problems: [...run.problems],
  };
}

const mb = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`;
const shapeText = (shape: readonly number[]) => `(${shape.join(", ")}${shape.length === 1 ? "," : ""})`;

export function runInfoText(info: RunInfo): string {
  const lines: string[] = [];
  const totalBytes = info.files.reduce((n, f) => n + f.bytes, 0);
  lines.push(`Run directory:  ${info.directories.join(" + ")}`);
  if (info.proposal !== undefined || info.run !== undefined) lines.push(`Proposal, run:  ${info.proposal ?? "?"}, ${info.run ?? "?"}`);
  lines.push(`Format:         ${info.formatVersions.join(", ")}; ${info.files.length} files, ${mb(totalBytes)}`);
  lines.push(`Trains:         ${info.trains}${info.firstTrain !== null ? ` (${info.firstTrain} – ${info.lastTrain})` : ""}`);
  if (info.start) {
    const seconds = (Date.parse(info.end!) - Date.parse(info.start)) / 1000;
    lines.push(`Time:           ${info.start} – ${info.end} (${seconds.toFixed(1)} s)`);
  }
  for (const kind of ["control", "instrument"] as const) {
    const sources = info.sources.filter((s) => s.kind === kind);
    lines.push("", `${sources.length} ${kind} source${sources.length === 1 ? "" : "s"}:`);
    for (const s of sources) {
      if (s.problem) {
        lines.push(`  ${s.name}  (cannot be read: ${s.problem})`);
        continue;
      }
      const files = `${s.trains} trains in ${s.files.length} file${s.files.length === 1 ? "" : "s"}`;
      if (s.linkTarget) {
        lines.push(`  ${s.name}  (legacy name of ${s.linkTarget}; ${files})`);
        continue;
      }
      lines.push(`  ${s.name}  (${files})`);
      const width = Math.max(0, ...s.keys.map((k) => k.key.length));
      for (const k of s.keys) {
        if (k.problem) {
          lines.push(`    ${k.key.padEnd(width)}  cannot be read: ${k.problem}`);
          continue;
        }
        const counts = kind === "control" ? "" : `  ${k.entries} entries in ${k.trainsWithData} trains`;
        lines.push(`    ${k.key.padEnd(width)}  ${k.dtype} ${shapeText(k.entryShape)}${k.units ? ` [${k.units}]` : ""}${counts}`);
      }
    }
  }
  lines.push("", "Files:");
  const width = Math.max(...info.files.map((f) => f.name.length));
  for (const f of info.files) {
    const range = f.firstTrain === null ? "no trains" : `trains ${f.firstTrain} – ${f.lastTrain} (${f.trains})`;
    lines.push(`  ${f.name.padEnd(width)}  ${range}  ${mb(f.bytes)}`);
  }
  if (info.problems.length > 0) lines.push("", "Unreadable files (skipped):", ...info.problems.map((p) => `  ${p}`));
  return lines.join("\n");
}
