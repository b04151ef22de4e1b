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
