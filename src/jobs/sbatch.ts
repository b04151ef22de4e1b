/**
 * Submitting jobs with `sbatch` (spec §2.2, §2.4, §2.6). The batch script is bin/damnit-job.sh, which runs its
 * arguments: the command is passed as an argument array, never through a shell. A failed submission is a
 * DamnitError with code SBATCH_NOT_INSTALLED (no Slurm here at all) or SUBMIT_FAILED (anything else).
 */
import { chmodSync, closeSync, lstatSync, mkdirSync, readdirSync, rmSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import { userInfo } from "node:os";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { DamnitError } from "../core/errors.js";
import { loadExeca } from "../core/lazy-execa.js";
import { createFresh, sharedDirectory } from "../core/safe-open.js";
import { touchProcessLog } from "../process-logs.js";
import { damnitCommand, extractArguments, jobName, type JobRequest } from "./request.js";
import { resourceOptions, type SlurmSettings } from "./slurm-settings.js";

export const JOB_SCRIPT = fileURLToPath(new URL("../../../bin/damnit-job.sh", import.meta.url));

export interface SubmittedJob {
  readonly jobId: string;
  /** the Slurm cluster, "" for the local one */
  readonly cluster: string;
}

/** A submission's failure, with `hint` (what the user can do instead) after the message. */
function submitFailed(code: "SBATCH_NOT_INSTALLED" | "SUBMIT_FAILED", message: string, hint: string | undefined, cause?: unknown): DamnitError {
  return new DamnitError(code, hint ? `${message} (${hint})` : message, cause === undefined ? undefined : { cause });
}

/** The environment a job gets: ours, minus what would confuse Slurm or leak a display (spec §2.2). */
export function jobEnvironment(extra: Record<string, string | undefined> = {}): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = { ...process.env, ...extra };
  // DAMNIT_SUPERVISOR_CONF marks the supervised listener's processes; a job must not look like one of them.
  for (const key of ["SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID", "DISPLAY", "LD_PRELOAD", "DAMNIT_SUPERVISOR_CONF"]) delete env[key];
  return env;
}

/** Whether Slurm's sbatch is installed here (`sbatch --version` answers). */
export async function sbatchInstalled(): Promise<boolean> {
  const result = await (await loadExeca())("sbatch", ["--version"], { reject: false, timeout: 10_000, stdin: "ignore" }).catch(() => null);
  return result !== null && result.exitCode === 0;
}

/** Run `sbatch --parsable <args>` in `cwd`; the job id and cluster it prints. `hint` is said after a failure. */
export async function sbatch(
  args: readonly string[],
  opts: { cwd: string; env?: Record<string, string | undefined>; timeoutMs?: number; hint?: string; onSpawn?: (pid: number) => void },
): Promise<SubmittedJob> {
  let result;
  try {
    const child = (await loadExeca())("sbatch", ["--parsable", ...args], {
      cwd: opts.cwd,
      env: opts.env ?? jobEnvironment(),
      extendEnv: false,
      reject: false,
      timeout: opts.timeoutMs ?? 60_000,
      stdin: "ignore",
    });
    if (child.pid !== undefined) opts.onSpawn?.(child.pid);
    result = await child;
  } catch (err) {
    throw submitFailed("SUBMIT_FAILED", `sbatch could not be run: ${err instanceof Error ? err.message : String(err)}`, opts.hint, err);
  }
  if (result.failed || result.exitCode !== 0) {
    // execa's error code for a command that could not be started at all
    const missing = result.code === "ENOENT";
    const why = missing ? "sbatch is not installed here (no Slurm)" : String(result.stderr || result.stdout || result.shortMessage || "").trim();
    const message = `sbatch failed (${result.timedOut ? "timed out" : `exit ${result.exitCode ?? result.signal}`}): ${why}`;
    throw submitFailed(missing ? "SBATCH_NOT_INSTALLED" : "SUBMIT_FAILED", message, opts.hint);
  }
  const [id, cluster] = String(result.stdout).trim().split(";", 2).map((s) => s.trim());
  if (!id || !/^\d+(_\d+)?$/.test(id)) throw submitFailed("SUBMIT_FAILED", `sbatch printed no job id: '${String(result.stdout).trim()}'`, opts.hint);
  return { jobId: id, cluster: cluster ?? "" };
}

export interface SubmitOptions {
  readonly settings: SlurmSettings;
  /** `--dependency` (e.g. `afterok:123`) */
  readonly dependency?: string;
  /** extra environment for the job (e.g. the brokers for its update messages) */
  readonly env?: Record<string, string | undefined>;
  /** said after the message of a failed submission, e.g. how to do without Slurm */
  readonly hint?: string;
  /** `--comment` (the processing id and idempotency key: see idempotency.ts) */
  readonly comment?: string;
  /** told the sbatch child's pid as soon as it runs (recorded, so a restarted listener can wait for it) */
  readonly onSpawn?: (pid: number) => void;
}

/** One job for one run; its output is appended to the run's process log (opened by the job: run-logged). */
export async function submitJob(dbDir: string, req: JobRequest, opts: SubmitOptions): Promise<SubmittedJob> {
  const log = touchProcessLog(dbDir, req.proposal, req.run);
  return sbatch(jobArguments(dbDir, req, opts, log), { cwd: dbDir, env: jobEnvironment(opts.env), hint: opts.hint, onSpawn: opts.onSpawn });
}

