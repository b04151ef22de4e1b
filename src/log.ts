/**
 * The process-wide logger. JSON lines for machines (daemons, jobs, pipes); pretty, short lines when a person runs a
 * command in a terminal. `DAMNIT_LOG_FORMAT=json|pretty` and `DAMNIT_LOG_LEVEL` override the choice.
 */
import { createRequire } from "node:module";
import { pino, type Logger } from "pino";
import { rotatingLogFile } from "./log-file.js";

// pino-pretty is loaded only for people at a terminal; machines get JSON without paying for it.
const require = createRequire(import.meta.url);

export type LogFormat = "auto" | "json" | "pretty";

let logger: Logger | undefined;

let lastOptions: { format?: LogFormat; level?: string } = {};

/** Also write the log, as JSON lines, to `file` (appended, rotated by size; the listener's damnit.log). */
export function logAlsoTo(file: string): Logger {
  return configureLogger({ ...lastOptions, file });
}

export function configureLogger(opts: { format?: LogFormat; level?: string; file?: string } = {}): Logger {
  lastOptions = { format: opts.format, level: opts.level };
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
    logger = opts.file ? pino({ level }, pino.multistream([{ level, stream }, { level, stream: fileStream(opts.file) }])) : pino({ level }, stream);
  } else {
    const stderr = pino.destination({ dest: 2, sync: true });
    logger = pino({ level, base: { pid: process.pid } }, opts.file ? pino.multistream([{ level, stream: stderr }, { level, stream: fileStream(opts.file) }]) : stderr);
  }
  return logger;
}

export function log(): Logger {
  return logger ?? configureLogger();
}

function fileStream(file: string) {
  return rotatingLogFile(file);
}
