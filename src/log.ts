/**
 * The process-wide logger. JSON lines for machines (daemons, jobs, pipes); pretty, short lines when a person runs a
 * command in a terminal. `DAMNIT_LOG_FORMAT=json|pretty` and `DAMNIT_LOG_LEVEL` override the choice.
 */
import { pino, type Logger } from "pino";
import pretty from "pino-pretty";

export type LogFormat = "auto" | "json" | "pretty";

let logger: Logger | undefined;

export function configureLogger(opts: { format?: LogFormat; level?: string } = {}): Logger {
  const envFormat = process.env.DAMNIT_LOG_FORMAT as LogFormat | undefined;
  const format = opts.format && opts.format !== "auto" ? opts.format : (envFormat ?? "auto");
  const usePretty = format === "pretty" || (format === "auto" && process.stderr.isTTY === true);
  const level = opts.level ?? process.env.DAMNIT_LOG_LEVEL ?? "info";
  logger = usePretty
    ? pino({ level }, pretty({ destination: 2, sync: true, colorize: process.stderr.isTTY, ignore: "pid,hostname", translateTime: "SYS:HH:MM:ss" }))
    : pino({ level, base: { pid: process.pid } }, pino.destination({ dest: 2, sync: true }));
  return logger;
}

export function log(): Logger {
  return logger ?? configureLogger();
}
