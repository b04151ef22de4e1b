/**
 * The data object a job's variables receive, and what is derived from it: start time and proposal path
 * (spec §3.2, §3.5). Raw jobs open raw data only; proc/all jobs open raw and proc with proc preferred.
 */
import { statSync } from "node:fs";

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}
import { dirname } from "node:path";
import type { DataKind } from "../core/data-kind.js";
import { DamnitError } from "../core/errors.js";
import type { DataCollection } from "../exdf/data-collection.js";
import { dataRoot, findProposalDirectory, openRun, runDirectory } from "../exdf/open-run.js";

export interface OpenedRunData {
  /** passed to the variables as their first argument */
  readonly data: DataCollection | MockRun;
  /** epoch seconds */
  readonly startTime: number;
  readonly proposalPath: string;
  /** false when proc variables must be dropped because the run has no proc data */
  readonly procAvailable: boolean;
  readonly warnings: readonly string[];
  /** files of the run that could not be read, or are missing from a sequence: the run is incomplete */
  readonly problems: readonly string[];
  close(): void;
}

/**
 * `--mock`: a stand-in run of 10 trains with synthetic timestamps and no sources, for checking a context without
 * data (any source lookup fails as an unknown source).
 */
export class MockRun {
  readonly trainIds: number[] = Array.from({ length: 10 }, (_, i) => 10_000 + i);
  readonly allSources: string[] = [];
  readonly controlSources: string[] = [];
  readonly instrumentSources: string[] = [];
  readonly files: never[] = [];
  readonly problems: string[] = [];
  private readonly start = BigInt(Date.now()) * 1_000_000n;
  trainTimestamps(): Array<bigint | null> {
    return this.trainIds.map((_, i) => this.start + BigInt(i) * 100_000_000n);
  }
  hasSource(): boolean {
    return false;
  }
  source(name: string): never {
    throw new DamnitError("UNKNOWN_SOURCE", `This data has no source named '${name}' (this is a mock run: it has no sources)`);
  }
  key(source: string): never {
    return this.source(source);
  }
  close(): void {}
}

export async function openRunData(
  proposal: number,
  run: number,
  kind: DataKind,
  opts: { mock?: boolean; wantsProc?: boolean; root?: string } = {},
): Promise<OpenedRunData> {
  if (opts.mock) {
    const mock = new MockRun();
    return { data: mock, startTime: Date.now() / 1000, proposalPath: "", procAvailable: true, warnings: [], problems: [], close: () => {} };
  }
  const warnings: string[] = [];
  let procAvailable = kind !== "raw";
  if (opts.wantsProc && kind !== "raw") {
    // DAMNIT probes by opening the proc run; whether its directory exists is the same answer, without the cost.
    const root = opts.root ?? dataRoot();
    if (!isDirectory(runDirectory(findProposalDirectory(proposal, root), "proc", run))) {
      procAvailable = false;
      warnings.push("Proc data is unavailable, only raw variables will be executed.");
    }
  }
  const data = await openRun(proposal, run, { data: kind === "raw" ? "raw" : "all", root: opts.root });
  return {
    data,
    startTime: startTimeOf(data),
    proposalPath: proposalPathOf(data),
    procAvailable,
    warnings: [...warnings, ...data.problems.map((p) => `run data problem: ${p}`)],
    problems: data.problems,
    close: () => data.close(),
  };
}

/** The first train's timestamp; for old files without timestamps, the mtime of the earliest raw file. */
export function startTimeOf(data: DataCollection): number {
  const first = data.trainTimestamps().find((t) => t !== null);
  if (first !== undefined && first !== null) return Number(first) / 1e9;
  const files = data.files.map((f) => f.path);
  const raw = files.filter((f) => /\/raw\//.test(f));
  const mtimes = (raw.length > 0 ? raw : files).map((f) => statSync(f).mtimeMs / 1000);
  return mtimes.length > 0 ? Math.min(...mtimes) : Date.now() / 1000;
}

/** The proposal directory: the first data file's path without its last three components. */
export function proposalPathOf(data: DataCollection): string {
  const first = data.files[0]?.path;
  return first ? dirname(dirname(dirname(first))) : "";
}
