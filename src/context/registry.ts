/**
 * Where `Variable()` calls are recorded while a context file is evaluated, and where in the file each call was.
 * Kept on globalThis so that every copy of the API module (should a context end up with two) feeds one list.
 */
import { fileURLToPath } from "node:url";

export interface CallSite {
  readonly file?: string;
  readonly line?: number;
  readonly column?: number;
}

interface Registry {
  definitions: unknown[];
}

const KEY = Symbol.for("damnit.context.registry");
const holder = globalThis as unknown as Record<symbol, Registry | undefined>;
export const CONTEXT_REGISTRY: Registry = (holder[KEY] ??= { definitions: [] });

/**
 * This package's own directory, whose frames are skipped when looking for the user's line: the package root, since
 * stack frames of the compiled code may be source-mapped to `src/` (from `dist/src/context/` that is three levels
 * up, from `src/context/` when run from source two).
 */
const OWN_DIR = fileURLToPath(new URL(import.meta.url.includes("/dist/src/") ? "../../../" : "../../", import.meta.url));

/** One stack frame: "at fn (file:line:col)" or "at file:line:col". */
const FRAME = /\(?((?:file:\/\/)?\/[^():]+(?::[^():]+)*?):(\d+):(\d+)\)?$/;

/** The first stack frame outside this package: the line of the context file that called the API. */
export function callSite(): CallSite {
  const stack = new Error().stack ?? "";
  for (const line of stack.split("\n").slice(1)) {
    const match = FRAME.exec(line.trim());
    if (!match) continue;
    const file = match[1]!.startsWith("file://") ? fileURLToPath(match[1]!.replace(/\?.*$/, "")) : match[1]!;
    if (file.startsWith(OWN_DIR) && !file.includes("/node_modules/") && !file.includes(`${OWN_DIR}contexts/`)) continue;
    return { file, line: Number(match[2]), column: Number(match[3]) };
  }
  return {};
}

/**
 * Where `err` was raised in the user's code, from its (source-mapped) stack: the first frame in a file under `dir`
 * that is not in node_modules (the context file or one of its helper modules).
 */
export function errorLocation(err: unknown, dir: string): { file: string; line: number } | undefined {
  const stack = err instanceof Error ? (err.stack ?? "") : "";
  const prefix = dir.endsWith("/") ? dir : `${dir}/`;
  for (const line of stack.split("\n")) {
    const match = FRAME.exec(line.trim());
    if (!match) continue;
    const frameFile = match[1]!.startsWith("file://") ? fileURLToPath(match[1]!.replace(/\?.*$/, "")) : match[1]!;
    if (frameFile.startsWith(prefix) && !frameFile.includes("/node_modules/")) return { file: frameFile, line: Number(match[2]) };
  }
  return undefined;
}
