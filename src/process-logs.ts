/**
 * A run's process log, `<db dir>/process_logs/r<R>-p<P>.out`, appended to by every job for that run (spec §2.3).
 * The directory is shared with the whole team (others' jobs append too), so it is sticky (nobody removes or renames
 * another's file) and log files are opened without following symlinks and checked to be regular files
 * (`openForAppend`): a planted `r3-p1234.out -> /root-only/file` is refused, not appended to or chmod-ed.
 */
import { closeSync } from "node:fs";
import { join } from "node:path";
import { openForAppend, sharedDirectory } from "./core/safe-open.js";

/** A new log file's mode: the team's jobs append to it (DAMNIT's sharing). */
const PROCESS_LOG_MODE = 0o666;

export function processLogFile(dbDir: string, proposal: number, run: number): string {
  // A symlink in its place (process_logs -> /elsewhere) is refused: nothing is created or chmod-ed there.
  const dir = sharedDirectory(join(dbDir, "process_logs"), 0o1777);
  return join(dir, `r${run}-p${proposal}.out`);
}

/** Open a process log for appending (created with mode 0666 when missing); a symlink or planted file is refused. */
export function openProcessLog(file: string): number {
  return openForAppend(file, PROCESS_LOG_MODE);
}

/**
 * Make sure the log file exists as a regular file (created ourselves, so that Slurm's `--output`, which opens it by
 * name, finds ours); refused when a symlink or another file was planted in its place.
 */
export function touchProcessLog(dbDir: string, proposal: number, run: number): string {
  const file = processLogFile(dbDir, proposal, run);
  closeSync(openProcessLog(file));
  return file;
}
