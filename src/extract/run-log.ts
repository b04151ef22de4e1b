/**
 * A job's log, as people read it in `process_logs/r<R>-p<P>.out` (or a terminal): pino records rendered as
 * readable lines, with whatever the context code printed written through unchanged, in order.
 */
import { closeSync, writeSync } from "node:fs";
import { createRequire } from "node:module";
import { pino, type Logger } from "pino";
import { openProcessLog } from "../process-logs.js";

const require = createRequire(import.meta.url);

export interface RunLog {
  readonly logger: Logger;
  /** text printed by context code, as is */
  raw(text: string): void;
  close(): void;
}

/** Log to a file descriptor (2 for stderr) or append to a file. */
export function openRunLog(target: number | string, opts: { colour?: boolean; level?: string } = {}): RunLog {
  const fd = typeof target === "number" ? target : openProcessLog(target);
  const pretty = require("pino-pretty") as typeof import("pino-pretty");
  const stream = pretty({
    destination: fd,
    sync: true,
    colorize: opts.colour ?? false,
    ignore: "pid,hostname",
    translateTime: "SYS:yyyy-mm-dd HH:MM:ss.l",
    singleLine: false,
  });
  const logger = pino({ level: opts.level ?? process.env.DAMNIT_LOG_LEVEL ?? "info", base: undefined }, stream);
  return {
    logger,
    raw: (text) => {
      writeSync(fd, text);
    },
    close: () => {
      if (typeof target !== "number") closeSync(fd);
    },
  };
}
