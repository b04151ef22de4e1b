/**
 * The code a context may load from its directory: every script file (.ts, .mts, .cts, .js, .mjs, .cjs, .py) there
 * and in its subdirectories (two levels; not node_modules, extracted_data, process_logs, __pycache__ or hidden
 * ones), listed once here for both uses: the stamp — by path, size and modification time — that decides whether a
 * context runner may be reused (a runner evaluates modules once, so an edited helper module gets a fresh runner),
 * and the helper files a provenance record hashes (src/provenance/context-files.ts).
 */
import { createHash } from "node:crypto";
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";

const SCRIPT = /\.(m?[jt]s|c[jt]s|py)$/;
const SKIPPED = new Set(["node_modules", "extracted_data", "process_logs", "__pycache__"]);

/** The script files below `dir` (full paths, in a stable order). */
export function contextScripts(dir: string): string[] {
  const found: string[] = [];
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
      } else if (entry.isFile() && SCRIPT.test(entry.name)) {
        found.push(full);
      }
    }
  };
  walk(dir, 0);
  return found;
}

export function contextStamp(dir: string): string {
  const hash = createHash("sha1");
  for (const file of contextScripts(dir)) {
    try {
      const s = statSync(file);
      hash.update(`${file}\0${s.size}\0${s.mtimeMs}\0${s.ctimeMs}\n`);
    } catch {
      // vanished meanwhile
    }
  }
  return hash.digest("hex");
}
