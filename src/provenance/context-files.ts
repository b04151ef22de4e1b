/**
 * Provenance section `context`: the context file's SHA-256 (its first 16 hex digits are the jobs' idempotency
 * hash, src/jobs/idempotency.ts) and every helper script it may load from its directory (.ts/.mts/.cts/.js/.mjs/
 * .cjs/.py, two levels down: the files of the runner's stamp, src/context/stamp.ts), each by path, size and SHA-256; for TypeScript
 * contexts also the compiler (esbuild) whose output the compile cache keeps, and Node's version.
 */
import { createHash } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { basename, join, relative } from "node:path";
import { contextScripts } from "../context/stamp.js";

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

/** Script files below `dir` (relative paths, sorted), other than `except`: those of the runner's stamp. */
export function helperScripts(dir: string, except: string): string[] {
  return contextScripts(dir)
    .filter((file) => file !== except)
    .map((file) => relative(dir, file));
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
