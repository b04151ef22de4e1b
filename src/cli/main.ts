/** The `damnit` command line: global options, the list of commands, and how failures are reported. */
import yargs from "yargs";
import { hideBin } from "yargs/helpers";
import { configureLogger, type LogFormat } from "../log.js";
import { dataCommand } from "./commands/data.js";
import { demoCommand } from "./commands/demo.js";
import { extractCommand } from "./commands/extract.js";
import { readContextCommand } from "./commands/read-context.js";
import { reprocessCommand } from "./commands/reprocess.js";
import { dbConfigCommand } from "./commands/db-config.js";
import { migrateCommand } from "./commands/migrate.js";
import { newIdCommand } from "./commands/new-id.js";
import { proposalCommand } from "./commands/proposal.js";
import { showCommand } from "./commands/show.js";
import { synthCommand } from "./commands/synth.js";
import { listenCommand } from "./commands/listen.js";
import { listenerCommand } from "./commands/listener.js";
import { runTaskCommand } from "./commands/run-task.js";
import { calibCommand } from "./commands/calib.js";
import { EXIT_USAGE, reportError } from "./errors.js";

export async function main(argv: string[]): Promise<number> {
  const debug = argv.includes("--debug");
  let usageError: string | undefined;
  const parser = yargs(argv)
    .scriptName("damnit")
    .usage("$0 <command> [options]\n\nAutomatic processing of experiment runs into a table of runs × variables.")
    .option("debug", { type: "boolean", default: false, describe: "debug logging and stack traces" })
    .option("log-format", { choices: ["auto", "json", "pretty"] as const, default: "auto" as LogFormat, describe: "log output" })
    .middleware((args) => {
      configureLogger({ format: args.logFormat as LogFormat, level: args.debug ? "debug" : undefined });
    })
    .command(proposalCommand)
    .command(showCommand)
    .command(dbConfigCommand)
    .command(newIdCommand)
    .command(migrateCommand)
    .command(synthCommand)
    .command(dataCommand)
    .command(readContextCommand)
    .command(extractCommand)
    .command(reprocessCommand)
    .command(demoCommand)
    .command(listenCommand)
    .command(listenerCommand)
    .command(runTaskCommand)
    .command(calibCommand)
    .demandCommand(1, "Give a command; 'damnit --help' lists them.")
    .strict()
    .recommendCommands()
    .help()
    .alias("help", "h")
    .version()
    .wrap(Math.min(110, process.stdout.columns ?? 100))
    .fail((msg, err) => {
      if (err) throw err;
      usageError = msg;
    });
  try {
    await parser.parseAsync();
  } catch (err) {
    return reportError(err, debug);
  }
  if (usageError !== undefined) {
    process.stderr.write(`damnit: ${usageError}\nRun 'damnit --help' for usage.\n`);
    return EXIT_USAGE;
  }
  // Commands that finish their work but report a failure (a job that could not run) set process.exitCode.
  return typeof process.exitCode === "number" ? process.exitCode : 0;
}

export async function run(): Promise<void> {
  // `damnit data get … | head`: a reader that stops early is not an error.
  process.stdout.on("error", (err: NodeJS.ErrnoException) => {
    if (err.code === "EPIPE") process.exit(0);
    throw err;
  });
  process.exitCode = await main(hideBin(process.argv));
}
