/**
 * After a job stored its results: the built-in data consistency variable's result (the variable tagged
 * `data_consistency`, see src/context/consistency.ts), for the run's bookkeeping file.
 */
import { DATA_CONSISTENCY_TAG, parseConsistencyReport } from "../core/consistency-report.js";
import type { VariableOutput } from "../core/variable-output.js";

export interface ConsistencyOutcome {
  readonly variable: string;
  readonly summary: boolean;
  readonly reasons: string[];
}

export function consistencyOutcome(
  infos: ReadonlyArray<{ name: string; tags: readonly string[] }> | undefined,
  rows: ReadonlyMap<string, VariableOutput>,
): ConsistencyOutcome | undefined {
  for (const info of infos ?? []) {
    if (!info.tags.includes(DATA_CONSISTENCY_TAG)) continue;
    const output = rows.get(info.name);
    if (output?.error) return { variable: info.name, summary: false, reasons: [`the check failed: ${output.error.cls}: ${output.error.message}`] };
    const parsed = typeof output?.data === "string" ? parseConsistencyReport(output.data) : undefined;
    if (parsed) return { variable: info.name, ...parsed };
  }
  return undefined;
}
