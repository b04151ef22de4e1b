/**
 * Evaluating a context file (in the context runner only: user code never runs in the job or the listener) and
 * turning its exports into a checked context. Problems of any kind — syntax, an import that cannot be found, an
 * exception while the module runs, invalid variables — come back together, each with file and line.
 */
import { existsSync, readFileSync } from "node:fs";
import { register } from "node:module";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import { DamnitError } from "../core/errors.js";
import { isNodeError } from "../core/node-errors.js";
import { compileCacheDir } from "./compile-cache.js";
import { directModuleFile } from "./direct-import.js";
import { isGuiPointer } from "./gui-pointer.js";
import { loadPythonContext } from "./python-context.js";
import { CONTEXT_REGISTRY, errorLocation } from "./registry.js";
import { buildContext, type Candidate, type DefinitionLike } from "./validate.js";
import type { ContextProblem, LoadedContext } from "./variables.js";

/** Accepted context file names, in order of preference. */
export const CONTEXT_FILE_NAMES = ["context.ts", "context.mts", "context.js", "context.mjs"];

/** DAMNIT's own (Python) context file name, run by python/damnit_runner.py. */
export const PYTHON_CONTEXT_FILE = "context.py";

/** The context file of a database directory; a context.py next to a TS/JS one is ambiguous, and an error. */
export function findContextFile(dir: string): string {
  const python = join(dir, PYTHON_CONTEXT_FILE);
  for (const name of CONTEXT_FILE_NAMES) {
    const file = join(dir, name);
    if (!existsSync(file)) continue;
    // A generated context.py (see gui-pointer.ts) only points to the TypeScript context: no conflict, never the context.
    if (existsSync(python) && !isGuiPointer(python)) {
      throw new DamnitError("CONTEXT_CONFLICT", `${dir} has both ${PYTHON_CONTEXT_FILE} and ${name}: remove (or rename) one of them`);
    }
    return file;
  }
  if (existsSync(python) && !isGuiPointer(python)) return python;
  throw new DamnitError("NO_SUCH_KEY", `no context file in ${dir} (expected one of ${[...CONTEXT_FILE_NAMES, PYTHON_CONTEXT_FILE].join(", ")})`);
}

let hooksRegistered = false;

/** The module hooks, once per process; compiled output is cached for the first context file's directory. */
function registerHooks(contextFile: string): void {
  if (hooksRegistered) return;
  process.setSourceMapsEnabled(true);
  register(new URL("./loader-hooks.js", import.meta.url), { data: { cacheDir: compileCacheDir(dirname(contextFile)) } });
  hooksRegistered = true;
}

let loadCount = 0;

/** Evaluate `file` afresh (module state does not carry over between loads) and check its variables. */
export async function loadContext(file: string): Promise<{ context?: LoadedContext; problems: ContextProblem[] }> {
  if (file.endsWith(".py")) return loadPythonContext(file);
  let source = "";
  try {
    source = readFileSync(file, "utf8");
  } catch (err) {
    return { problems: [{ file, message: `cannot read the context file: ${(err as Error).message}` }] };
  }
  // Compiled before and importing only damnit: straight from the compile cache, without the loader thread.
  const direct = directModuleFile(file, source);
  if (direct) process.setSourceMapsEnabled(true);
  else registerHooks(file);
  const before = CONTEXT_REGISTRY.definitions.length;
  let namespace: Record<string, unknown>;
  try {
    namespace = (await import(`${pathToFileURL(direct ?? file).href}?load=${++loadCount}`)) as Record<string, unknown>;
  } catch (err) {
    return { problems: [importProblem(err, file, source)] };
  }
  // Only this evaluation's definitions matter; the list is emptied so it never grows across loads.
  const created = CONTEXT_REGISTRY.definitions.splice(before) as DefinitionLike[];
  CONTEXT_REGISTRY.definitions.length = 0;

  const exportsOf = new Map<DefinitionLike, string[]>();
  for (const [exportName, value] of Object.entries(namespace)) {
    if (!isDefinition(value)) continue;
    const names = exportsOf.get(value) ?? [];
    names.push(exportName);
    exportsOf.set(value, names);
  }
  const candidates: Candidate[] = [];
  const seen = new Set<DefinitionLike>();
  // Definition order: the order of Variable() calls; exported definitions made elsewhere (a helper module already
  // evaluated) follow in export order.
  for (const definition of [...created, ...exportsOf.keys()]) {
    if (seen.has(definition)) continue;
    seen.add(definition);
    candidates.push({ exportNames: exportsOf.get(definition) ?? [], definition });
  }
  const built = buildContext(file, candidates, source);
  // Top to bottom, as one reads the file (sort is stable: problems of one line keep their order).
  built.problems.sort((a, b) => (a.line ?? Infinity) - (b.line ?? Infinity));
  return built;
}

function isDefinition(value: unknown): value is DefinitionLike {
  return typeof value === "object" && value !== null && (value as { __damnitVariable?: unknown }).__damnitVariable === true;
}

/** One problem describing why the module could not be evaluated, pointing at the line concerned. */
function importProblem(err: unknown, file: string, source: string): ContextProblem {
  const error = err instanceof Error ? err : new Error(String(err));
  const code = isNodeError(error) ? error.code : undefined;
  // Syntax errors from the compile hook: "<file>:<line>:<col>: <text>"
  const syntax = /^(\/.*?):(\d+):(\d+): (.*)$/s.exec(error.message);
  if (error.name === "SyntaxError" && syntax) {
    return { file: syntax[1]!, line: Number(syntax[2]), message: `syntax error: ${syntax[4]}` };
  }
  if (code === "ERR_MODULE_NOT_FOUND" || code === "ERR_UNSUPPORTED_DIR_IMPORT") {
    const specifier = /(?:package|module|directory) '([^']+)'/.exec(error.message)?.[1];
    const importedFrom = / imported from (\/\S+)/.exec(error.message)?.[1];
    const line = importedFrom === file && specifier ? lineMentioning(source, specifier) : undefined;
    const what = specifier ?? "a module";
    const where = importedFrom && importedFrom !== file ? ` (imported from ${importedFrom})` : "";
    return { file, line, message: `cannot import '${what}'${where}: it is not installed or the file does not exist` };
  }
  // Linking errors ("does not provide an export named 'X'") carry no stack position of the context file.
  const missingExport = /does not provide an export named '([^']+)'/.exec(error.message);
  if (missingExport) {
    return { file, line: lineMentioning(source, missingExport[1]!), message: `${error.name}: ${error.message}` };
  }
  const where = errorLocation(error, dirname(file));
  return { file: where?.file ?? file, line: where?.line, message: `error while evaluating the context file: ${error.name}: ${error.message}` };
}

function lineMentioning(source: string, text: string): number | undefined {
  // A relative import is reported resolved ("/dir/helpers.ts"); the source has "./helpers.ts".
  if (text.startsWith("/")) text = text.slice(text.lastIndexOf("/") + 1);
  const lines = source.split("\n");
  const quoted = lines.findIndex((l) => /\bimport\b|\bfrom\b/.test(l) && (l.includes(`${text}"`) || l.includes(`${text}'`)));
  const index = quoted >= 0 ? quoted : lines.findIndex((l) => l.includes(text));
  return index >= 0 ? index + 1 : undefined;
}
