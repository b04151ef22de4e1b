/**
 * Which of a run's data a job or reader uses (spec §2.1): raw (migrated) data, proc (calibrated) data, or all
 * (both, proc preferred). One definition for the job requests, the run reader, the runner and the update messages.
 */
export type DataKind = "raw" | "proc" | "all";

export const DATA_KINDS: readonly DataKind[] = ["raw", "proc", "all"];

/** Where a run's files are, and what a notification announces: its raw data migrated, or its proc data calibrated. */
export type RunDataDirectory = Exclude<DataKind, "all">;
