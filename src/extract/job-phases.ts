/**
 * Where one extraction job's time went (issue 13): getting a context runner, loading the context, opening the run,
 * reading data, computing the variables, storing the results. The job logs them at debug level; with
 * `DAMNIT_TIMINGS_FILE` set it also appends them as one JSON line to that file, which is how bench/extract reads
 * them from `damnit extract` processes.
 */
import { appendFileSync, readFileSync } from "node:fs";
import type { RunnerTimings } from "./runner-protocol.js";

export interface JobPhases extends RunnerTimings {
  /** seconds from this process's start to the job's start (the CLI's start, for a `damnit extract` process) */
  readonly sinceProcessStart: number;
  /** waiting for a context runner (starting one, unless one was ready) */
  readonly runner: number;
  /** writing the HDF5 file and the database rows */
  readonly store: number;
  /** the job from its start to its results stored */
  readonly total: number;
}

export function phasesText(p: JobPhases): string {
  const s = (x: number) => `${x.toFixed(3)} s`;
  return (
    `runner ${s(p.runner)}, context ${s(p.context)}, open ${s(p.open)}, read ${s(p.read)}, variables ${s(p.variables)}, ` +
    `store ${s(p.store)}; total ${s(p.total)} (started ${s(p.sinceProcessStart)} after the process)`
  );
}

/** This process's peak resident memory so far (VmHWM), MiB. */
function ownPeakMb(): number {
  try {
    return Number(/VmHWM:\s+(\d+)/.exec(readFileSync("/proc/self/status", "utf8"))?.[1] ?? 0) / 1024;
  } catch {
    return 0;
  }
}

/**
 * Append the phases to `$DAMNIT_TIMINGS_FILE`, if set, with the peak memory of this process and of the job's
 * context runner (best effort: timings are never worth failing a job).
 */
export function recordPhases(proposal: number, run: number, phases: JobPhases, runnerPeakMb: () => number | undefined, file = process.env.DAMNIT_TIMINGS_FILE): void {
  if (!file) return;
  try {
    const memory = { jobPeakMb: ownPeakMb(), runnerPeakMb: runnerPeakMb() ?? 0 };
    appendFileSync(file, `${JSON.stringify({ proposal, run, ...phases, ...memory })}\n`, { mode: 0o600 });
  } catch {
    // an unwritable timings file only loses the timings
  }
}
