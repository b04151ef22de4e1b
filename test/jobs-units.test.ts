/**
 * The job orchestration as plain functions, in-process: which runs `reprocess` takes (a real runs.sqlite and
 * synthetic run directories), the Slurm-or-local choice, the requests of a reprocessing, the follow-up job for
 * cluster variables (its sbatch arguments), the typed codes of failed submissions, and describing a context.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";
import { isDamnitError } from "../src/core/errors.js";
import type { JobRequest } from "../src/core/job-request.js";
import { RunDatabase } from "../src/db/run-database.js";
import { clusterFollowUp, clusterFollowUpViaSlurm } from "../src/jobs/follow-up.js";
import { parseRunList, processingWay, reprocessRequests, runsToReprocess, selectRuns } from "../src/jobs/reprocess.js";
import { jobArguments, sbatch, sbatchInstalled } from "../src/jobs/sbatch.js";
import type { SlurmSettings } from "../src/jobs/slurm-settings.js";
import { pendingState } from "../src/messaging/messages.js";
import { writeSyntheticRun } from "../src/synth/write-run.js";
import { REPO_ROOT, tempDir } from "./helpers/tmp.js";

const P = 4242;
const haveSbatch = await sbatchInstalled();

/** A database for proposal P with runs 1, 2, 3 recorded, raw data written for runs 1 and 3 only. */
async function databaseWithRuns(): Promise<RunDatabase> {
  const root = join(tempDir(), "data");
  for (const run of [1, 3]) await writeSyntheticRun({ root, proposal: P, run, proc: false });
  const db = await RunDatabase.open(join(tempDir(), "db"), { create: true, initialSettings: { proposal: P } });
  db.setSetting("data_root", root);
  for (const run of [1, 2, 3]) db.ensureRun(P, run, { addedAt: 1_700_000_000 });
  return db;
}

function thrownBy(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error("nothing was thrown");
}

describe("reprocess: which runs", () => {
  it("reads run numbers, ranges and 'all', sorted and without repeats", () => {
    expect(parseRunList(["all"])).toBe("all");
    expect(parseRunList(["7", "1-3,2", " 5 - 6 "])).toEqual([1, 2, 3, 5, 6, 7]);
    for (const [items, message] of [
      [["1-x"], /ranges like 1-10,15, or 'all' \(got '1-x'\)/],
      [["5-2"], /run range 5-2 is backwards/],
      [["1-200000"], /run range 1-200000 is too long/],
      [["all", "3"], /got 'all'/],
    ] as const) {
      const err = thrownBy(() => parseRunList(items));
      expect(isDamnitError(err, "BAD_ARGUMENT"), String(err)).toBe(true);
      expect((err as Error).message).toMatch(message);
    }
  });

  it("takes the runs whose raw data exist: all of the database's, or those asked for", async () => {
    const db = await databaseWithRuns();
    try {
      expect(selectRuns(db, P, "all")).toEqual({ runs: [1, 3], skipped: [2] });
      expect(selectRuns(db, P, [3, 4])).toEqual({ runs: [3], skipped: [4] });
      // Mock runs need no data.
      expect(selectRuns(db, P, "all", { mock: true })).toEqual({ runs: [1, 2, 3], skipped: [] });
      expect(runsToReprocess(db, P, [1, 2, 3])).toEqual([1, 3]);
      const none = thrownBy(() => runsToReprocess(db, P, [2, 9]));
      expect(isDamnitError(none, "NO_RUN")).toBe(true);
      expect((none as Error).message).toBe(`no runs to process for proposal ${P}`);
      // A proposal with no directory under the data root at all.
      expect(isDamnitError(thrownBy(() => selectRuns(db, P + 1, [1])), "NO_RUN")).toBe(true);
    } finally {
      db.close();
    }
  });
});

describe("reprocess: Slurm or here", () => {
  it("follows --slurm and --local, and otherwise asks whether sbatch is installed", async () => {
    let asked = 0;
    const probe = (answer: boolean) => async () => {
      asked++;
      return answer;
    };
    expect(await processingWay({ slurm: true }, probe(false))).toBe("slurm");
    expect(await processingWay({ local: true }, probe(true))).toBe("local");
    expect(await processingWay({ slurm: false }, probe(true))).toBe("local");
    expect(asked).toBe(0);
    expect(await processingWay({}, probe(true))).toBe("slurm");
    expect(await processingWay({}, probe(false))).toBe("local");
    expect(await processingWay({ local: false }, probe(true))).toBe("slurm");
    expect(asked).toBe(3);
  });

  it("makes one request per run for all data, the first alone refreshing the variables table", () => {
    const requests = reprocessRequests(P, [4, 5, 9], { match: ["xgm"], mock: true, params: ["gain=2"] });
    expect(requests.map((r) => [r.run, r.data, r.updateVars])).toEqual([
      [4, "all", true],
      [5, "all", false],
      [9, "all", false],
    ]);
    for (const r of requests) expect([r.proposal, r.match, r.mock, r.params]).toEqual([P, ["xgm"], true, ["gain=2"]]);
    expect(new Set(requests.map((r) => r.processingId)).size).toBe(3);
  });
});

const SETTINGS: SlurmSettings = {
  time: "00:10:00",
  cpus: "2",
  mem: "4G",
  reservation: "",
  partition: "upex",
  nonclusterPartition: "",
  nonclusterSlurmCluster: "",
  clusterSlurmCluster: "",
  concurrentJobs: 15,
  damnitCommand: "damnit",
};

const FIRST_JOB: JobRequest = {
  proposal: P,
  run: 7,
  data: "raw",
  processingId: "first",
  match: ["heavy"],
  mock: false,
  updateVars: true,
  sandboxArgs: "sandbox --strict",
  params: ["gain=2"],
};

