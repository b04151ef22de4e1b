/**
 * Starting the web table and saying where it is: shared by `damnit web`, `damnit listen --web` and
 * `damnit demo --web`. The token is loaded from (or made in) its 0600 file; the address defaults to 127.0.0.1;
 * a port in use is a one-line BAD_LISTEN_ADDRESS error.
 */
import { mkdirSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { DamnitError } from "../core/errors.js";
import { formatListenAddress, parseListenAddress } from "../http/listen-address.js";
import { loadOrCreateToken } from "../http/token.js";
import { createWebServer, type WebServer } from "./server.js";

export const DEFAULT_WEB_PORT = 8700;

export function defaultTokenFile(): string {
  const base = process.env.XDG_CONFIG_HOME || join(homedir(), ".config");
  return join(base, "damnit", "web-token");
}

export interface ServeOptions {
  dirs: string[];
  /** HOST:PORT or PORT (default 127.0.0.1:8700) */
  listen?: string;
  readOnly?: boolean;
  tokenFile?: string;
  logger?: boolean;
  brokers?: readonly string[] | null;
  /** where the "serving …" lines go (default stdout) */
  print?: (line: string) => void;
}

export interface RunningWeb extends WebServer {
  /** the page's address, e.g. http://127.0.0.1:8700/ */
  base: string;
  close(): Promise<void>;
}

export async function serveWeb(opts: ServeOptions): Promise<RunningWeb> {
  const print = opts.print ?? ((line: string) => process.stdout.write(`${line}\n`));
  const address = parseListenAddress(opts.listen, DEFAULT_WEB_PORT);
  const tokenFile = resolve(opts.tokenFile ?? defaultTokenFile());
  mkdirSync(dirname(tokenFile), { recursive: true, mode: 0o700 });
  const token = loadOrCreateToken(tokenFile);
  const web = await createWebServer({ dirs: opts.dirs.map((d) => resolve(d)), token, readOnly: opts.readOnly ?? false, logger: opts.logger, brokers: opts.brokers ?? null });
  try {
    await web.app.listen({ host: address.host, port: address.port });
  } catch (err) {
    await web.app.close();
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "EADDRINUSE") throw new DamnitError("BAD_LISTEN_ADDRESS", `${formatListenAddress(address)} is in use; choose another port`);
    if (code === "EADDRNOTAVAIL" || code === "EACCES") throw new DamnitError("BAD_LISTEN_ADDRESS", `cannot listen on ${formatListenAddress(address)}: ${code}`);
    throw err;
  }
  const port = (web.app.server.address() as { port: number }).port;
  const base = `http://${formatListenAddress({ host: address.host, port })}/`;
  for (const s of web.states) print(s.problem ? `cannot serve ${s.dir}: ${s.problem}` : `serving ${s.dir}`);
  print(`Run table: ${base}`);
  if (opts.readOnly) print("Read-only: no changes are accepted.");
  else print(`To edit comments and values, open ${base}#token=$(cat ${tokenFile})  (the token is in ${tokenFile}, readable by you only)`);
  return { ...web, base, close: () => web.app.close() };
}
