/**
 * The generated `context.py` beside a TypeScript context. DAMNIT's GUI stats `context.py` when it starts and runs
 * its own checker on it, so a directory with only `context.ts` does not open. This file is valid Python that defines
 * no variables and only says where they are defined; its marker line lets our loader recognise and ignore it when a
 * TypeScript context is beside it. A user's own `context.py` (no marker) is never overwritten.
 */
import { closeSync, openSync, readSync, writeSync } from "node:fs";
import { join } from "node:path";
import { isNodeError } from "../core/node-errors.js";

/** The first line of every generated pointer file. */
export const GUI_POINTER_MARKER = "# damnit-ts: generated pointer, variables are not defined here";

/** The text of the pointer to `tsName` (the TypeScript context's file name in the same directory). */
export function guiPointerText(tsName: string): string {
  return [
    GUI_POINTER_MARKER,
    `#`,
    `# The variables of this database are defined in ${tsName} in this directory, not here. This file`,
    `# exists so that DAMNIT's GUI, which opens context.py, starts; it defines no variables. Edit ${tsName}`,
    `# (check it with: damnit read-context <dir>). While ${tsName} exists, damnit ignores this file.`,
    `# To write the context in Python instead, replace this file and remove ${tsName}.`,
    "",
  ].join("\n");
}

/** Whether `file` is a generated pointer (its first line is the marker); false when it does not exist. */
export function isGuiPointer(file: string): boolean {
  let fd: number;
  try {
    fd = openSync(file, "r");
  } catch (err) {
    if (isNodeError(err) && (err.code === "ENOENT" || err.code === "ENOTDIR")) return false;
    throw err;
  }
  try {
    const head = Buffer.alloc(GUI_POINTER_MARKER.length + 1);
    const read = readSync(fd, head, 0, head.length, 0);
    return head.subarray(0, read).toString("utf8").replace(/\r?\n$/, "") === GUI_POINTER_MARKER;
  } finally {
    closeSync(fd);
  }
}

/**
 * Write `<dir>/context.py` pointing to `tsName` unless a `context.py` already exists (a user's, or an earlier
 * pointer); O_EXCL so a file made meanwhile is not replaced. Returns whether it was written.
 */
export function writeGuiPointer(dir: string, tsName = "context.ts"): boolean {
  let fd: number;
  try {
    fd = openSync(join(dir, "context.py"), "wx", 0o666);
  } catch (err) {
    if (isNodeError(err) && err.code === "EEXIST") return false;
    throw err;
  }
  try {
    writeSync(fd, guiPointerText(tsName));
  } finally {
    closeSync(fd);
  }
  return true;
}
