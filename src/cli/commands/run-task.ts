/**
 * One task of an array job (spec §2.4): run the command the task file lists for this task, its output appended to
 * that run's process log. Hidden: only `damnit reprocess` submits it.
 */
import type { ArgumentsCamelCase, Argv, CommandModule } from "yargs";
import { DamnitError, isDamnitError } from "../../core/errors.js";
import { readPrivateFile } from "../../core/safe-open.js";
import { runIntoLog } from "../../jobs/run-into-log.js";

interface Args {
  file: string;
  index?: number;
}

export const runTaskCommand: CommandModule<object, Args> = {
  command: "run-task <file> [index]",
  describe: false,
  builder: (y: Argv) =>
    y
      .positional("file", { type: "string", demandOption: true })
      .positional("index", { type: "number", describe: "task number (default: $SLURM_ARRAY_TASK_ID)" }) as unknown as Argv<Args>,
  handler: async (argv: ArgumentsCamelCase<Args>) => {
    const index = argv.index ?? Number(process.env.SLURM_ARRAY_TASK_ID);
    let tasks: Array<{ argv: string[]; log: string }>;
    try {
      // Ours alone (0600, one link, not a symlink): a file put in its place by someone else is refused.
      tasks = (JSON.parse(readPrivateFile(argv.file)) as { tasks: typeof tasks }).tasks;
    } catch (err) {
      if (isDamnitError(err, "UNSAFE_FILE")) throw err;
      throw new DamnitError("BAD_ARGUMENT", `cannot read task file ${argv.file}: ${(err as Error).message}`);
    }
    const task = Number.isInteger(index) ? tasks[index] : undefined;
    if (!task) throw new DamnitError("BAD_ARGUMENT", `task ${index} is not in ${argv.file} (${tasks.length} tasks)`);
    process.exitCode = await runIntoLog(task.argv, task.log);
  },
};
