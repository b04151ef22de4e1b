/**
 * A fingerprint of the code a context may load from its directory: every script file (.ts, .mts, .js, .mjs) there
 * and in its subdirectories (two levels; not node_modules, extracted_data, process_logs or hidden ones), by path,
 * size and modification time. A context runner evaluates modules once, so a runner is reused only while this is
 * unchanged: an edited helper module then gets a fresh runner.
 */
import { createHash } from "node:crypto";
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";

const SCRIPT = /\.(m?[jt]s)$/;
const SKIPPED = new Set(["node_modules", "extracted_data", "process_logs"]);

export function contextStamp(dir: string): string {
  const hash = createHash("sha1");
  const walk = (path: string, depth: number) => {
    let entries;
    try {
      entries = readdirSync(path, { withFileTypes: true });
    } catch {
      return;
    }
    for (const entry of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
      if (entry.name.startsWith(".")) continue;
      const full = join(path, entry.name);
      if (entry.isDirectory()) {
        if (depth < 2 && !SKIPPED.has(entry.name)) walk(full, depth + 1);
      } else if (SCRIPT.test(entry.name)) {
        try {
          const s = statSync(full);
          hash.update(`${full}\0${s.size}\0${s.mtimeMs}\0${s.ctimeMs}\n`);
        } catch {
          // vanished meanwhile
        }
      }
    }
  };
  walk(dir, 0);
  return hash.digest("hex");
}
