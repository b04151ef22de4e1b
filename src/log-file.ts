/**
 * The listener's `damnit.log`, rotated by size: once it passes `maxBytes` it becomes `damnit.log.1` (the older ones
 * move up to `.<backups>`, the oldest is dropped) and a new file is started. Writes stay synchronous (pino's
 * SonicBoom), so the line logged just before an exit is on disk; pino-roll and rotating-file-stream write
 * asynchronously (a worker thread, a buffered stream) and would lose it, which is why this is ours.
 */
import { isNodeError } from "./core/node-errors.js";
import { mkdirSync, renameSync, rmSync, statSync } from "node:fs";
import { dirname } from "node:path";
import { makePrivate, privateFileMode } from "./core/private-files.js";
import { pino } from "pino";

export const LOG_FILE_MAX_BYTES = 10 * 2 ** 20;
export const LOG_FILE_BACKUPS = 3;

export interface RotatingLogFile {
  write(line: string): void;
  /** bytes in the current file */
  readonly size: number;
}

export function rotatingLogFile(file: string, opts: { maxBytes?: number; backups?: number } = {}): RotatingLogFile {
  const maxBytes = opts.maxBytes ?? LOG_FILE_MAX_BYTES;
  const backups = opts.backups ?? LOG_FILE_BACKUPS;
  mkdirSync(dirname(file), { recursive: true });
  // The owner's alone (colleagues in the directory's group may read it), like the listener's other files.
  const wanted = privateFileMode(dirname(file));
  const boom = pino.destination({ dest: file, append: true, sync: true, mode: wanted.mode });
  makePrivate(file, wanted);
  let size = sizeOf(file);
  const rotate = (): void => {
    boom.flushSync();
    rmSync(`${file}.${backups}`, { force: true });
    for (let n = backups - 1; n >= 1; n--) renameIfExists(`${file}.${n}`, `${file}.${n + 1}`);
    if (backups > 0) renameIfExists(file, `${file}.1`);
    else rmSync(file, { force: true });
    boom.reopen();
    makePrivate(file, wanted);
    size = 0;
  };
  return {
    write(line: string): void {
      boom.write(line);
      size += Buffer.byteLength(line);
      if (size >= maxBytes) {
        try {
          rotate();
        } catch {
          // A log that cannot be rotated (a read-only directory) keeps growing rather than stopping the listener.
          size = 0;
        }
      }
    },
    get size() {
      return size;
    },
  };
}

function sizeOf(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

function renameIfExists(from: string, to: string): void {
  try {
    renameSync(from, to);
  } catch (err) {
    if (!isNodeError(err, "ENOENT")) throw err;
  }
}
