/**
 * One task of an array job (spec §2.4): run the command the task file lists for this task, its output appended to
 * that run's process log. Hidden: only `damnit reprocess` submits it.
 */
import { spawn } from "node:child_process";
import { closeSync } from "node:fs";
import { constants } from "node:os";
import type { ArgumentsCamelCase, Argv, CommandModule } from "yargs";
import { DamnitError, isDamnitError } from "../../core/errors.js";
import { readPrivateFile } from "../../core/safe-open.js";
import { openProcessLog } from "../../process-logs.js";

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
    const fd = openProcessLog(task.log);
    try {
      process.exitCode = await new Promise<number>((resolve) => {
        const child = spawn(task.argv[0]!, task.argv.slice(1), { stdio: ["ignore", fd, fd] });
        child.on("error", (err) => {
          process.stderr.write(`cannot start ${task.argv[0]}: ${err.message}\n`);
          resolve(127);
        });
        // A signal as a shell reports it (128 + its number): 137 for an out-of-memory kill, 143 for a cancel.
        child.on("exit", (code, signal) => resolve(code ?? (signal ? 128 + (constants.signals[signal] ?? 0) : 1)));
      });
    } finally {
      closeSync(fd);
    }
  },
};
