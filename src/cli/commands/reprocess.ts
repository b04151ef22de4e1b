/** `damnit reprocess`: compute runs again, as Slurm array jobs or here (the work is in src/jobs/reprocess.ts). */
import type { ArgumentsCamelCase, Argv, CommandModule } from "yargs";
import { DamnitError } from "../../core/errors.js";
import { summariseResults } from "../../extract/results-summary.js";
import { parseRunList, processingWay, reprocessHere, runsToReprocess, submitReprocessing } from "../../jobs/reprocess.js";
import { openForCommand } from "../open-database.js";
import { parseParams } from "../params.js";
import { progressBar } from "../progress.js";
import { checkReproducible } from "../../provenance/check-reproducible.js";
import type { RunDatabase } from "../../db/run-database.js";

/** --check-reproducible: reprocess in a scratch copy and report every value that differs (exit 1 if any). */
async function reproduce(db: RunDatabase, proposal: number, runs: readonly number[], argv: ArgumentsCamelCase<Args>): Promise<void> {
  const progress = progressBar(`Reprocessing ${runs.length} runs in a scratch copy`);
  let done = 0;
  const report = await checkReproducible(db, proposal, runs, {
    match: argv.match,
    variables: argv.var,
    mock: argv.mock,
    params: parseParams(argv.param ?? []),
    concurrency: argv.concurrency,
    scratchIn: argv.scratch,
    keepScratch: argv.keepScratch,
    onRun: () => progress.update(++done, runs.length),
  });
  progress.finish();
  const lines: string[] = [];
  for (const r of report.runs) {
    const mine = report.differences.filter((d) => d.run === r.run);
    const state = !r.ok ? `did not process again: ${(r.message ?? "failed").split("\n")[0]}` : mine.length === 0 ? "same" : `${mine.length} differ`;
    lines.push(`r${r.run}: ${r.compared} values compared, ${state}`);
    for (const d of mine) lines.push(`  ${d.variable}: ${d.what}: stored ${d.stored}, reproduced ${d.reproduced}`);
    if (r.unstored.length > 0) lines.push(`  (also computed, never stored before: ${r.unstored.join(", ")})`);
  }
  const failed = report.runs.filter((r) => !r.ok).length;
  const compared = report.runs.reduce((n, r) => n + r.compared, 0);
  lines.push(
    `${report.differences.length === 0 && failed === 0 ? "Reproducible" : "NOT reproducible"}: ${report.differences.length} differences in ${compared} values of ${report.runs.length} runs` +
      (failed > 0 ? `; ${failed} runs did not process again` : "") +
      (report.kept ? ` (scratch copy kept in ${report.scratch})` : ""),
  );
  process.stdout.write(`${lines.join("\n")}\n`);
  if (report.differences.length > 0 || failed > 0) process.exitCode = 1;
}

interface Args {
  runs: string[];
  dir: string;
  proposal?: number;
  match?: string[];
  var?: string[];
  local?: boolean;
  slurm?: boolean;
  mock: boolean;
  force: boolean;
  concurrency?: number;
  param?: string[];
  replayLookups: boolean;
  checkReproducible?: boolean;
  scratch?: string;
  keepScratch: boolean;
  pinCalibration: boolean;
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
      .option("force", {
        type: "boolean",
        default: false,
        describe: "store errors even for runs whose files cannot all be read (default: such runs keep their earlier values)",
      })
      .option("concurrency", { type: "number", describe: "runs processed at once (default: the number of CPUs here; the database's concurrent_jobs on Slurm)" })
      .option("param", { type: "string", array: true, describe: "NAME=VALUE for param# dependencies" })
      .option("replay-lookups", {
        type: "boolean",
        default: false,
        describe: "external lookups (lookup.get) answered from lookups.sqlite only, as first recorded; an unrecorded one fails its variable",
      })
      .option("check-reproducible", {
        // no default: yargs' conflicts() counts a defaulted option as given
        type: "boolean",
        describe: "process the runs again in a scratch copy (lookups replayed), compare every value with the stored one, list each that differs; exit 1 if any",
      })
      .option("scratch", { type: "string", describe: "with --check-reproducible: make the scratch copy in this directory (default: the system's temporary one)" })
      .option("keep-scratch", { type: "boolean", default: false, describe: "with --check-reproducible: keep the scratch copy (and its process_logs) afterwards" })
      .conflicts("check-reproducible", "slurm")
      .option("pin-calibration", {
        type: "boolean",
        default: false,
        describe: "calibration.get gives each variable exactly the range and version it used last time; one since deleted fails the variable",
      })
      .example("$0 reprocess all", "recompute every run in the database")
      .example("$0 reprocess 1-5 --check-reproducible", "would runs 1 to 5 give the same values again?")
      .example("$0 reprocess 10-20 --match xgm", "recompute the XGM variables of runs 10 to 20") as unknown as Argv<Args>,
  handler: async (argv: ArgumentsCamelCase<Args>) => {
    const wanted = parseRunList(argv.runs);
    if (argv.concurrency !== undefined && (!Number.isInteger(argv.concurrency) || argv.concurrency < 1)) {
      throw new DamnitError("BAD_ARGUMENT", `--concurrency must be a whole number ≥ 1, not ${argv.concurrency}`);
    }
    const db = await openForCommand(argv.dir);
    try {
      const proposal = argv.proposal ?? db.proposal;
      if (proposal === undefined) throw new DamnitError("BAD_ARGUMENT", `no proposal set in ${db.path}; give --proposal or set it with 'damnit proposal N'`);
      const runs = runsToReprocess(db, proposal, wanted, { mock: argv.mock });
      const selection = { match: argv.match, variables: argv.var, mock: argv.mock, force: argv.force, replayLookups: argv.replayLookups, pinCalibration: argv.pinCalibration };
      if (argv.checkReproducible) {
        await reproduce(db, proposal, runs, argv);
        return;
      }

      if ((await processingWay({ slurm: argv.slurm, local: argv.local })) === "slurm") {
        const { arrays, limit } = await submitReprocessing(db, proposal, runs, {
          ...selection,
          params: argv.param,
          concurrency: argv.concurrency,
          hint: "use --local to process here",
        });
        console.log(
          `Submitted ${runs.length} run${runs.length === 1 ? "" : "s"} as Slurm array job${arrays.length === 1 ? "" : "s"} ${arrays.join(", ")} ` +
            `(at most ${limit} at a time); logs: process_logs/r<run>-p${proposal}.out`,
        );
        return;
      }

      const progress = progressBar(`Processing ${runs.length} runs`);
      let done = 0;
      const { results, seconds } = await reprocessHere(db, proposal, runs, {
        ...selection,
        params: parseParams(argv.param ?? []),
        concurrency: argv.concurrency,
        onRun: () => progress.update(++done, runs.length),
      });
      progress.finish();
      const summary = summariseResults(results, seconds);
      process.stdout.write(summary.text);
      if (summary.failedRuns > 0) process.exitCode = 1;
    } finally {
      db.close();
    }
  },
};
