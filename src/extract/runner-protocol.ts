/**
 * Messages between a job (parent) and its context runner (child process, where user code runs). They travel over
 * Node's IPC channel with structured-clone serialisation, so typed arrays cross without JSON.
 */
import type { ContextProblem, VariableInfo } from "../context/variables.js";
import type { VariableError, VariableOutput } from "../core/variable-output.js";
import type { DataKind } from "../core/data-kind.js";
import type { CalibrationJobConfig } from "../calibration/run-hook.js";

export interface RunJob {
  /** identifies the job's end markers in the runner's stdout/stderr */
  readonly jobId: string;
  readonly contextFile: string;
  readonly proposal: number;
  readonly run: number;
  readonly kind: DataKind;
  readonly clusterJob: boolean;
  readonly match: readonly string[];
  readonly variables: readonly string[];
  readonly mock: boolean;
  readonly params: Readonly<Record<string, unknown>>;
  /** variables that failed in an earlier attempt at this job (time-out, crash): not run again */
  readonly prefailed: ReadonlyArray<readonly [string, VariableError]>;
  readonly resultLimitBytes: number;
  /** EXDF data root (default: the reader's) */
  readonly dataRoot?: string;
  /** the job's lookup recorder (DAMNIT_LOOKUP_* variables), when it has one */
  readonly lookupEnv?: Readonly<Record<string, string>>;
  /** the database's calibration stores for `calibration` in context code (and the lookups to replay when pinning) */
  readonly calibration?: CalibrationJobConfig;
}

/**
 * After a job, the runner still holds its full results (data arrays, previews); `store` has it write them, merged
 * with the run's HDF5 file, to a temporary file while the parent holds the database's write lock. `extra` adds results the parent made
 * (errors of variables stopped in an earlier attempt).
 */
export interface StoreRequest {
  readonly jobId: string;
  readonly file: string;
  readonly extra: readonly VariableOutput[];
  /** results not to write: the run file keeps what it has for them */
  readonly keep: readonly string[];
  readonly provenance: string;
  /** this attempt's provenance record (JSON) for the file's `damnit_provenance` attribute (src/provenance/) */
  readonly record?: string;
}

export type ToRunner =
  | { readonly type: "describe"; readonly contextFile: string }
  | { readonly type: "run"; readonly job: RunJob }
  | { readonly type: "store"; readonly request: StoreRequest }
  /** environment for the jobs to come, before the first (a prestarted runner learning the database's context_python) */
  | { readonly type: "env"; readonly env: Readonly<Record<string, string>> };

export type FromRunner =
  | { readonly type: "ready" }
  | { readonly type: "described"; readonly variables?: VariableInfo[]; readonly problems: ContextProblem[] }
  /** the context loaded and the run opened: these variables will run (in this order) */
  | {
      readonly type: "selected";
      readonly variables: VariableInfo[];
      readonly names: string[];
      readonly total: number;
      readonly clusterFollowUp: boolean;
      /** the run's files that could not be read (or are missing): its data are incomplete */
      readonly incomplete: readonly string[];
    }
  | { readonly type: "start"; readonly name: string }
  /** a variable's result as the database stores it: summary, attributes or error (its data stays in the runner) */
  | { readonly type: "output"; readonly output: VariableOutput }
  | { readonly type: "log"; readonly level: "info" | "warn" | "error"; readonly message: string }
  | { readonly type: "done"; readonly jobId: string; readonly timings?: RunnerTimings }
  /** the merged run file is written as `tempFile`; the parent renames it into place */
  | { readonly type: "stored"; readonly jobId: string; readonly tempFile?: string; readonly error?: string }
  /** the job could not run at all: the context has problems, or the run cannot be opened */
  | { readonly type: "failed"; readonly jobId: string; readonly problems?: ContextProblem[]; readonly message: string };

/** Where a job's time went in the runner, seconds (the job's phase timings). */
export interface RunnerTimings {
  /** loading (evaluating) the context file; near 0 when the runner had it loaded already */
  readonly context: number;
  /** opening the run's files */
  readonly open: number;
  /** reading data, inside the variables */
  readonly read: number;
  /** the variables, without their reads */
  readonly variables: number;
}

/** Written to the runner's stdout and stderr at the end of each job, so late output is not attributed to the next. */
export function endMarker(jobId: string): string {
  return `\u0000damnit-job-end ${jobId}\n`;
}

/**
 * Starts the last line a runner prints on stderr before it exits because its Python process (context.py) died
 * during a variable; the rest is `<cls>: <message>`, which the job records as that variable's error.
 */
export const PYTHON_STOPPED_MARK = "[damnit: python process stopped]";
