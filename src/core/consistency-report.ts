/**
 * The data consistency report's text, shared by the check (run in the context runner, src/context/consistency.ts)
 * and the job that copies its result into the run's bookkeeping file (src/bookkeeping/consistency-outcome.ts). The
 * format is sf_daq_broker's `check.py` output:
 *
 * ```
 * Result of consistency check (summary) : False
 *     Reason : SPB_XTD9_XGM/DOOCS/MAIN number of trains is different from expected : 38 vs 40
 * ```
 * or `    OK : all tests passed` on the second line.
 */

/** The tag that marks the built-in variable among a context's variables. */
export const DATA_CONSISTENCY_TAG = "data_consistency";

const HEAD = "Result of consistency check (summary) : ";
const OK_LINE = "    OK : all tests passed";
const REASON = "    Reason : ";

export function formatConsistencyReport(reasons: readonly string[]): string {
  const summary = reasons.length === 0 ? "True" : "False";
  return [`${HEAD}${summary}`, ...(reasons.length === 0 ? [OK_LINE] : reasons.map((r) => `${REASON}${r}`))].join("\n");
}

/** The summary and reasons of a report, or undefined when the text is not one. */
export function parseConsistencyReport(text: string): { summary: boolean; reasons: string[] } | undefined {
  const [head, ...rest] = text.split("\n");
  if (!head?.startsWith(HEAD)) return undefined;
  const summary = head.slice(HEAD.length).trim() === "True";
  const reasons = rest.filter((l) => l.startsWith(REASON)).map((l) => l.slice(REASON.length));
  return { summary, reasons };
}
