/**
 * A real Slurm cluster for integration tests (`bash scripts/slurm-up.sh up` starts a single-node one).
 *
 * Without Slurm the tests skip, with the reason 'no Slurm (scripts/slurm-up.sh up)'. CI sets REQUIRE_SLURM=1: then
 * a missing or unusable cluster makes the tests FAIL, so a run can never go green without having run them.
 *
 * Only the client commands are used (sbatch, scontrol, sinfo, scancel), as whatever user runs the tests. Job state
 * comes from `scontrol show job -o`: with accounting_storage/none `sacct` is disabled, and finished jobs stay
 * visible to scontrol for MinJobAge (300 s in slurm-up.sh's slurm.conf).
 */
import { execFile, spawnSync } from "node:child_process";
import { promisify } from "node:util";
import { beforeEach, describe, it, type TestContext } from "vitest";

const run = promisify(execFile);

export const SLURM_SKIP_REASON = "no Slurm (scripts/slurm-up.sh up)";

/** Node states in which the node takes jobs; a trailing '*' (not responding) or down/drained does not count. */
const USABLE_NODE_STATES = new Set(["idle", "mixed", "allocated", "completing"]);

/** States after which a job never changes again. */
export const TERMINAL_JOB_STATES: ReadonlySet<string> = new Set([
  "COMPLETED",
  "FAILED",
  "CANCELLED",
  "TIMEOUT",
  "OUT_OF_MEMORY",
  "NODE_FAIL",
  "PREEMPTED",
  "BOOT_FAIL",
  "DEADLINE",
]);

/** Why Slurm is not usable, or false when it is. Probed once per test file (bounded: a dead controller hangs ~9 s). */
function probe(): string | false {
  const ping = spawnSync("scontrol", ["ping"], { encoding: "utf8", timeout: 15_000 });
  if (ping.error) return `${SLURM_SKIP_REASON}: scontrol: ${ping.error.message}`;
  if (ping.status !== 0) return `${SLURM_SKIP_REASON}: 'scontrol ping' exited ${ping.status}: ${(ping.stdout + ping.stderr).trim()}`;
  const sinfo = spawnSync("sinfo", ["-h", "-o", "%T"], { encoding: "utf8", timeout: 15_000 });
  if (sinfo.status !== 0) return `${SLURM_SKIP_REASON}: 'sinfo' exited ${sinfo.status}: ${sinfo.stderr.trim()}`;
  const states = sinfo.stdout.split("\n").map((s) => s.trim()).filter(Boolean);
  if (!states.some((s) => USABLE_NODE_STATES.has(s))) return `${SLURM_SKIP_REASON}: no usable node (sinfo says: ${states.join(", ") || "nothing"})`;
  return false;
}

const unavailable = probe();

/** True when the controller answers and a node is idle, mixed or allocated. */
export const slurmAvailable: boolean = unavailable === false;

function required(): boolean {
  const value = process.env.REQUIRE_SLURM;
  return value !== undefined && value !== "" && value !== "0";
}

function requiredMessage(): string {
  return `REQUIRE_SLURM=${process.env.REQUIRE_SLURM} but Slurm is not usable (${unavailable || "?"}); start it with 'bash scripts/slurm-up.sh up'`;
}

/**
 * false when Slurm is usable, otherwise why not (for `it.skipIf`/`describe.skipIf`). With REQUIRE_SLURM set and no
 * Slurm it throws instead, so that even a test that uses it directly cannot quietly skip in CI.
 */
export function slurmSkipReason(): string | false {
  if (unavailable === false) return false;
  if (required()) throw new Error(requiredMessage());
  return unavailable;
}

/**
 * `it` for a test that needs Slurm: skips (with the reason) when there is none, fails when REQUIRE_SLURM is set and
 * there is none.
 */
export function itSlurm(name: string, fn: (context: TestContext) => Promise<void> | void, timeout?: number): void {
  it(
    name,
    async (context) => {
      if (unavailable !== false) {
        if (required()) throw new Error(requiredMessage());
        context.skip(unavailable);
      }
      await fn(context);
    },
    timeout,
  );
}

/**
 * `describe` for a group of tests that all need Slurm (their tests can use plain `it`): the whole group skips when
 * there is none, and every test in it fails with a clear message when REQUIRE_SLURM is set and there is none.
 */
export function describeSlurm(name: string, fn: () => void): void {
  if (unavailable === false) {
    describe(name, fn);
  } else if (required()) {
    describe(name, () => {
      // beforeEach, not beforeAll: a failing beforeAll leaves the tests "skipped" in the summary counts.
      beforeEach(() => {
        throw new Error(requiredMessage());
      });
      fn();
    });
  } else {
    describe.skip(`${name} [skipped: ${unavailable}]`, fn);
  }
}

// --- jobs ---------------------------------------------------------------------------------------------------------

