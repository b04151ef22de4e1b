/**
 * `damnit run-logged <log> -- <command…>`: the body of a single Slurm job (submitted with `--output /dev/null`): run
 * the command with its output appended to the run's process log, opened safely by us (see jobs/run-into-log.ts).
 * Hidden: only our own submissions use it.
 */
import type { ArgumentsCamelCase, Argv, CommandModule } from "yargs";
import { DamnitError } from "../../core/errors.js";
import { runIntoLog } from "../../jobs/run-into-log.js";

interface Args {
  log: string;
  command?: string[];
}

export const runLoggedCommand: CommandModule<object, Args> = {
  command: "run-logged <log> [command..]",
  describe: false,
  builder: (y: Argv) =>
    y
      .parserConfiguration({ "populate--": true, "unknown-options-as-args": true })
      .positional("log", { type: "string", demandOption: true })
      .positional("command", { type: "string", array: true }) as unknown as Argv<Args>,
  handler: async (argv: ArgumentsCamelCase<Args>) => {
    const rest = (argv as unknown as { "--"?: unknown[] })["--"];
    const command = [...(argv.command ?? []), ...(rest ?? [])].map(String);
    if (command.length === 0) throw new DamnitError("BAD_ARGUMENT", "run-logged needs a command after --");
    process.exitCode = await runIntoLog(command, argv.log);
  },
};
