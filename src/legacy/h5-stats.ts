/** What the legacy conversion needs from a run's HDF5 file: max_diff of each variable's data. Read-only. */
import { existsSync } from "node:fs";
import { loadH5wasm } from "../h5/h5wasm.js";
import { maxDiff } from "../summary/max-diff.js";

export interface RunH5Stats {
  maxDiff: Map<string, number>;
}

export async function readRunH5Stats(path: string, names: readonly string[]): Promise<RunH5Stats | undefined> {
  if (!existsSync(path)) return undefined;
  const h5wasm = await loadH5wasm();
  const file = new h5wasm.File(path, "r");
  try {
    const stats: RunH5Stats = { maxDiff: new Map() };
    for (const name of names) {
      const entry = file.get(`${name}/data`);
      if (!(entry instanceof h5wasm.Dataset)) continue;
      // h5wasm spells numeric types like numpy's struct codes ('<d', '<f', '<q', '|b'); strings and compounds differ.
      if (typeof entry.dtype !== "string" || !/^[<>|=]?[bBhHiIlLqQfde]$/.test(entry.dtype)) continue;
      const value = entry.value;
      if (!ArrayBuffer.isView(value)) continue;
      const diff = maxDiff(value as unknown as ArrayLike<number | bigint>);
      if (diff !== null) stats.maxDiff.set(name, diff);
    }
    return stats;
  } finally {
    file.close();
  }
}
