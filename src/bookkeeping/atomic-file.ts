/**
 * Files replaced whole and atomically: written to a fresh temporary file beside the target (never following a
 * symlink), flushed, then renamed over it, so a reader sees the old content or the new, never half of either.
 * JSON is written as sf_daq_broker writes its bookkeeping: sorted keys, 4-space indent.
 */
import { closeSync, fsyncSync, renameSync, rmSync, writeSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { createFresh } from "../core/safe-open.js";

/** Replace `path` by `text`; its directory must exist (see `runInfoDirectory` for the shared ones). */
export function writeFileAtomically(path: string, text: string, mode = 0o644): void {
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`;
  const fd = createFresh(tmp, mode);
  try {
    try {
      writeSync(fd, text);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

/** JSON with every object's keys sorted, 4-space indent, a final newline. */
export function sortedJson(value: unknown): string {
  return `${JSON.stringify(sortKeys(value), null, 4)}\n`;
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((k) => [k, sortKeys((value as Record<string, unknown>)[k])]),
    );
  }
  return value;
}
