/** The errors a user can act on, shared by every role (databases, run data, jobs); callers and tests tell cases apart by `code`, never by the message. */
export type DamnitErrorCode =
  | "NO_DIRECTORY"
  | "NO_DATABASE"
  | "NOT_SQLITE"
  | "NOT_DAMNIT"
  | "TOO_NEW"
  | "LEGACY_V0"
  | "MIGRATION_FAILED"
  | "READ_ONLY"
  | "BUSY"
  | "BAD_VALUE"
  | "CONTEXT_CONFLICT"
  | "NO_SUCH_KEY"
  | "BAD_ARGUMENT"
  // a symlink, hard link or non-regular file where we write (logs, task files): refused, never followed
  | "UNSAFE_FILE"
  // settings (metameta, listener settings)
  | "BAD_SETTING"
  | "UNKNOWN_SETTING"
  // the listener itself cannot go on (its store, its configuration): it stops rather than skip messages
  | "LISTENER_FAULT"
  // run data (European XFEL run files)
  | "NO_RUN"
  | "UNKNOWN_SOURCE"
  | "UNKNOWN_KEY"
  | "UNSUPPORTED_DATA"
  | "BAD_RUN_FILE"
  // Slurm jobs
  | "SBATCH_NOT_INSTALLED"
  | "SUBMIT_FAILED"
  // HTTP services (control API, web table, lookup recorder)
  | "TOKEN_REQUIRED"
  | "BAD_TOKEN"
  | "BAD_LISTEN_ADDRESS"
  // the lookup recorder (record/replay proxy for external lookups)
  | "LOOKUP_DB"
  | "BAD_UPSTREAM"
  | "LOOKUP_NOT_RECORDED"
  | "LOOKUP_FAILED"
  // calibration-constant store (src/calibration/)
  | "CALIB_NOT_FOUND"
  | "CALIB_UNKNOWN_CTYPE"
  | "CALIB_UNKNOWN_DETECTOR"
  | "CALIB_VERSION_EXISTS"
  | "CALIB_BAD_TIME"
  | "CALIB_BAD_DATA"
  // provenance records (src/provenance/)
  | "NO_PROVENANCE"
  | "PROVENANCE_DB"
  | "SCRATCH_FAILED"
  | "CALIB_DETECTOR_EXISTS"
  | "CALIB_BAD_FILE"
  // run bookkeeping (src/bookkeeping/) and the listener's control API
  | "DB_CLOSED"
  | "BAD_COUNTER"
  | "LISTENER_PAUSED"
  // the web table: a run's extracted_data file lacks the variable's data (missing/corrupt files are BAD_RUN_FILE)
  | "NO_EXTRACTED_DATA";

/**
 * An error a user can act on. Its message is one line that names the file or value concerned and says what to do;
 * the CLI prints it without a stack trace.
 */
export class DamnitError extends Error {
  override readonly name = "DamnitError";
  constructor(
    readonly code: DamnitErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export function isDamnitError(err: unknown, code?: DamnitErrorCode): err is DamnitError {
  return err instanceof DamnitError && (code === undefined || err.code === code);
}
