import type { ArgumentsCamelCase, Argv, CommandModule } from "yargs";
import { recordJobEnd } from "../../audit/err-files.js";
import { DATA_KINDS, type DataKind } from "../../core/data-kind.js";
import { assertOpenForWriting } from "../../bookkeeping/closed.js";
import { DamnitError } from "../../core/errors.js";
import type { JobRequest } from "../../core/job-request.js";
import { processRunsLocally } from "../../extract/local.js";
import { clusterFollowUpViaSlurm } from "../../jobs/follow-up.js";
import { contextHash, idempotencyKey } from "../../jobs/idempotency.js";
import { newProcessingId } from "../../jobs/request.js";
import { sandboxWrapper } from "../../jobs/shell-words.js";
import { log } from "../../log.js";
import { updateBrokers } from "../../messaging/brokers.js";
import { ProcessingReporter } from "../../messaging/processing-reporter.js";
import { createPublisher } from "../../messaging/publisher.js";
import { openForCommand } from "../open-database.js";
import { parseParams } from "../params.js";

interface Args {
  proposal: number;
  run: number;
  data: DataKind;
  dir: string;
  match?: string[];
  var?: string[];
  clusterJob: boolean;
  mock: boolean;
  force: boolean;
  updateVars: boolean;
  param?: string[];
  processingId?: string;
  sandboxArgs?: string;
  replayLookups: boolean;
  pinCalibration: boolean;
}

/** What a processing job runs: extract one run's variables into the database in the current directory. */
export const extractCommand: CommandModule<object, Args> = {
  command: "extract <proposal> <run> <data>",
  describe: "Compute the context file's variables for one run and store them (what a processing job runs)",
  builder: (y: Argv) =>
    y
      .positional("proposal", { type: "number", demandOption: true, describe: "proposal number" })
      .positional("run", { type: "number", demandOption: true, describe: "run number" })
      .positional("data", { choices: DATA_KINDS, demandOption: true, describe: "raw: migrated data; proc: calibrated; all: both" })
      .option("dir", { type: "string", default: ".", describe: "database directory" })
      .option("match", { type: "string", array: true, describe: "only variables whose name or title contains this (repeatable)" })
      .option("var", { type: "string", array: true, describe: "only this variable (repeatable; overrides --match)" })
      .option("cluster-job", { type: "boolean", default: false, describe: "compute the cluster variables (a follow-up job)" })
      .option("mock", { type: "boolean", default: false, describe: "use a fake run of 10 trains instead of the run's data" })
      .option("force", {
        type: "boolean",
        default: false,
        describe: "store errors even if the run's files cannot all be read (default: earlier values are kept then)",
      })
      .option("update-vars", { type: "boolean", default: true, describe: "refresh the variables table from the context file" })
      .option("param", { type: "string", array: true, describe: "NAME=VALUE for param# dependencies (VALUE as JSON, else a string)" })
      .option("processing-id", { type: "string", describe: "identifier of this processing request (for update messages)" })
      .option("replay-lookups", { type: "boolean", default: false, describe: "answer external lookups from lookups.sqlite only (never ask upstreams)" })
      .option("pin-calibration", {
        type: "boolean",
        default: false,
        describe: "calibration.get gives each variable the range and version it used last time (calibration_usage.sqlite)",
      })
      .option("sandbox-args", { type: "string", describe: "wrap user code: <these words> <proposal> -- <command>" })
      .example("$0 extract 1234 5 raw", "process run 5 of proposal 1234 with the context file here") as unknown as Argv<Args>,
  handler: async (argv: ArgumentsCamelCase<Args>) => {
    for (const [name, value] of [["proposal", argv.proposal], ["run", argv.run]] as const) {
      if (!Number.isSafeInteger(value) || value < 0) throw new DamnitError("BAD_ARGUMENT", `${name} must be a whole number ≥ 0, not ${value}`);
    }
    let wrapper: string[];
    try {
      wrapper = sandboxWrapper(argv.sandboxArgs, argv.proposal);
    } catch (err) {
      throw new DamnitError("BAD_ARGUMENT", `--sandbox-args: ${(err as Error).message}`);
    }
    const db = await openForCommand(argv.dir);
    try {
      assertOpenForWriting(db, `process p${argv.proposal} r${argv.run}`);
    } catch (err) {
      db.close();
      throw err;
    }
    const publisher = createPublisher(updateBrokers(), log());
    const request: JobRequest = {
      proposal: argv.proposal,
      run: argv.run,
      data: argv.data,
      processingId: argv.processingId ?? newProcessingId(),
      cluster: argv.clusterJob,
      match: argv.match,
      variables: argv.var,
      mock: argv.mock,
      force: argv.force,
      updateVars: argv.updateVars,
      sandboxArgs: argv.sandboxArgs,
      params: argv.param,
      replayLookups: argv.replayLookups,
      pinCalibration: argv.pinCalibration,
    };
    const reporter = new ProcessingReporter(publisher, db.dbId, request);
    reporter.running();
    try {
      const runs = [{ proposal: request.proposal, run: request.run }];
      const results = await processRunsLocally(db, runs, {
        data: request.data,
        processingId: request.processingId,
        match: request.match,
        variables: request.variables,
        cluster: request.cluster,
        mock: request.mock,
        force: request.force,
        updateVars: request.updateVars,
        params: parseParams(request.params ?? []),
        logFd: 2,
        wrapper,
        events: reporter,
        lookups: { processingId: request.processingId, mode: request.replayLookups ? "replay" : undefined },
        pinCalibration: request.pinCalibration,
        // Inside a Slurm job, the cluster variables go to a follow-up job that starts once this one succeeded.
        onClusterFollowUp: clusterFollowUpViaSlurm(db, request, reporter),
      });
      const result = results.get(runs[0]!)!;
      // The run's .err file when this job failed (for `damnit replay --err`); resolved when it succeeded.
      const key = idempotencyKey(request.proposal, request.run, request.data, contextHash(db.dir));
      recordJobEnd(request, { origin: "job", dbDir: db.dir, idempotencyKey: key }, result);
      if (!result.ok) process.exitCode = 1;
    } finally {
      await reporter.finished();
      await publisher.close();
      db.close();
    }
  },
};
