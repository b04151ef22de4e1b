/**
 * A request to process one run (spec §2.1), however it is carried out: a Slurm job's `damnit extract` command line,
 * the listener's local queue, or processing here. The one shape every role uses for "process this run".
 */
import type { DataKind } from "./data-kind.js";

export interface JobRequest {
  readonly proposal: number;
  readonly run: number;
  readonly data: DataKind;
  /** identifies the request in update messages (PENDING, RUNNING, finished) */
  readonly processingId: string;
  /** compute the `cluster` variables (the follow-up job) instead of the others */
  readonly cluster?: boolean;
  readonly match?: readonly string[];
  /** overrides match */
  readonly variables?: readonly string[];
  readonly mock?: boolean;
  /** refresh the variables table (default true) */
  readonly updateVars?: boolean;
  /** shell words of the sandbox wrapper around user code ("" for none) */
  readonly sandboxArgs?: string;
  /**
   * store errors even where the run's data could not be read completely (default: errors from an incomplete read
   * do not replace values stored earlier)
   */
  readonly force?: boolean;
  /** NAME=VALUE for param# dependencies, as given on a command line */
  readonly params?: readonly string[];
  /** the job's lookup recorder replays what was recorded and never asks an upstream (reprocess --replay-lookups) */
  readonly replayLookups?: boolean;
  /** calibration.get replays the range and version each variable used last time (reprocess --pin-calibration) */
  readonly pinCalibration?: boolean;
}
