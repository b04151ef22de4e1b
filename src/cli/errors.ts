/** How the CLI reports failures: one line for anything a user can act on, a stack trace only for our own bugs. */
import { isDamnitError } from "../db/errors.js";

export const EXIT_USER_ERROR = 1;
export const EXIT_USAGE = 2;
export const EXIT_BUG = 70;

export function reportError(err: unknown, debug: boolean): number {
  if (isDamnitError(err)) {
    process.stderr.write(`damnit: ${err.message}\n`);
    if (debug && err.cause) process.stderr.write(`${String((err.cause as Error).stack ?? err.cause)}\n`);
    return EXIT_USER_ERROR;
  }
  const e = err as Error;
  process.stderr.write(`damnit: unexpected error: ${e?.message ?? String(err)}\n`);
  if (debug) process.stderr.write(`${e?.stack ?? ""}\n`);
  else process.stderr.write("damnit: this is a bug; run again with --debug for details and report it\n");
  return EXIT_BUG;
}
