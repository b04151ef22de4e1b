/** A run's process log, `<db dir>/process_logs/r<R>-p<P>.out`, appended to by every job for that run (spec §2.3). */
import { chmodSync, closeSync, mkdirSync, openSync } from "node:fs";
import { join } from "node:path";

export function processLogFile(dbDir: string, proposal: number, run: number): string {
  const dir = join(dbDir, "process_logs");
  mkdirSync(dir, { recursive: true });
  ownerChmod(dir, 0o777);
  return join(dir, `r${run}-p${proposal}.out`);
}

/** The log file, created if missing with mode 0666 so that other users' jobs can append to it. */
export function touchProcessLog(dbDir: string, proposal: number, run: number): string {
  const file = processLogFile(dbDir, proposal, run);
  closeSync(openSync(file, "a"));
  ownerChmod(file, 0o666);
  return file;
}

/** chmod when we own the file; someone else's keeps its mode (the system is deliberately world-writable). */
export function ownerChmod(path: string, mode: number): void {
  try {
    chmodSync(path, mode);
  } catch {
    // not ours
  }
}
