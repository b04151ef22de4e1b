/**
 * Module hooks for evaluating context files (registered with `module.register` in the context runner):
 * - `damnit` and `damnit/…` resolve to this installation, so a context file in a proposal directory far from it,
 *   with no node_modules beside it, can import the API and the data reader;
 * - TypeScript (.ts/.mts) is compiled on the fly with esbuild (types stripped, inline source map so stack traces
 *   and error lines point into the .ts file);
 * - .js/.mjs outside node_modules is an ES module whatever package.json says (and checked by the same compiler).
 * Syntax errors come out as one line "<file>:<line>:<column>: <problem>".
 */
import { stat, readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { transform } from "esbuild";

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

const compiled = new Map<string, { mtimeMs: number; size: number; code: string }>();

export async function load(url: string, context: { format?: string }, next: Load) {
  if (!url.startsWith("file:")) return next(url, context);
  const path = fileURLToPath(url.replace(/[?#].*$/, ""));
  if (/\.m?ts$/.test(path)) {
    return { format: "module", source: await compile(path, "ts"), shortCircuit: true };
  }
  // Plain JavaScript goes through the same compiler so that its syntax errors read the same way.
  if (/\.m?js$/.test(path) && !path.includes("/node_modules/")) {
    return { format: "module", source: await compile(path, "js"), shortCircuit: true };
  }
  return next(url, context);
}

async function compile(path: string, loader: "ts" | "js"): Promise<string> {
  const info = await stat(path);
  const cached = compiled.get(path);
  if (cached && cached.mtimeMs === info.mtimeMs && cached.size === info.size) return cached.code;
  const source = await readFile(path, "utf8");
  try {
    const result = await transform(source, { loader, format: "esm", sourcemap: "inline", sourcefile: path, target: "node20" });
    compiled.set(path, { mtimeMs: info.mtimeMs, size: info.size, code: result.code });
    return result.code;
  } catch (err) {
    const first = (err as { errors?: Array<{ text: string; location?: { line: number; column: number } | null }> }).errors?.[0];
    if (!first) throw err;
    const where = first.location ? `${path}:${first.location.line}:${first.location.column + 1}` : path;
    throw new SyntaxError(`${where}: ${first.text}`);
  }
}
