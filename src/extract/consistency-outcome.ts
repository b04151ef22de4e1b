/**
 * After a job stored its results: the built-in data consistency variable's result (the variable tagged
 * `data_consistency`, see src/context/consistency.ts), for the run's bookkeeping file. Its report stays in the
 * runner until stored, so it is read back from the run's HDF5 file (`/<name>/data`).
 */
import { DATA_CONSISTENCY_TAG, parseConsistencyReport } from "../core/consistency-report.js";
import type { VariableOutput } from "../core/variable-output.js";
import { loadH5, openH5File } from "../h5/file.js";
import { readStored } from "../h5/values.js";
import { runOutputFile } from "./store.js";

export interface ConsistencyOutcome {
  readonly variable: string;
  readonly summary: boolean;
  readonly reasons: string[];
}

export async function consistencyOutcome(
  where: { dbDir: string; proposal: number; run: number },
  infos: ReadonlyArray<{ name: string; tags: readonly string[] }> | undefined,
  rows: ReadonlyMap<string, VariableOutput>,
): Promise<ConsistencyOutcome | undefined> {
  const info = infos?.find((i) => i.tags.includes(DATA_CONSISTENCY_TAG) && rows.has(i.name));
  if (!info) return undefined;
  const output = rows.get(info.name)!;
  if (output.error) return { variable: info.name, summary: false, reasons: [`the check failed: ${output.error.cls}: ${output.error.message}`] };
  const lib = await loadH5();
  const file = openH5File(lib, runOutputFile(where.dbDir, where.proposal, where.run));
  try {
    const text = readStored(lib, file, `/${info.name}/data`);
    const parsed = typeof text === "string" ? parseConsistencyReport(text) : undefined;
    return parsed ? { variable: info.name, ...parsed } : undefined;
  } finally {
    file.close();
  }
}
