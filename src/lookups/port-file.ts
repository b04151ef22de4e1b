/**
 * `--port-file PATH`: the recorder's port, in decimal with a newline, written only once the socket listens and
 * atomically (a temporary file in the same directory renamed over PATH), so a reader never sees a partial or a
 * stale-but-new file.
 */
import { renameSync, rmSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { randomBytes } from "node:crypto";

export function writePortFile(path: string, port: number): void {
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString("hex")}.tmp`);
  try {
    writeFileSync(tmp, `${port}\n`, { flag: "wx", mode: 0o644 });
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}