/** `sbatch --parsable ARGS`; returns the job id (for an array job, the array's id: tasks are `ID_N`). */
export async function sbatch(args: string[], options: { cwd?: string } = {}): Promise<string> {
  const { stdout } = await run("sbatch", ["--parsable", ...args], { cwd: options.cwd, timeout: 30_000 });
  const id = stdout.trim().split(";")[0] ?? "";
  if (!/^\d+$/.test(id)) throw new Error(`sbatch printed no job id: ${JSON.stringify(stdout)}`);
  return id;
}

/** Best-effort `scancel` (unknown or finished ids are fine: scancel exits 0 for them). */
export async function scancel(jobIds: string[]): Promise<void> {
  if (jobIds.length === 0) return;
  await run("scancel", jobIds, { timeout: 30_000 }).catch(() => undefined);
}

/**
 * One `scontrol show job -o` record as key → value: JobId, JobName, JobState, Reason, Dependency, ExitCode,
 * StdOut, StdErr, WorkDir, TimeLimit, NumCPUs, ArrayJobId, ArrayTaskId (the last two only for array jobs)...
 * Values are strings as scontrol prints them ("(null)" for unset, "3:0" for ExitCode).
 */
export type JobInfo = Record<string, string>;

/**
 * Splits `Key=Value Key=Value ...` at the spaces in front of a `Key=`. Values may contain spaces (JobName="x y",
 * Command with arguments) and '=' (TRES=cpu=1,mem=...); keys contain letters, digits and ':', '/', '_'.
 */
export function parseScontrolLine(line: string): JobInfo {
  const info: JobInfo = {};
  const keys = [...line.matchAll(/(?:^|\s)([A-Za-z][A-Za-z0-9_:/]*)=/g)];
  keys.forEach((match, i) => {
    const end = keys[i + 1]?.index ?? line.length;
    info[match[1] as string] = line.slice(match.index + match[0].length, end).trim();
  });
  return info;
}

/** Every record `scontrol show job -o ID` prints (an array's id gives one per task, plus the pending remainder). */
export async function jobRecords(jobId: string): Promise<JobInfo[]> {
  const { stdout } = await run("scontrol", ["show", "job", "-o", jobId], { timeout: 30_000 });
  return stdout.split("\n").filter((line) => line.trim() !== "").map(parseScontrolLine);
}

/** The `scontrol show job -o` record of one job or array task (`12_3`); for an array's own id, the first record. */
export async function jobInfo(jobId: string): Promise<JobInfo> {
  const records = await jobRecords(jobId);
  const first = records[0];
  if (first === undefined) throw new Error(`scontrol show job ${jobId} printed nothing`);
  return first;
}

/** JobState's first word ("CANCELLED by 0" in some outputs). */
function stateOf(info: JobInfo): string {
  return (info.JobState ?? "").split(/\s+/)[0] ?? "";
}

export interface JobResult {
  /** Terminal JobState, e.g. COMPLETED, FAILED, CANCELLED. */
  state: string;
  /** scontrol's ExitCode, "exit:signal" (a job that ran `exit 3` gives "3:0"). */
  exitCode: string;
  /** Reason, e.g. NonZeroExitCode, DependencyNeverSatisfied, None. */
  reason: string;
}

/**
 * Polls `scontrol show job -o ID` every 250 ms until the job (or array task `12_3`) reaches a terminal state, and
 * returns it. For an array's own id it waits for every task: the result is COMPLETED when all completed, otherwise
 * the first task that did not. Throws with the last seen state after timeoutMs, and at once for an unknown id.
 */
export async function waitForJob(jobId: string, timeoutMs: number): Promise<JobResult> {
  const deadline = Date.now() + timeoutMs;
  let last = "not seen yet";
  for (;;) {
    let records: JobInfo[] | undefined;
    try {
      records = await jobRecords(jobId);
    } catch (error) {
      const text = String((error as { stderr?: string }).stderr ?? error);
      if (/Invalid job id/i.test(text)) throw new Error(`Slurm job ${jobId}: ${text.trim()} (last seen: ${last})`);
      last = `scontrol failed: ${text.trim()}`; // controller busy or restarting: keep polling until the deadline
    }
    if (records !== undefined && records.length > 0) {
      last = records.map((r) => `${r.JobId}${r.ArrayTaskId ? `_${r.ArrayTaskId}` : ""} ${r.JobState} (${r.Reason})`).join(", ");
      if (records.every((r) => TERMINAL_JOB_STATES.has(stateOf(r)))) {
        const result = records.find((r) => stateOf(r) !== "COMPLETED") ?? (records[0] as JobInfo);
        return { state: stateOf(result), exitCode: result.ExitCode ?? "", reason: result.Reason ?? "" };
      }
    }
    if (Date.now() >= deadline) throw new Error(`Slurm job ${jobId} not finished after ${timeoutMs} ms; last seen: ${last}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}
