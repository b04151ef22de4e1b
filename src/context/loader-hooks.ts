/**
 * Module hooks for evaluating context files (registered with `module.register` in the context runner):
 * - `damnit` and `damnit/…` resolve to this installation, so a context file in a proposal directory far from it,
 *   with no node_modules beside it, can import the API and the data reader;
 * - TypeScript (.ts/.mts) is compiled on the fly with esbuild (types stripped, inline source map so stack traces
 *   and error lines point into the .ts file);
 * - .js/.mjs outside node_modules is an ES module whatever package.json says (and checked by the same compiler).
 * Syntax errors come out as one line "<file>:<line>:<column>: <problem>".
 * Compiled output is kept on disk per content (compile-cache.ts, in the directory `initialize` is given), and
 * esbuild is loaded only when something must be compiled: an unchanged context costs no compiler start.
 */
import { stat, readFile } from "node:fs/promises";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { cacheKey, compilerVersion as installedVersion, readCached, writeCached } from "./compile-cache.js";

type Resolve = (specifier: string, context: { parentURL?: string; conditions?: string[] }) => Promise<{ url: string; format?: string }>;
type Load = (url: string, context: { format?: string }) => Promise<{ format: string; source?: string | ArrayBuffer | Uint8Array }>;

/** This package's package.json: self-referencing `damnit/…` from it goes through the package's "exports". */
const PACKAGE_JSON_URL = new URL("../../../package.json", import.meta.url).href;

export async function resolve(specifier: string, context: { parentURL?: string; conditions?: string[] }, next: Resolve) {
  if (specifier === "damnit" || specifier.startsWith("damnit/")) {
    return { ...(await next(specifier, { ...context, parentURL: PACKAGE_JSON_URL })), shortCircuit: true };
  }
  return next(specifier, context);
}

/** This installation's compiled code (plain ES modules already: not compiled again). */
const OWN_DIST = fileURLToPath(new URL("../../", import.meta.url));

const compiled = new Map<string, { mtimeMs: number; size: number; code: string }>();

/** Where compiled output is kept (set by the runner through `register(..., { data })`); none: no disk cache. */
let cacheDir: string | undefined;

export function initialize(data: { cacheDir?: string } | undefined): void {
  cacheDir = data?.cacheDir;
}

/** The compiler's version, part of every cache key (a new esbuild may compile differently). */
let compilerVersion: string | undefined;

async function esbuild() {
  const module = await import("esbuild");
  compilerVersion = module.version;
  return module;
}

/** The esbuild version installed, without loading esbuild (its package.json) unless that cannot be read. */
async function installedCompilerVersion(): Promise<string> {
  compilerVersion ??= installedVersion() ?? (await esbuild()).version;
  return compilerVersion;
}

export async function load(url: string, context: { format?: string }, next: Load) {
  if (!url.startsWith("file:")) return next(url, context);
  const path = fileURLToPath(url.replace(/[?#].*$/, ""));
  // Compiled modules imported from the cache (direct-import.ts) are compiled already.
  if (cacheDir && path.startsWith(`${dirname(cacheDir)}/`)) return next(url, context);
  if (/\.m?ts$/.test(path)) {
    return { format: "module", source: await compile(path, "ts"), shortCircuit: true };
  }
  // Plain JavaScript goes through the same compiler so that its syntax errors read the same way.
  if (/\.m?js$/.test(path) && !path.includes("/node_modules/") && !path.startsWith(OWN_DIST)) {
    return { format: "module", source: await compile(path, "js"), shortCircuit: true };
  }
  return next(url, context);
}

async function compile(path: string, loader: "ts" | "js"): Promise<string> {
  const info = await stat(path);
  const cached = compiled.get(path);
  if (cached && cached.mtimeMs === info.mtimeMs && cached.size === info.size) return cached.code;
  const source = await readFile(path, "utf8");
  const key = cacheDir ? cacheKey(["esbuild", await installedCompilerVersion(), loader, path, source]) : undefined;
  const hit = cacheDir && key ? readCached(cacheDir, key) : undefined;
  if (hit !== undefined) {
    compiled.set(path, { mtimeMs: info.mtimeMs, size: info.size, code: hit });
    return hit;
  }
  try {
    const { transform } = await esbuild();
    const result = await transform(source, { loader, format: "esm", sourcemap: "inline", sourcefile: path, target: "node20" });
    compiled.set(path, { mtimeMs: info.mtimeMs, size: info.size, code: result.code });
    if (cacheDir && key) writeCached(cacheDir, key, result.code);
    return result.code;
  } catch (err) {
    const first = (err as { errors?: Array<{ text: string; location?: { line: number; column: number } | null }> }).errors?.[0];
    if (!first) throw err;
    const where = first.location ? `${path}:${first.location.line}:${first.location.column + 1}` : path;
    throw new SyntaxError(`${where}: ${first.text}`);
  }
}
