/**
 * The process-wide logger. JSON lines for machines (daemons, jobs, pipes); pretty, short lines when a person runs a
 * command in a terminal. `DAMNIT_LOG_FORMAT=json|pretty` and `DAMNIT_LOG_LEVEL` override the choice.
 */
import { createRequire } from "node:module";
import { pino, type Logger } from "pino";

// pino-pretty is loaded only for people at a terminal; machines get JSON without paying for it.
const require = createRequire(import.meta.url);

export type LogFormat = "auto" | "json" | "pretty";

let logger: Logger | undefined;

export function configureLogger(opts: { format?: LogFormat; level?: string } = {}): Logger {
  const envFormat = process.env.DAMNIT_LOG_FORMAT as LogFormat | undefined;
  const format = opts.format && opts.format !== "auto" ? opts.format : (envFormat ?? "auto");
  const usePretty = format === "pretty" || (format === "auto" && process.stderr.isTTY === true);
  const level = opts.level ?? process.env.DAMNIT_LOG_LEVEL ?? "info";
  if (usePretty) {
    const pretty = require("pino-pretty") as typeof import("pino-pretty");
    // People read the message; the structured fields are for machines (JSON mode) and --debug.
    const stream = pretty({
      destination: 2,
      sync: true,
      colorize: process.stderr.isTTY,
      ignore: "pid,hostname",
      translateTime: "SYS:HH:MM:ss",
      hideObject: level !== "debug",
    });
    logger = pino({ level }, stream);
  } else {
    logger = pino({ level, base: { pid: process.pid } }, pino.destination({ dest: 2, sync: true }));
  }
  return logger;
}

export function log(): Logger {
  return logger ?? configureLogger();
}
