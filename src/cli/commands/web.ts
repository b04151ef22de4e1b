/**
 * `damnit web [db-dir…]`: serve the run tables of one or more databases as a live web page. Writes (comments,
 * editable values, saved views) need the service's token, kept 0600 in a per-user file and handed to the browser
 * in a URL fragment (never sent to the server in a URL, never in the page for others); `--read-only` refuses them.
 */
import { mkdirSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join, resolve } from "node:path";
import type { ArgumentsCamelCase, Argv, CommandModule } from "yargs";
import { DamnitError } from "../../core/errors.js";
import { formatListenAddress, parseListenAddress } from "../../http/listen-address.js";
import { loadOrCreateToken } from "../../http/token.js";
import { createWebServer } from "../../web/server.js";

interface Args {
  dirs: string[];
  listen?: string;
  readOnly: boolean;
  tokenFile?: string;
  debug: boolean;
}

export const DEFAULT_WEB_PORT = 8700;

export function defaultTokenFile(): string {
  const base = process.env.XDG_CONFIG_HOME || join(homedir(), ".config");
  return join(base, "damnit", "web-token");
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
    const address = parseListenAddress(argv.listen, DEFAULT_WEB_PORT);
    const tokenFile = resolve(argv.tokenFile ?? defaultTokenFile());
    mkdirSync(dirname(tokenFile), { recursive: true, mode: 0o700 });
    const token = loadOrCreateToken(tokenFile);
    const { app, states } = await createWebServer({ dirs: argv.dirs.map((d) => resolve(d)), token, readOnly: argv.readOnly, logger: argv.debug });
    try {
      await app.listen({ host: address.host, port: address.port });
    } catch (err) {
      await app.close();
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "EADDRINUSE") throw new DamnitError("BAD_LISTEN_ADDRESS", `${formatListenAddress(address)} is in use; choose another port with --listen`);
      if (code === "EADDRNOTAVAIL" || code === "EACCES") throw new DamnitError("BAD_LISTEN_ADDRESS", `cannot listen on ${formatListenAddress(address)}: ${code}`);
      throw err;
    }
    const port = (app.server.address() as { port: number }).port;
    const base = `http://${formatListenAddress({ host: address.host, port })}/`;
    for (const s of states) process.stdout.write(s.problem ? `cannot serve ${s.dir}: ${s.problem}\n` : `serving ${s.dir}\n`);
    process.stdout.write(`Run table: ${base}\n`);
    if (argv.readOnly) process.stdout.write("Read-only: no changes are accepted.\n");
    else process.stdout.write(`To edit comments and values, open ${base}#token=$(cat ${tokenFile})  (the token is in ${tokenFile}, readable by you only)\n`);
    await new Promise<void>((resolveStop) => {
      const stop = () => void app.close().then(() => resolveStop());
      process.once("SIGINT", stop);
      process.once("SIGTERM", stop);
    });
  },
};
