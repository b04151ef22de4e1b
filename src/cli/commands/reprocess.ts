import { existsSync } from "node:fs";
import type { ArgumentsCamelCase, Argv, CommandModule } from "yargs";
import { DamnitError } from "../../core/errors.js";
import { dataRoot as defaultDataRoot, findProposalDirectory, runDirectory } from "../../exdf/open-run.js";
import { dataRootOf, processRunsLocally, type RunToProcess } from "../../extract/local.js";
import type { ExtractResult } from "../../extract/job.js";
import { log } from "../../log.js";
import type { RunDatabase } from "../../db/run-database.js";
import { newProcessingId, type JobRequest } from "../../jobs/request.js";
import { sbatchInstalled, submitArray, type SubmittedJob } from "../../jobs/sbatch.js";
import { slurmSettings } from "../../jobs/slurm-settings.js";
import { updateBrokers } from "../../messaging/brokers.js";
import { processingStateSet, updateTopic } from "../../messaging/messages.js";
import { createPublisher } from "../../messaging/publisher.js";
import { openForCommand } from "../open-database.js";
import { parseParams } from "../params.js";
import { progressBar } from "../progress.js";

interface Args {
  runs: string[];
  dir: string;
  proposal?: number;
  match?: string[];
  var?: string[];
  local?: boolean;
  slurm?: boolean;
  mock: boolean;
  concurrency?: number;
  param?: string[];
}

/** Run numbers from "all", "5", "1-10,15" (several arguments allowed). */
function parseRuns(items: readonly string[]): number[] | "all" {
  if (items.length === 1 && items[0] === "all") return "all";
  const runs = new Set<number>();
  for (const item of items) {
    for (const part of item.split(",")) {
      const m = /^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$/.exec(part);
      if (!m) throw new DamnitError("BAD_ARGUMENT", `Run numbers must be whole numbers or ranges like 1-10,15, or 'all' (got '${part}')`);
      const lo = Number(m[1]);
      const hi = m[2] === undefined ? lo : Number(m[2]);
      if (hi < lo) throw new DamnitError("BAD_ARGUMENT", `run range ${lo}-${hi} is backwards`);
      if (hi - lo > 100_000) throw new DamnitError("BAD_ARGUMENT", `run range ${lo}-${hi} is too long`);
      for (let r = lo; r <= hi; r++) runs.add(r);
    }
  }
  return [...runs].sort((a, b) => a - b);
}

export const reprocessCommand: CommandModule<object, Args> = {
  command: "reprocess <runs..>",
  describe: "Compute the context file's variables again for some runs (or all) of the database's proposal",
  builder: (y: Argv) =>
    y
      .positional("runs", { type: "string", array: true, demandOption: true, describe: "run numbers or ranges (1-10,15), or 'all' (the runs in the database)" })
      .option("dir", { type: "string", default: ".", describe: "database directory" })
      .option("proposal", { type: "number", describe: "proposal (default: the database's)" })
      .option("match", { type: "string", array: true, describe: "only variables whose name or title contains this (repeatable)" })
      .option("var", { type: "string", array: true, describe: "only this variable (repeatable; overrides --match)" })
      .option("local", { type: "boolean", describe: "process here (default when Slurm is not installed)" })
      .option("slurm", { type: "boolean", describe: "submit Slurm array jobs, concurrent_jobs at a time (default when sbatch is installed)" })
      .conflicts("local", "slurm")
      .option("mock", { type: "boolean", default: false, describe: "use a fake run of 10 trains instead of each run's data" })
      .option("concurrency", { type: "number", describe: "runs processed at once (default: the number of CPUs here; the database's concurrent_jobs on Slurm)" })
      .option("param", { type: "string", array: true, describe: "NAME=VALUE for param# dependencies" })
      .example("$0 reprocess all", "recompute every run in the database")
      .example("$0 reprocess 10-20 --match xgm", "recompute the XGM variables of runs 10 to 20") as unknown as Argv<Args>,
  handler: async (argv: ArgumentsCamelCase<Args>) => {
    const wanted = parseRuns(argv.runs);
    if (argv.concurrency !== undefined && (!Number.isInteger(argv.concurrency) || argv.concurrency < 1)) {
      throw new DamnitError("BAD_ARGUMENT", `--concurrency must be a whole number ≥ 1, not ${argv.concurrency}`);
    }
    const db = await openForCommand(argv.dir);
    try {
      const proposal = argv.proposal ?? db.proposal;
      if (proposal === undefined) throw new DamnitError("BAD_ARGUMENT", `no proposal set in ${db.path}; give --proposal or set it with 'damnit proposal N'`);
      const root = dataRootOf(db) ?? defaultDataRoot();
      const candidates = wanted === "all" ? db.listRuns(proposal).map((r) => r.run) : wanted;
      let runs = candidates;
      if (!argv.mock) {
        const proposalDir = findProposalDirectory(proposal, root);
        runs = candidates.filter((r) => existsSync(runDirectory(proposalDir, "raw", r)));
        const missing = candidates.filter((r) => !runs.includes(r));
        if (wanted === "all") log().info(`Reprocessing ${runs.length} runs already recorded, skipping ${missing.length}...`);
        else if (missing.length > 0) log().warn(`skipping ${missing.length} runs because they don't exist: [${missing.join(", ")}]`);
      }
      if (runs.length === 0) throw new DamnitError("NO_RUN", `no runs to process for proposal ${proposal}`);

      const viaSlurm = argv.slurm ?? (argv.local === true ? false : await sbatchInstalled());
      if (viaSlurm) {
        const requests: JobRequest[] = runs.map((run, i) => ({
          proposal,
          run,
          data: "all",
          processingId: newProcessingId(),
          match: argv.match,
          variables: argv.var,
          mock: argv.mock,
          updateVars: i === 0,
          params: argv.param,
        }));
        const settings = slurmSettings(db);
        const limit = argv.concurrency ?? settings.concurrentJobs;
        let jobs;
        try {
          jobs = await submitArray(db.dir, requests, { settings, limit });
        } catch (err) {
          throw new DamnitError("BAD_ARGUMENT", `${(err as Error).message} (use --local to process here)`);
        }
        await announcePending(db, requests, jobs);
        const arrays = [...new Set(jobs.map((j) => j.jobId.split("_")[0]))];
        console.log(
          `Submitted ${runs.length} run${runs.length === 1 ? "" : "s"} as Slurm array job${arrays.length === 1 ? "" : "s"} ${arrays.join(", ")} ` +
            `(at most ${limit} at a time); logs: process_logs/r<run>-p${proposal}.out`,
        );
        return;
      }

      const progress = progressBar(`Processing ${runs.length} runs`);
      let done = 0;
      const started = performance.now();
      const results = await processRunsLocally(
        db,
        runs.map((run) => ({ proposal, run })),
        {
          kind: "all",
          match: argv.match,
          variables: argv.var,
          mock: argv.mock,
          params: parseParams(argv.param ?? []),
          concurrency: argv.concurrency,
          onRun: () => progress.update(++done, runs.length),
        },
      );
      progress.finish();
      const summary = summarise(results, (performance.now() - started) / 1000);
      process.stdout.write(summary.text);
      if (summary.failedRuns > 0) process.exitCode = 1;
    } finally {
      db.close();
    }
  },
};


