/**
 * Smoke tests against a real Slurm cluster (`bash scripts/slurm-up.sh up`): what the rest of the suite relies on
 * when it submits jobs. Skipped without Slurm; failing instead when REQUIRE_SLURM=1 (CI).
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { describeSlurm, jobInfo, sbatch, scancel, waitForJob } from "./helpers/slurm.js";
import { tempDir } from "./helpers/tmp.js";

/** Test-run-unique job names: job ids persist across runs, and other sessions may share the cluster. */
const RUN = `damnit-smoke-${process.pid}-${Date.now().toString(36)}`;
const JOB_TIMEOUT = 30_000;
const submitted: string[] = [];

async function submit(args: string[]): Promise<string> {
  const id = await sbatch(["--partition=debug", "--time=00:05:00", ...args]);
  submitted.push(id);
  return id;
}

describeSlurm("real Slurm", () => {
  // Anything a failed test left queued or running.
  afterAll(() => scancel(submitted));

  it("runs a --wrap job to COMPLETED and writes its --output file", async () => {
    const dir = tempDir("damnit-slurm-");
    const id = await submit([`--job-name=${RUN}-ok`, `--output=${dir}/%x-%j.out`, "--wrap", 'echo "hello from $SLURM_JOB_ID"']);
    expect(await waitForJob(id, JOB_TIMEOUT)).toEqual({ state: "COMPLETED", exitCode: "0:0", reason: "None" });
    const out = join(dir, `${RUN}-ok-${id}.out`);
    expect(readFileSync(out, "utf8")).toBe(`hello from ${id}\n`);
    const info = await jobInfo(id);
    expect(info).toMatchObject({ JobId: id, JobName: `${RUN}-ok`, JobState: "COMPLETED", StdOut: out, NumCPUs: "1", TimeLimit: "00:05:00" });
  }, 60_000);

  it("reports a job that exits 3 as FAILED with exit code 3", async () => {
    const dir = tempDir("damnit-slurm-");
    const id = await submit([`--job-name=${RUN}-fail`, `--output=${dir}/%j.out`, "--wrap", "echo before; exit 3"]);
    const result = await waitForJob(id, JOB_TIMEOUT);
    expect(result).toEqual({ state: "FAILED", exitCode: "3:0", reason: "NonZeroExitCode" });
    expect(readFileSync(join(dir, `${id}.out`), "utf8")).toBe("before\n");
  }, 60_000);

  it("cancels a job whose afterok dependency failed (DependencyParameters=kill_invalid_depend)", async () => {
    const dir = tempDir("damnit-slurm-");
    const first = await submit([`--job-name=${RUN}-dep-a`, `--output=${dir}/a-%j.out`, "--wrap", "exit 1"]);
    const second = await submit([`--job-name=${RUN}-dep-b`, `--output=${dir}/b-%j.out`, `--dependency=afterok:${first}`, "--wrap", "echo ran"]);
    expect((await jobInfo(second)).Dependency).toMatch(new RegExp(`^afterok:${first}\\b`));
    expect((await waitForJob(first, JOB_TIMEOUT)).state).toBe("FAILED");
    expect(await waitForJob(second, JOB_TIMEOUT)).toMatchObject({ state: "CANCELLED", reason: "DependencyNeverSatisfied" });
    expect(existsSync(join(dir, `b-${second}.out`))).toBe(false);
  }, 60_000);

  it("runs all tasks of an --array 0-2%1 job, one at a time", async () => {
    const dir = tempDir("damnit-slurm-");
    const id = await submit([
      `--job-name=${RUN}-array`,
      "--array=0-2%1",
      `--output=${dir}/%A_%a.out`,
      "--wrap",
      'echo "task $SLURM_ARRAY_TASK_ID of $SLURM_ARRAY_JOB_ID"; date +%s%N; sleep 0.2; date +%s%N',
    ]);
    for (const task of [0, 1, 2]) {
      expect(await waitForJob(`${id}_${task}`, JOB_TIMEOUT)).toEqual({ state: "COMPLETED", exitCode: "0:0", reason: "None" });
      expect(await jobInfo(`${id}_${task}`)).toMatchObject({ ArrayJobId: id, ArrayTaskId: String(task), JobName: `${RUN}-array` });
    }
    expect((await waitForJob(id, JOB_TIMEOUT)).state).toBe("COMPLETED");
    const spans = [0, 1, 2].map((task) => {
      const [line, start, end] = readFileSync(join(dir, `${id}_${task}.out`), "utf8").trim().split("\n");
      expect(line).toBe(`task ${task} of ${id}`);
      return [BigInt(start as string), BigInt(end as string)] as const;
    });
    // %1: a task starts only after the previous one ended.
    for (let task = 1; task < spans.length; task++) {
      expect((spans[task] as readonly [bigint, bigint])[0] >= (spans[task - 1] as readonly [bigint, bigint])[1]).toBe(true);
    }
  }, 60_000);
});
