import type { ArgumentsCamelCase, Argv, CommandModule } from "yargs";
import { DamnitError } from "../../db/errors.js";
import { processRunsLocally } from "../../extract/local.js";
import { openForCommand } from "../open-database.js";
import { parseParams } from "../params.js";

interface Args {
  proposal: number;
  run: number;
  data: "raw" | "proc" | "all";
  dir: string;
  match?: string[];
  var?: string[];
  clusterJob: boolean;
  mock: boolean;
  updateVars: boolean;
  param?: string[];
  processingId?: string;
}

/** What a processing job runs: extract one run's variables into the database in the current directory. */
export const extractCommand: CommandModule<object, Args> = {
  command: "extract <proposal> <run> <data>",
  describe: "Compute the context file's variables for one run and store them (what a processing job runs)",
  builder: (y: Argv) =>
    y
      .positional("proposal", { type: "number", demandOption: true, describe: "proposal number" })
      .positional("run", { type: "number", demandOption: true, describe: "run number" })
      .positional("data", { choices: ["raw", "proc", "all"] as const, demandOption: true, describe: "raw: migrated data; proc: calibrated; all: both" })
      .option("dir", { type: "string", default: ".", describe: "database directory" })
      .option("match", { type: "string", array: true, describe: "only variables whose name or title contains this (repeatable)" })
      .option("var", { type: "string", array: true, describe: "only this variable (repeatable; overrides --match)" })
      .option("cluster-job", { type: "boolean", default: false, describe: "compute the cluster variables (a follow-up job)" })
      .option("mock", { type: "boolean", default: false, describe: "use a fake run of 10 trains instead of the run's data" })
      .option("update-vars", { type: "boolean", default: true, describe: "refresh the variables table from the context file" })
      .option("param", { type: "string", array: true, describe: "NAME=VALUE for param# dependencies (VALUE as JSON, else a string)" })
      .option("processing-id", { type: "string", describe: "identifier of this processing request (for messages)" })
      .example("$0 extract 1234 5 raw", "process run 5 of proposal 1234 with the context file here") as unknown as Argv<Args>,
  handler: async (argv: ArgumentsCamelCase<Args>) => {
    for (const [name, value] of [["proposal", argv.proposal], ["run", argv.run]] as const) {
      if (!Number.isSafeInteger(value) || value < 0) throw new DamnitError("BAD_ARGUMENT", `${name} must be a whole number ≥ 0, not ${value}`);
    }
    const db = await openForCommand(argv.dir);
    try {
      const runs = [{ proposal: argv.proposal, run: argv.run }];
      const results = await processRunsLocally(db, runs, {
        kind: argv.data,
        match: argv.match,
        variables: argv.var,
        clusterJob: argv.clusterJob,
        mock: argv.mock,
        updateVars: argv.updateVars,
        params: parseParams(argv.param ?? []),
        logFd: 2,
      });
      const result = results.get(runs[0]!)!;
      if (!result.ok) process.exitCode = 1;
    } finally {
      db.close();
    }
  },
};
