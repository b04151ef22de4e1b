/**
 * Where a database's run bookkeeping lives (spec satellites §C.6, sf_daq_broker's legacy layout): `<db_dir>/run_info/`
 * with one JSON file per run in folders of 1000 runs (`003000/run_003456.json`), the `LAST_RUN`/`LAST_ARUN` counter
 * mirrors and the `CLOSED` marker.
 */
import { dirname, join } from "node:path";
import { sharedDirectory } from "../core/safe-open.js";

export function runInfoDir(dbDir: string): string {
  return join(dbDir, "run_info");
}

/** `run_info/<floor(run/1000)*1000:06>/run_<run:06>.json`: run 3456 → `run_info/003000/run_003456.json`. */
export function runFilePath(dbDir: string, run: number): string {
  const thousand = String(Math.floor(run / 1000) * 1000).padStart(6, "0");
  return join(runInfoDir(dbDir), thousand, `run_${String(run).padStart(6, "0")}.json`);
}

export function closedMarkerPath(dbDir: string): string {
  return join(runInfoDir(dbDir), "CLOSED");
}

export function lastRunPath(dbDir: string): string {
  return join(runInfoDir(dbDir), "LAST_RUN");
}

export function lastAttemptPath(dbDir: string): string {
  return join(runInfoDir(dbDir), "LAST_ARUN");
}

/**
 * `run_info/` and the run's folder of 1000, made when missing. Shared by the team's jobs as `extracted_data/` is
 * (0777, as DAMNIT makes its shared directories): any member's job replaces a run's file by renaming over it.
 */
export function ensureRunInfoDirectories(dbDir: string, run: number): void {
  sharedDirectory(runInfoDir(dbDir), 0o777);
  sharedDirectory(dirname(runFilePath(dbDir, run)), 0o777);
}
