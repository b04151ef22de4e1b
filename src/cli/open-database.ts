/** Opening the database a command works on, telling the user when it was upgraded on the way. */
import { RunDatabase } from "../db/run-database.js";
import type { OpenOptions } from "../db/open.js";
import { log } from "../log.js";

export async function openForCommand(dir: string, options: OpenOptions = {}): Promise<RunDatabase> {
  return RunDatabase.open(dir, {
    ...options,
    onUpgrade: (report) =>
      log().info(
        { from: report.from, to: report.to, steps: report.applied, backup: report.backup },
        `Upgraded database format from v${report.from} to v${report.to}` + (report.backup ? ` (copy of the old file: ${report.backup})` : ""),
      ),
  });
}

/** `--num` semantics of DAMNIT's config commands: integer if it parses, else float, else an error. */
export function parseNumber(text: string): number {
  const n = Number(text);
  if (text.trim() === "" || Number.isNaN(n)) throw new Error(`'${text}' is not a number`);
  return n;
}
