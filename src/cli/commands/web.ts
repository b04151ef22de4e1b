/**
 * `damnit web [db-dir…]`: serve the run tables of one or more databases as a live web page. Writes (comments,
 * editable values, saved views) need the service's token, kept 0600 in a per-user file and handed to the browser
 * in a URL fragment (never sent to the server in a URL, never in the page for others); `--read-only` refuses them.
 * Processing states come from the update topics when Kafka brokers are configured (DAMNIT_KAFKA_BROKERS).
 */
import type { ArgumentsCamelCase, Argv, CommandModule } from "yargs";
import { updateBrokers } from "../../messaging/brokers.js";
import { DEFAULT_WEB_PORT, serveWeb } from "../../web/serve.js";

export { DEFAULT_WEB_PORT, defaultTokenFile } from "../../web/serve.js";

interface Args {
  dirs: string[];
  listen?: string;
  readOnly: boolean;
  tokenFile?: string;
  debug: boolean;
}

export const webCommand: CommandModule<object, Args> = {
  command: "web [dirs..]",
  describe: "Serve the run tables of databases as a live web page",
  builder: (y: Argv) =>
    y
      .positional("dirs", { type: "string", array: true, default: ["."], describe: "database directories (holding runs.sqlite)" })
      .option("listen", { type: "string", describe: `HOST:PORT or PORT to listen on (default 127.0.0.1:${DEFAULT_WEB_PORT})` })
      .option("read-only", { type: "boolean", default: false, describe: "refuse every change (comments, edits, saved views)" })
      .option("token-file", { type: "string", describe: "file holding the write token (0600; default ~/.config/damnit/web-token)" })
      .example("$0 web /gpfs/exfel/exp/SPB/202501/p001234/usr/Shared/amore", "serve one proposal's table") as unknown as Argv<Args>,
  handler: async (argv: ArgumentsCamelCase<Args>) => {
    const web = await serveWeb({ dirs: argv.dirs, listen: argv.listen, readOnly: argv.readOnly, tokenFile: argv.tokenFile, logger: argv.debug, brokers: updateBrokers() });
    await new Promise<void>((resolveStop) => {
      const stop = () => void web.close().then(() => resolveStop());
      process.once("SIGINT", stop);
      process.once("SIGTERM", stop);
    });
  },
};
