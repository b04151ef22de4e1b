/**
 * Importing a context file's compiled module straight from the compile cache (issue 13), without the module loader
 * thread that compiles TypeScript and resolves `damnit/…` (src/context/loader-hooks.ts): starting that thread and
 * importing through it costs a tenth of a second per job, more than a small run's variables.
 *
 * The first job compiles the context through the hooks, which keep the output in the compile cache. Later jobs
 * find it there (same key: compiler version, loader, path and text), and when every import of the compiled code is
 * `damnit`/`damnit/…` or a Node built-in, write a copy whose `damnit…` specifiers name this installation's files
 * (in `.damnit-cache/direct-<uid>/`, private like the compiled entries, keyed by the compiled text and the
 * installation) and import that. Anything else (a relative helper module, a package, a dynamic `import()`,
 * `import.meta`) goes through the hooks as before, so resolution and `import.meta.url` stay what the context file
 * expects. Line numbers are kept (only specifiers
 * change), and the inline source map still names the .ts file, so stack traces point into it.
 */
import { builtinModules } from "node:module";
import { dirname, join, resolve } from "node:path";
import { cacheKey, compileCacheDir, compilerVersion, directCacheDir, readCached, writeCached } from "./compile-cache.js";

const BUILTINS = new Set(builtinModules);
/** This installation, part of the direct entry's key (the rewritten specifiers are its files). */
const INSTALLATION = new URL("../../../", import.meta.url).href;

/** An import or re-export on one line, as esbuild prints them: `import { a } from "x";`, `export * from "x";`, `import "x";`. */
const FROM = /^(?:import|export)\b[^"'`]*?\bfrom\s*"([^"]+)";?\s*$/;
const BARE = /^import\s*"([^"]+)";?\s*$/;
/** The last line of an import or re-export esbuild printed over several lines: `} from "x";`. */
const CLOSING = /^\}\s*from\s*"([^"]+)";?\s*$/;

/** The compiled module of `file` to import directly, or undefined to import it through the hooks. */
export function directModuleFile(file: string, source: string): string | undefined {
  const loader = /\.m?ts$/.test(file) ? "ts" : /\.m?js$/.test(file) ? "js" : undefined;
  const version = compilerVersion();
  if (!loader || !version) return undefined;
  const path = resolve(file);
  const key = cacheKey(["esbuild", version, loader, path, source]);
  const compiled = readCached(compileCacheDir(dirname(path)), key);
  if (compiled === undefined) return undefined;
  const dir = directCacheDir(dirname(path));
  // Keyed by the compiled text itself, so the copy always matches the entry the hooks would have used.
  const directKey = cacheKey(["direct", INSTALLATION, compiled]);
  const directFile = join(dir, `${directKey}.mjs`);
  if (readCached(dir, directKey) !== undefined) return directFile;
  const rewritten = withOwnSpecifiers(compiled);
  if (rewritten === undefined) return undefined;
  writeCached(dir, directKey, rewritten);
  return readCached(dir, directKey) === rewritten ? directFile : undefined;
}

/** `code` with `damnit…` specifiers resolved to this installation's files; undefined if it imports anything else. */
export function withOwnSpecifiers(code: string): string | undefined {
  if (/\bimport\s*\(|\bimport\s*\.\s*meta\b|\brequire\s*\(/.test(code)) return undefined;
  const lines = code.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const closing = CLOSING.exec(line)?.[1];
    if (closing === undefined && !/^(?:import|export)\b/.test(line)) continue;
    const specifier = closing ?? FROM.exec(line)?.[1] ?? BARE.exec(line)?.[1];
    if (specifier === undefined) {
      // `export const …` and the like are not imports; anything else starting with `import` we do not understand.
      if (line.startsWith("import")) return undefined;
      continue;
    }
    if (specifier.startsWith("node:") || BUILTINS.has(specifier)) continue;
    if (specifier !== "damnit" && !specifier.startsWith("damnit/")) return undefined;
    let url: string;
    try {
      url = import.meta.resolve(specifier);
    } catch {
      return undefined;
    }
    const at = line.lastIndexOf(`"${specifier}"`);
    lines[i] = `${line.slice(0, at)}${JSON.stringify(url)}${line.slice(at + specifier.length + 2)}`;
  }
  return lines.join("\n");
}
