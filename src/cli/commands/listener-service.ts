/** `damnit listener status|restart|stop|shutdown`: the listener service under supervisord, via supervisorctl. */
import { resolve } from "node:path";
import type { Argv, CommandModule } from "yargs";
import { DamnitError } from "../../core/errors.js";
import { programStatus, restartListener, shutdownSupervisor, stopListener, type ProgramStatus } from "../../supervisor/control.js";
import { readSupervisorConfig } from "../../supervisor/config.js";
import { apiEndpoint } from "../../listener/control-api/client.js";
import { listenerHealthLines, listenerStatisticsLines } from "../listener-health.js";

interface DirArgs {
  dir: string;
}

function needConfig(dir: string): void {
  if (!readSupervisorConfig(resolve(dir))) {
    throw new DamnitError("NO_SUCH_KEY", `${resolve(dir)} has no supervisord.conf: start the listener with 'damnit listen --daemonize ${dir}'`);
  }
}

function printStatus(status: ProgramStatus): void {
  const line = status.text.trim() || (status.daemonUp ? status.state : "supervisord is not running");
  console.log(line);
  // supervisorctl's convention: 0 running, 3 not running, 4 supervisord unreachable.
  process.exitCode = status.state === "RUNNING" ? 0 : status.daemonUp ? 3 : 4;
}

function serviceCommand(name: string, describe: string, action: (dir: string) => Promise<ProgramStatus | void>): CommandModule<object, DirArgs> {
  return {
    command: name,
    describe,
    builder: (y: Argv) => y.option("dir", { alias: "C", type: "string", default: ".", describe: "listener directory" }) as Argv<DirArgs>,
    handler: async (argv) => {
      // A listener in the foreground (no supervisord) still answers status through its control API.
      if (name === "status" && !readSupervisorConfig(resolve(argv.dir)) && apiEndpoint(resolve(argv.dir))) {
        console.log("not run under supervisord (no supervisord.conf)");
        for (const line of await listenerStatisticsLines(resolve(argv.dir))) console.log(line);
        return;
      }
      needConfig(argv.dir);
      const status = await action(resolve(argv.dir));
      if (status) printStatus(status);
    },
  };
}

export const listenerServiceCommands: CommandModule[] = [
  serviceCommand("status", "Is the listener running under supervisord, and how is it? (exit 0 running, 3 stopped, 4 supervisord down)", async (dir) => {
    const status = await programStatus(dir);
    printStatus(status);
    for (const line of listenerHealthLines(dir)) console.log(line);
    for (const line of await listenerStatisticsLines(dir)) console.log(line);
  }),
  serviceCommand("restart", "Restart the listener under supervisord", restartListener),
  serviceCommand("stop", "Stop the listener (supervisord keeps running; 'damnit listen --daemonize' starts it again)", stopListener),
  serviceCommand("shutdown", "Stop the listener and its supervisord", async (dir) => {
    await shutdownSupervisor(dir);
    console.log("supervisord shut down");
  }),
] as CommandModule[];