/** PENDING state for each submitted run, as DAMNIT's GUI sends after an array submission. */
async function announcePending(db: RunDatabase, requests: readonly JobRequest[], jobs: readonly SubmittedJob[]): Promise<void> {
  const publisher = createPublisher(updateBrokers(), log());
  try {
    await publisher.send(
      updateTopic(db.dbId),
      requests.map((r, i) =>
        processingStateSet({
          processing_id: r.processingId,
          proposal: r.proposal,
          run: r.run,
          data: r.data,
          status: "PENDING",
          hostname: "",
          username: "",
          slurm_cluster: jobs[i]!.cluster || null,
          slurm_job_id: jobs[i]!.jobId,
        }),
      ),
    );
  } finally {
    await publisher.close();
  }
}

/** "Processed 5 runs in 3.2 s: 4 ok, 1 failed" plus one line per failed run and per variable error. */
export function summarise(results: ReadonlyMap<RunToProcess, ExtractResult>, seconds: number): { text: string; failedRuns: number } {
  const entries = [...results.entries()].sort((a, b) => a[0].run - b[0].run);
  const failed = entries.filter(([, r]) => !r.ok);
  const errors = entries.flatMap(([run, r]) => r.errors.map(([name, e]) => ({ run: run.run, name, e })));
  const lines = [
    `Processed ${entries.length} run${entries.length === 1 ? "" : "s"} in ${seconds.toFixed(1)} s: ${entries.length - failed.length} ok, ${failed.length} failed; ${errors.length} variable error${errors.length === 1 ? "" : "s"}`,
  ];
  for (const [run, r] of failed) lines.push(`  r${run.run} failed: ${(r.message ?? "").split("\n").join("\n    ")}`);
  // Group variable errors by variable and first line, so 100 runs failing alike read as one line.
  const groups = new Map<string, number[]>();
  for (const { run, name, e } of errors) {
    // The whole message on one line (a dependency tree's first line alone says nothing), cut to fit.
    const flat = e.message.replaceAll(/\s*\n\s*/g, " ");
    const key = `${name}: ${e.cls}: ${flat.length > 160 ? `${flat.slice(0, 159)}…` : flat}`;
    groups.set(key, [...(groups.get(key) ?? []), run]);
  }
  for (const [key, runs] of groups) lines.push(`  ${key} (run${runs.length === 1 ? "" : "s"} ${runs.join(", ")})`);
  if (entries.length > 0) lines.push(`Logs: process_logs/r<run>-p${entries[0]![0].proposal}.out`);
  return { text: lines.join("\n") + "\n", failedRuns: failed.length };
}
