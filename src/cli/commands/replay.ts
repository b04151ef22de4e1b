/**
 * `damnit replay`: submit requests again from audit trails (`--audit FILE…`, after an outage or a bad context) or
 * from the `.err` files of failed ones (`--err`). Selection and de-duplication are src/audit/replay-select.ts,
 * submission src/jobs/replay.ts; this file parses arguments and prints what happened.
 */
import type { ArgumentsCamelCase, Argv, CommandModule } from "yargs";
import { parseTimeOption, selectFromAudit, selectFromErrFiles, type ReplaySelection } from "../../audit/replay-select.js";
import { DamnitError } from "../../core/errors.js";
import { processingWay } from "../../jobs/reprocess.js";
import { replayRequests } from "../../jobs/replay.js";
import { log } from "../../log.js";

interface Args {
  audit?: string[];
  err: boolean;
  dir?: string[];
  since?: string;
  until?: string;
  run?: number;
  proposal?: number;
  failedOnly: boolean;
  again: boolean;
  dryRun: boolean;
  local?: boolean;
  slurm?: boolean;
  concurrency?: number;
}

function wholeNumber(name: string, value: number | undefined): void {
  if (value !== undefined && (!Number.isSafeInteger(value) || value < 0)) throw new DamnitError("BAD_ARGUMENT", `--${name} must be a whole number, not ${value}`);
}

export const replayCommand: CommandModule<object, Args> = {
  command: "replay",
  describe: "Submit requests again from an audit trail (--audit) or from the .err files of failed ones (--err)",
  builder: (y: Argv) =>
    y
      .option("audit", { type: "string", array: true, describe: "audit trail file(s): <db>/audit/requests.log and its rotated requests.log.<YYYYmmdd>" })
      .option("err", { type: "boolean", default: false, describe: "the unresolved process_logs/*.err files of the database(s) (--dir)" })
      .option("dir", { type: "string", array: true, describe: "database directory (--err: default .; --audit: default the trail's own database)" })
      .option("since", { type: "string", describe: "--audit: requests at or after this time (20261202-153000, 20261202, 2026-12-02T15:30; local time)" })
      .option("until", { type: "string", describe: "--audit: requests at or before this time" })
      .option("run", { type: "number", describe: "only this run" })
      .option("proposal", { type: "number", describe: "only this proposal" })
      .option("failed-only", { type: "boolean", default: false, describe: "--audit: only requests whose submission failed" })
      .option("again", { type: "boolean", default: false, describe: "--audit: also requests replayed before (by default a request replayed successfully is not replayed again)" })
      .option("dry-run", { type: "boolean", default: false, describe: "list what would be submitted; submit nothing" })
      .option("local", { type: "boolean", describe: "process here (default when Slurm is not installed)" })
      .option("slurm", { type: "boolean", describe: "submit Slurm array jobs (default when sbatch is installed)" })
      .conflicts("local", "slurm")
      .option("concurrency", { type: "number", describe: "runs at once (default: the database's concurrent_jobs on Slurm; the CPUs here)" })
      .example("$0 replay --audit /data/db/audit/requests.log --since 20261202-080000", "submit every request recorded since 8:00 (after an audit-only outage)")
      .example("$0 replay --err --dir /data/db --dry-run", "list the failed requests that would be submitted again") as unknown as Argv<Args>,
  handler: async (argv: ArgumentsCamelCase<Args>) => {
    wholeNumber("run", argv.run);
    wholeNumber("proposal", argv.proposal);
    if (argv.concurrency !== undefined && (!Number.isInteger(argv.concurrency) || argv.concurrency < 1)) {
      throw new DamnitError("BAD_ARGUMENT", `--concurrency must be a whole number ≥ 1, not ${argv.concurrency}`);
    }
    let selection: ReplaySelection;
    if (argv.err && argv.audit) throw new DamnitError("BAD_ARGUMENT", "--audit and --err are two ways of choosing what to replay: give one");
    if (argv.err) {
      for (const name of ["since", "until", "failed-only"] as const) {
        if (argv[name === "failed-only" ? "failedOnly" : name]) throw new DamnitError("BAD_ARGUMENT", `--${name} is for --audit; .err files are all failed requests`);
      }
      selection = selectFromErrFiles(argv.dir ?? ["."], { proposal: argv.proposal });
    } else if (argv.audit && argv.audit.length > 0) {
      if ((argv.dir?.length ?? 0) > 1) throw new DamnitError("BAD_ARGUMENT", "--audit takes one --dir (the database the trail's requests are for)");
      selection = selectFromAudit(
        argv.audit,
        {
          since: argv.since === undefined ? undefined : parseTimeOption("since", argv.since),
          until: argv.until === undefined ? undefined : parseTimeOption("until", argv.until),
          run: argv.run,
          proposal: argv.proposal,
          failedOnly: argv.failedOnly,
          again: argv.again,
        },
        { dir: argv.dir?.[0] },
      );
    } else {
      throw new DamnitError("BAD_ARGUMENT", "say what to replay: --audit FILE… (an audit trail) or --err (the .err files of failed requests)");
    }
    if (argv.run !== undefined && argv.err) selection = { ...selection, candidates: selection.candidates.filter((c) => c.record.run === argv.run) };

    for (const p of selection.problems) log().warn(`Skipping ${p.file} line ${p.line}: ${p.reason}`);
    const { candidates, duplicates } = selection;
    const replayed = selection.replayed ?? 0;
    const dupText =
      (duplicates > 0 ? ` (${duplicates} older cop${duplicates === 1 ? "y" : "ies"} of the same requests left out)` : "") +
      (replayed > 0 ? ` (${replayed} replayed before left out; --again to replay them anyway)` : "");
    if (candidates.length === 0) {
      console.log(`Nothing to replay${dupText}`);
      return;
    }
    const way = argv.dryRun ? "local" : await processingWay({ slurm: argv.slurm, local: argv.local });
    const outcomes = await replayRequests(candidates, { way, dryRun: argv.dryRun, concurrency: argv.concurrency });
    const what = (c: (typeof candidates)[number]) => {
      const sel = c.record.variables.length ? ` --var ${c.record.variables.join(",")}` : c.record.match.length ? ` --match ${c.record.match.join(",")}` : "";
      return `p${c.record.proposal} r${c.record.run} (${c.record.run_data}${c.record.cluster ? ", cluster" : ""})${sel} [${c.record.processing_id}, ${c.time}]`;
    };
    let bad = 0;
    for (const o of outcomes) {
      if (o.action === "would-submit") console.log(`would submit ${what(o.candidate)} for ${o.candidate.dbDir}`);
      else if (o.action === "submitted") console.log(`submitted ${what(o.candidate)} as Slurm job ${o.detail} (${o.processingId})`);
      else if (o.action === "local") console.log(`processed ${what(o.candidate)} here: ${o.detail} (${o.processingId})`);
      else {
        bad++;
        log().error(`${o.action === "refused" ? "Refused" : "Failed"}: ${what(o.candidate)}: ${o.detail}`);
      }
    }
    const done = outcomes.length - bad;
    console.log(`${argv.dryRun ? "Would submit" : "Replayed"} ${done} of ${outcomes.length} request${outcomes.length === 1 ? "" : "s"}${dupText}${bad ? `; ${bad} refused or failed` : ""}`);
    if (bad > 0) process.exitCode = 1;
  },
};