describe("the follow-up job for cluster variables", () => {
  it("on the same Slurm cluster, waits for this job to succeed; computes the cluster variables only", () => {
    const followUp = clusterFollowUp(FIRST_JOB, SETTINGS, "1234");
    expect(followUp.afterThisJob).toBe(true);
    expect(followUp.request.processingId).not.toBe("first");
    const args = jobArguments("/db", followUp.request, followUp.options, "/db/process_logs/r7-p4242.out");
    const script = args.findIndex((a) => a.endsWith("damnit-job.sh"));
    expect(args.slice(0, script)).toEqual([
      "--time",
      "00:10:00",
      "--partition",
      "upex",
      "--output",
      "/dev/null",
      "--open-mode=append",
      "--job-name",
      "r7-p4242-damnit",
      "--chdir",
      "/db",
      "--dependency=afterok:1234",
      "--kill-on-invalid-dep=yes",
    ]);
    // As DAMNIT's: no parameters are passed on to the follow-up.
    // The job opens its log itself (run-logged), so that Slurm never follows a symlink planted in process_logs/.
    expect(args.slice(script + 1, script + 5)).toEqual(["damnit", "run-logged", "/db/process_logs/r7-p4242.out", "--"]);
    expect(args.slice(script + 5)).toEqual([
      "damnit",
      "extract",
      String(P),
      "7",
      "raw",
      "--processing-id",
      followUp.request.processingId,
      "--cluster-job",
      "--match",
      "heavy",
      "--no-update-vars",
      "--sandbox-args",
      "sandbox --strict",
    ]);
  });

  it("on another Slurm cluster, goes there without a dependency", () => {
    const followUp = clusterFollowUp(FIRST_JOB, { ...SETTINGS, clusterSlurmCluster: "maxwell" }, "1234");
    expect(followUp.afterThisJob).toBe(false);
    const args = jobArguments("/db", followUp.request, followUp.options, "/db/log");
    expect(args.slice(0, 2)).toEqual(["--clusters", "maxwell"]);
    expect(args.filter((a) => a.startsWith("--dependency") || a.startsWith("--kill-on-invalid-dep"))).toEqual([]);
  });

  it("is only submitted from inside a Slurm job", async () => {
    const db = await databaseWithRuns();
    try {
      expect(clusterFollowUpViaSlurm(db, FIRST_JOB, { pendingJob: () => undefined }, undefined)).toBeUndefined();
      expect(clusterFollowUpViaSlurm(db, FIRST_JOB, { pendingJob: () => undefined }, "55")).toBeTypeOf("function");
    } finally {
      db.close();
    }
  });

  it("is announced as PENDING with its job id, and the local cluster as null", () => {
    expect(pendingState(FIRST_JOB, { jobId: "12_3", cluster: "" })).toEqual({
      processing_id: "first",
      proposal: P,
      run: 7,
      data: "raw",
      status: "PENDING",
      hostname: "",
      username: "",
      slurm_cluster: null,
      slurm_job_id: "12_3",
    });
    expect(pendingState(FIRST_JOB, { jobId: "9", cluster: "maxwell" }).slurm_cluster).toBe("maxwell");
  });
});

describe("failed submissions", () => {
  it("say SBATCH_NOT_INSTALLED when there is no sbatch, with the hint after the message", async () => {
    const err = await sbatch(["--wrap", "true"], { cwd: tempDir(), env: { PATH: tempDir() }, hint: "use --local to process here" }).catch((e: unknown) => e);
    expect(isDamnitError(err, "SBATCH_NOT_INSTALLED"), String(err)).toBe(true);
    expect((err as Error).message).toMatch(/^sbatch failed \(.*\): sbatch is not installed here \(no Slurm\) \(use --local to process here\)$/);
  });

  it.skipIf(!haveSbatch)("say SUBMIT_FAILED when sbatch refuses the job", async () => {
    const err = await sbatch(["--no-such-option-for-sbatch", "--wrap", "true"], { cwd: tempDir() }).catch((e: unknown) => e);
    expect(isDamnitError(err, "SUBMIT_FAILED"), String(err)).toBe(true);
    expect((err as Error).message).toMatch(/^sbatch failed \(exit \d+\): /);
  });
});

describe("describing a context", () => {
  it("lists the variables and refreshes the database's table with those that are not transient", async () => {
    // The compiled module: the context runner it starts is dist/src/extract/runner.js.
    const { readContext } = (await import(pathToFileURL(join(REPO_ROOT, "dist/src/extract/describe-context.js")).href)) as typeof import("../src/extract/describe-context.js");
    const db = await databaseWithRuns();
    const dir = db.dir;
    db.close();
    writeFileSync(
      join(dir, "context.ts"),
      [
        'import { Variable } from "damnit/context";',
        'export const frames = Variable({ transient: true }, () => 3);',
        'export const total = Variable({ title: "Total", tags: ["sum"], deps: { frames: "var#frames" } }, (_run, { frames }) => (frames as number) * 2);',
        "",
      ].join("\n"),
    );
    const described = await readContext(dir, { updateVars: false });
    expect(described.variables.map((v) => [v.name, v.transient])).toEqual([
      ["frames", true],
      ["total", false],
    ]);
    const before = await RunDatabase.open(dir);
    expect(before.listVariables().map((v) => v.name)).toEqual([]);
    before.close();
    await readContext(dir, { updateVars: true });
    const after = await RunDatabase.open(dir);
    try {
      expect(after.listVariables().map((v) => [v.name, v.title])).toEqual([["total", "Total"]]);
    } finally {
      after.close();
    }
  }, 60_000);
});