/** sbatch's arguments for one job for one run, its output appended to `logFile`. */
export function jobArguments(dbDir: string, req: JobRequest, opts: SubmitOptions, logFile: string): string[] {
  const command = damnitCommand(opts.settings.damnitCommand);
  return [
    ...resourceOptions(opts.settings, req.cluster ?? false),
    // Slurm would open the log by name when the job starts (following a symlink planted meanwhile): the job opens
    // it itself, safely (run-logged).
    "--output",
    "/dev/null",
    "--open-mode=append",
    "--job-name",
    jobName(req),
    ...(opts.comment ? ["--comment", opts.comment] : []),
    "--chdir",
    dbDir,
    // A job whose dependency can never be met is cancelled, not left pending for ever.
    ...(opts.dependency ? [`--dependency=${opts.dependency}`, "--kill-on-invalid-dep=yes"] : []),
    JOB_SCRIPT,
    ...command,
    "run-logged",
    logFile,
    "--",
    ...command,
    ...extractArguments(req),
  ];
}

/** Slurm's MaxArraySize default. */
const MAX_ARRAY = 1000;

/**
 * Many runs as array jobs of at most 1000 tasks, `limit` at a time (spec §2.4). Each task runs `damnit run-task`
 * on a task file listing every task's command and log; later batches wait for the previous one (afterany).
 */
export async function submitArray(dbDir: string, reqs: readonly JobRequest[], opts: SubmitOptions & { limit?: number }): Promise<SubmittedJob[]> {
  if (reqs.length === 0) return [];
  const cluster = reqs[0]!.cluster ?? false;
  if (reqs.some((r) => (r.cluster ?? false) !== cluster)) throw new Error("an array job's requests must all be cluster jobs or all not");
  const limit = opts.limit ?? opts.settings.concurrentJobs;
  // <db>/.tmp is shared (sticky: nobody removes another's entries); the task files go into a directory of the
  // submitting user's own, made fresh (0700), written 0600: nobody else can change what the tasks run. A .tmp made
  // by someone else without the sticky bit lets them rename ours away: run-task then refuses a file not ours.
  const shared = join(dbDir, ".tmp");
  const tmp = join(shared, `${safeUserName()}-${randomBytes(8).toString("hex")}`);
  preparing(() => {
    sharedDirectory(shared, 0o1777);
    removeOldTaskFiles(shared);
    mkdirSync(tmp, { mode: 0o700 });
    chmodSync(tmp, 0o700); // made just now, by us (mkdir fails on an existing name): whatever the umask
  }, opts.hint);
  const command = damnitCommand(opts.settings.damnitCommand);
  const submitted: SubmittedJob[] = [];
  let previousLast: string | undefined;
  for (let start = 0; start < reqs.length; start += MAX_ARRAY) {
    const batch = reqs.slice(start, start + MAX_ARRAY);
    const file = join(tmp, `tasks-${randomBytes(8).toString("hex")}.json`);
    preparing(() => {
      const tasks = batch.map((r) => ({ argv: [...command, ...extractArguments(r)], log: touchProcessLog(dbDir, r.proposal, r.run) }));
      const fd = createFresh(file, 0o600);
      try {
        writeFileSync(fd, JSON.stringify({ tasks }, null, 1));
      } finally {
        closeSync(fd);
      }
    }, opts.hint);
    const args = [
      ...resourceOptions(opts.settings, cluster),
      "--output",
      "/dev/null",
      "--open-mode=append",
      "--job-name",
      `p${batch[0]!.proposal}-damnit`,
      "--array",
      `0-${batch.length - 1}%${limit}`,
      "--chdir",
      dbDir,
      ...(previousLast ? [`--dependency=afterany:${previousLast}`] : []),
      JOB_SCRIPT,
      ...command,
      "run-task",
      file,
    ];
    const job = await sbatch(args, { cwd: dbDir, env: jobEnvironment(opts.env), hint: opts.hint });
    batch.forEach((_, i) => submitted.push({ jobId: `${job.jobId}_${i}`, cluster: job.cluster }));
    previousLast = `${job.jobId}_${batch.length - 1}`;
  }
  return submitted;
}

/** Writing an array job's files (task file, process logs): a failure there is a failed submission too. */
function preparing(write: () => void, hint: string | undefined): void {
  try {
    write();
  } catch (err) {
    throw submitFailed("SUBMIT_FAILED", err instanceof Error ? err.message : String(err), hint, err);
  }
}

/** The submitting user's name as a directory name's prefix (only letters, digits, '.', '_' and '-'). */
function safeUserName(): string {
  let name: string;
  try {
    name = userInfo().username;
  } catch {
    name = `uid${process.getuid?.() ?? ""}`;
  }
  return name.replace(/[^A-Za-z0-9._-]/g, "_") || "user";
}

/**
 * Task files of array jobs long finished (a week old) are removed with their directory; Slurm gives no hook when
 * the last task ends. Only our own directories (and old task files of earlier versions, directly in .tmp).
 */
function removeOldTaskFiles(shared: string): void {
  const weekAgo = Date.now() - 7 * 24 * 3600 * 1000;
  const uid = process.getuid?.();
  for (const name of readdirSync(shared)) {
    const path = join(shared, name);
    try {
      if (/^tasks-[0-9a-f]{16}\.json$/.test(name)) {
        if (statSync(path).mtimeMs < weekAgo) unlinkSync(path);
      } else if (/^[A-Za-z0-9._-]+-[0-9a-f]{16}$/.test(name)) {
        const stat = lstatSync(path);
        if (stat.isDirectory() && stat.uid === uid && stat.mtimeMs < weekAgo) rmSync(path, { recursive: true, force: true });
      }
    } catch {
      // gone already, or not ours
    }
  }
}
