/**
 * Provenance section `context`: the context file's SHA-256 (its first 16 hex digits are the jobs' idempotency
 * hash, src/jobs/idempotency.ts) and every helper script it may load from its directory (.ts/.mts/.cts/.js/.mjs/
 * .cjs/.py, two levels down, skipping what context-stamp skips), each by path, size and SHA-256; for TypeScript
 * contexts also the compiler (esbuild) whose output the compile cache keeps, and Node's version.
 */
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { basename, join, relative } from "node:path";

const SCRIPT = /\.(m?[jt]s|c[jt]s|py)$/;
const SKIPPED = new Set(["node_modules", "extracted_data", "process_logs", "__pycache__"]);
/** More helper files than this are not hashed (the count is still given). */
export const MAX_HELPER_FILES = 500;

export interface HashedFile {
  readonly path: string;
  readonly size: number;
  readonly sha256: string;
}

export function sha256File(file: string): string {
  return createHash("sha256").update(readFileSync(file)).digest("hex");
}

/** Script files below `dir` (relative paths, sorted), other than `except`. */
export function helperScripts(dir: string, except: string): string[] {
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
      } else if (entry.isFile() && SCRIPT.test(entry.name) && full !== except) {
        found.push(relative(dir, full));
      }
    }
  };
  walk(dir, 0);
  return found;
}

function compilerVersion(): string | null {
  try {
    const require = createRequire(import.meta.url);
    return (JSON.parse(readFileSync(require.resolve("esbuild/package.json"), "utf8")) as { version: string }).version;
  } catch {
    return null;
  }
}

export function contextSection(dbDir: string, contextFile: string): Record<string, unknown> {
  const helpers: HashedFile[] = [];
  const names = helperScripts(dbDir, contextFile);
  for (const path of names.slice(0, MAX_HELPER_FILES)) {
    const full = join(dbDir, path);
    try {
      helpers.push({ path, size: statSync(full).size, sha256: sha256File(full) });
    } catch {
      // vanished meanwhile
    }
  }
  const python = contextFile.endsWith(".py");
  return {
    file: basename(contextFile),
    sha256: sha256File(contextFile),
    size: statSync(contextFile).size,
    helpers,
    ...(names.length > MAX_HELPER_FILES ? { helpersNotHashed: names.length - MAX_HELPER_FILES } : {}),
    ...(python ? {} : { compiler: { esbuild: compilerVersion() }, node: process.version }),
  };
}
