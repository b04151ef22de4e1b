/**
 * Jobs through real Slurm: `damnit reprocess --slurm` as an array job (one task per run, output in each run's
 * process log), and a job whose context has cluster variables submitting its follow-up job with a dependency.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect } from "vitest";
import { damnit } from "./helpers/cli.js";
import { runVariableRows } from "./helpers/db.js";
import { demoDatabase } from "./helpers/listener.js";
import { itSlurm, jobInfo, waitForJob } from "./helpers/slurm.js";
import { tempDir } from "./helpers/tmp.js";

function values(dbDir: string): Array<{ run: number; name: string; value: unknown; timestamp: number }> {
  return runVariableRows(dbDir);
}

describe("jobs on Slurm", () => {
  itSlurm(
    "reprocess --slurm submits one array job, limited by concurrent_jobs, that recomputes every run",
    async () => {
      const db = demoDatabase(tempDir(), 2);
      expect(damnit(["db-config", "concurrent_jobs", "1", "--num", "-C", db]).status).toBe(0);
      const before = values(db).filter((v) => v.name === "n_trains");
      const result = damnit(["reprocess", "all", "--slurm", "--dir", db]);
      expect(result.status, result.stderr).toBe(0);
      const arrayId = /Slurm array job (\d+) \(at most 1 at a time\)/.exec(result.stdout)?.[1];
      expect(arrayId, result.stdout).toBeDefined();
      const info = await jobInfo(`${arrayId}_0`);
      expect(info.JobName).toBe("p1234-damnit");
      for (const task of ["0", "1"]) expect((await waitForJob(`${arrayId}_${task}`, 120_000)).state).toBe("COMPLETED");
      const after = values(db).filter((v) => v.name === "n_trains");
      expect(after.map((v) => v.run)).toEqual([1, 2]);
      for (const [i, row] of after.entries()) expect(row.timestamp).toBeGreaterThan(before[i]!.timestamp);
      for (const run of [1, 2]) expect(readFileSync(join(db, "process_logs", `r${run}-p1234.out`), "utf8")).toMatch(new RegExp(`Stored \\d+ results for r${run} \\(p1234\\)`));
    },
    180_000,
  );

  itSlurm(
    "a job whose context has cluster variables submits a follow-up job that starts after it succeeded",
    async () => {
      const db = demoDatabase(tempDir(), 1);
      writeFileSync(
        join(db, "context.ts"),
        [
          'import { Variable } from "damnit/context";',
          'export const light = Variable({ title: "Light" }, () => 1);',
          'export const heavy = Variable({ title: "Heavy", cluster: true, deps: { light: "var#light" } }, (_run, { light }) => (light as number) + 41);',
          "",
        ].join("\n"),
      );
      const result = damnit(["reprocess", "1", "--slurm", "--dir", db]);
      expect(result.status, result.stderr).toBe(0);
      const arrayId = /Slurm array job (\d+)/.exec(result.stdout)![1];
      expect((await waitForJob(`${arrayId}_0`, 120_000)).state).toBe("COMPLETED");
      const log = readFileSync(join(db, "process_logs", "r1-p1234.out"), "utf8");
      const followUp = /Submitted Slurm job (\d+) for the cluster variables/.exec(log)?.[1];
      expect(followUp, log).toBeDefined();
      expect((await jobInfo(followUp!)).Dependency ?? "").not.toMatch(/never/i);
      expect((await waitForJob(followUp!, 120_000)).state).toBe("COMPLETED");
      const rows = values(db).filter((v) => v.run === 1);
      expect(rows.find((v) => v.name === "light")?.value).toBe(1);
      expect(rows.find((v) => v.name === "heavy")?.value).toBe(42);
    },
    180_000,
  );
});
