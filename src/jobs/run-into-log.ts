/**
 * Running a job's command with its output appended to the run's process log, opened by us rather than by Slurm:
 * Slurm's `--output FILE` opens the file by name, following symlinks, at the moment the job starts, so anyone who
 * can write process_logs/ could point it elsewhere between submission and start. Our jobs are submitted with
 * `--output /dev/null`, and this opens the log when the job runs (O_NOFOLLOW, a regular file, see safe-open.ts).
 * A planted file in the log's place is not written: the output goes to a fresh file of our own beside it, named in
 * the job's stderr. Slurm's SIGTERM (time limit, scancel) is noted in the log before the job ends, since Slurm's
 * own message about it went to /dev/null. A job that dies without leaving its `.err` file (killed by a signal: the
 * time limit, the out-of-memory killer, a native crash) gets one here, naming how it ended.
 */
import { spawn } from "node:child_process";
import { closeSync, writeSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { constants } from "node:os";
import { dirname } from "node:path";
import { errFilePath, readErrFile, writeErrFile } from "../audit/err-files.js";
import { isDamnitError } from "../core/errors.js";
import { createFresh } from "../core/safe-open.js";
import { openProcessLog } from "../process-logs.js";
import { contextHash, idempotencyKey } from "./idempotency.js";
import { requestFromArguments } from "./request.js";

/** Open `log` for appending; when a planted file stands there, a fresh `<log>.<random>.out` instead. */
function openLogOrFresh(log: string): { fd: number; file: string } {
  try {
    return { fd: openProcessLog(log), file: log };
  } catch (err) {
    if (!isDamnitError(err, "UNSAFE_FILE")) throw err;
    const fresh = `${log.replace(/\.out$/, "")}.${randomBytes(4).toString("hex")}.out`;
    process.stderr.write(`damnit: ${err.message}; this job's output goes to ${fresh}\n`);
    const fd = createFresh(fresh, 0o644);
    writeSync(fd, `damnit: ${err.message}; this job's output is here instead\n`);
    return { fd, file: fresh };
  }
}

/** Run `argv` (no shell) with stdout and stderr appended to `log`; resolves to its exit status as a shell reports it. */
export async function runIntoLog(argv: readonly string[], log: string): Promise<number> {
  const { fd } = openLogOrFresh(log);
  const onTerm = (): void => {
    writeSync(fd, `damnit: job received SIGTERM at ${new Date().toISOString()} (Slurm time limit or scancel)\n`);
  };
  process.on("SIGTERM", onTerm);
  try {
    const status = await new Promise<number>((resolve) => {
      const child = spawn(argv[0]!, argv.slice(1), { stdio: ["ignore", fd, fd] });
      child.on("error", (err) => {
        writeSync(fd, `damnit: cannot start ${argv[0]}: ${err.message}\n`);
        resolve(127);
      });
      // A signal as a shell reports it (128 + its number): 137 for an out-of-memory kill, 143 for a cancel.
      child.on("exit", (code, signal) => resolve(code ?? (signal ? 128 + (constants.signals[signal] ?? 0) : 1)));
    });
    if (status !== 0) leaveErrFile(argv, log, status);
    return status;
  } finally {
    process.off("SIGTERM", onTerm);
    closeSync(fd);
  }
}

/** The `.err` file of an extraction that failed without writing its own (the log is `<db>/process_logs/…`). */
function leaveErrFile(argv: readonly string[], log: string, status: number): void {
  const request = requestFromArguments(argv);
  if (!request) return;
  const dbDir = dirname(dirname(log));
  const held = readErrFile(errFilePath(dbDir, request.proposal, request.run));
  if (held.ok && held.record.processing_id === request.processingId) return; // the job said why itself
  const how = status > 128 ? `killed by signal ${status - 128}` : `exit ${status}`;
  const key = idempotencyKey(request.proposal, request.run, request.data, contextHash(dbDir));
  writeErrFile(request, { origin: "job", dbDir, idempotencyKey: key }, `the job ended (${how}) without reporting its result; see ${log}`);
}
