/** `damnit listen [dir]`: run the listener here, or with --daemonize under supervisord (spec §1, §7). */
import { isDamnitError } from "../../core/errors.js";
import { shellQuote } from "../shell-quote.js";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { ArgumentsCamelCase, Argv, CommandModule } from "yargs";
import { notificationBrokers, runListener } from "../../listener/listener.js";
import { ListenerStore } from "../../listener/store/index.js";
import { updateBrokers } from "../../messaging/brokers.js";
import { serveWeb, type RunningWeb } from "../../web/serve.js";
import { logAlsoTo } from "../../log.js";
import { supervisedEnvironment } from "../../supervisor/config.js";
import { startListenerDaemon } from "../../supervisor/control.js";

interface Args {
  dir: string;
  daemonize: boolean;
  auditOnly: boolean;
  web?: string;
  webReadOnly: boolean;
}

export const listenCommand: CommandModule<object, Args> = {
  command: "listen [dir]",
  describe: "Process runs as their data arrive (Kafka notifications, or new run directories when no broker is set)",
  builder: (y: Argv) =>
    y
      .positional("dir", { type: "string", default: ".", describe: "listener directory (listener.sqlite, damnit.log)" })
      .option("daemonize", { type: "boolean", default: false, describe: "run under supervisord (started if needed), in the background" })
      .option("audit-only", {
        type: "boolean",
        default: false,
        describe: "record notifications in the audit trails and acknowledge them, submit nothing (an outage; 'damnit replay' afterwards)",
      })
      .option("web", { type: "string", describe: "also serve the registered databases' run tables on [HOST:]PORT (as damnit web; 127.0.0.1 unless told)" })
      .option("web-read-only", { type: "boolean", default: false, describe: "with --web: refuse every change" })
      .example("$0 listener add 1234 && $0 listen", "process proposal 1234's runs here, in the foreground")
      .example("$0 listen --daemonize", "the same as a service; 'damnit listener status' tells how it is") as unknown as Argv<Args>,
  handler: async (argv: ArgumentsCamelCase<Args>) => {
    if (argv.daemonize) {
      const dir = resolve(argv.dir);
      const environment = supervisedEnvironment(process.env);
      const damnit = fileURLToPath(new URL("../../../../bin/damnit.js", import.meta.url));
      // The absolute directory (DAMNIT's is "."): it names the Kafka consumer group, which must differ between
      // listeners on the same brokers, or they would share out the notifications between them.
      const webArgs = argv.web !== undefined ? ["--web", argv.web, ...(argv.webReadOnly ? ["--web-read-only"] : [])] : [];
      const result = await startListenerDaemon(dir, { command: [process.execPath, damnit, "listen", dir, ...webArgs, ...(argv.auditOnly ? ["--audit-only"] : [])], environment });
      const what = { daemon: "Started supervisord and the listener", program: "Started the listener", "already-running": "The listener is already running" }[result.started];
      console.log(`${what} (pid ${result.pid}) under supervisord at ${result.serverUrl}; log: ${join(dir, "damnit.log")}`);
      console.log(`Check it with: damnit listener status -C ${shellQuote(argv.dir)}`);
      console.log(`           or: supervisorctl -c ${shellQuote(join(dir, "supervisord.conf"))} status damnit`);
      return;
    }
    const logger = logAlsoTo(join(resolve(argv.dir), "damnit.log"));
    const abort = new AbortController();
    const stop = (signal: string) => {
      if (abort.signal.aborted) return logger.info(`${signal} again: already stopping`);
      logger.info(`Stopping on ${signal}`);
      abort.abort();
    };
    // A service manager may signal the process group and the process both: stopping is one clean stop. A second
    // Ctrl-C is a person insisting: it ends the process at once (nothing is lost; the inbox has what was pending).
    process.on("SIGTERM", () => stop("SIGTERM"));
    process.once("SIGINT", () => {
      stop("Ctrl + C");
      process.once("SIGINT", () => process.exit(130));
    });
    // Once the listener is done, the process ends even if a client library still holds a socket or timer.
    const exitSoon = () => setTimeout(() => process.exit(), 3000).unref();
    const web = argv.web !== undefined ? await serveListenerWeb(argv.dir, argv.web, argv.webReadOnly, (line) => logger.info(line)) : undefined;
    try {
      await runListener({ dir: argv.dir, logger, signal: abort.signal, auditOnly: argv.auditOnly, onUpdateMessages: web?.deliver });
      await web?.close();
      exitSoon();
    } catch (err) {
      if (isDamnitError(err, "LISTENER_FAULT")) {
        logger.fatal(`Stopping: ${err.message} (a fault of the listener or its configuration, not of one message)`);
      } else {
        logger.fatal(`Stopping on unexpected error: ${(err as Error).message}`);
      }
      process.exitCode = 1;
      await web?.close().catch(() => undefined);
      exitSoon();
      throw err;
    }
  },
};

/**
 * The listener's web table: the databases registered when it starts, their processing states from the listener's
 * own update messages (handed over in-process) and, with Kafka, from the update topics (the Slurm jobs' own).
 */
async function serveListenerWeb(dir: string, listen: string, readOnly: boolean, print: (line: string) => void): Promise<RunningWeb> {
  const store = ListenerStore.open(dir);
  let dirs: string[];
  let brokers: string[] | null;
  try {
    dirs = [...new Set(store.databases.list().map((d) => d.dbDir))];
    brokers = updateBrokers(process.env, notificationBrokers(store)?.join(",") ?? "");
  } finally {
    store.close();
  }
  if (dirs.length === 0) print("--web: no databases registered yet ('damnit listener add <proposal> [dir]'); the page will list none until a restart");
  return serveWeb({ dirs, listen, readOnly, brokers, print });
}
