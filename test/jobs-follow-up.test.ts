/**
 * A Slurm job whose selection has cluster variables submits a follow-up job for them (spec §2.6), with a fake
 * `sbatch` that records its arguments: on the same Slurm cluster it waits for this job (`--dependency=afterok:<id>`);
 * on another cluster, where a dependency cannot name this job, it is submitted without one. Through `damnit extract`
 * (what a job runs), so the test holds wherever that command's orchestration lives.
 */
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { RunDatabase } from "../src/db/index.js";
import { damnit } from "./helpers/cli.js";
import { tempDir } from "./helpers/tmp.js";

const CONTEXT = [
  'import { Variable } from "damnit/context";',
  'export const light = Variable({ title: "Light" }, () => 1);',
  'export const heavy = Variable({ title: "Heavy", cluster: true, deps: { light: "var#light" } }, (_run, { light }) => (light as number) + 41);',
  "",
].join("\n");

/** A database with a cluster variable and the given Slurm clusters; a fake sbatch first on PATH. */
async function jobSetup(clusters: { cluster: string; noncluster: string }): Promise<{ dbDir: string; argsFile: string; env: Record<string, string> }> {
  const tmp = tempDir();
  const dbDir = join(tmp, "db");
  const db = await RunDatabase.open(dbDir, { create: true, initialSettings: { proposal: 1234 } });
  db.setSetting("cluster_slurm_cluster", clusters.cluster);
  db.setSetting("noncluster_slurm_cluster", clusters.noncluster);
  db.close();
  writeFileSync(join(dbDir, "context.ts"), CONTEXT);
  const bin = join(tmp, "bin");
  mkdirSync(bin);
  const argsFile = join(tmp, "sbatch-args");
  writeFileSync(join(bin, "sbatch"), `#!/bin/sh\nprintf '%s\\n' "$@" > ${JSON.stringify(argsFile)}\necho 4243\n`);
  chmodSync(join(bin, "sbatch"), 0o755);
  return { dbDir, argsFile, env: { PATH: `${bin}:${process.env.PATH ?? ""}`, SLURM_JOB_ID: "4242" } };
}

function sbatchArgs(file: string): string[] {
  return readFileSync(file, "utf8").trimEnd().split("\n");
}

/** The value following `option` in `args` (e.g. `--clusters solaris`). */
const optionValue = (args: readonly string[], option: string) => args[args.indexOf(option) + 1];

describe("cluster-variable follow-up jobs", () => {
  it("on the same Slurm cluster, waits for this job with --dependency=afterok:<id>", async () => {
    const s = await jobSetup({ cluster: "solaris", noncluster: "solaris" });
    const result = damnit(["extract", "1234", "1", "raw", "--mock"], { cwd: s.dbDir, env: s.env });
    expect(result.status, result.stderr).toBe(0);
    const args = sbatchArgs(s.argsFile);
    expect(args.filter((a) => a.startsWith("--dependency")), args.join(" ")).toEqual(["--dependency=afterok:4242"]);
    expect(args).toContain("--kill-on-invalid-dep=yes");
    expect(optionValue(args, "--clusters")).toBe("solaris");
    expect(args).toContain("--cluster-job");
    expect(args.slice(args.indexOf("extract"), args.indexOf("extract") + 4)).toEqual(["extract", "1234", "1", "raw"]);
    expect(result.stderr).toMatch(/Submitted Slurm job 4243 for the cluster variables \(after this job succeeds\)/);
  });

  it("on another Slurm cluster, is submitted there without a dependency on this job", async () => {
    const s = await jobSetup({ cluster: "solaris", noncluster: "" });
    const result = damnit(["extract", "1234", "1", "raw", "--mock"], { cwd: s.dbDir, env: s.env });
    expect(result.status, result.stderr).toBe(0);
    const args = sbatchArgs(s.argsFile);
    expect(args.filter((a) => a.startsWith("--dependency")), args.join(" ")).toEqual([]);
    expect(optionValue(args, "--clusters")).toBe("solaris");
    expect(args).toContain("--cluster-job");
  });
});
