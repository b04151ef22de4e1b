/**
 * `dataConsistency()`: a built-in variable a context file opts into (spec satellites §C.6, sf_daq_broker's
 * consistency check ported to train ids). For each source, the trains expected in the run's range (its first to last
 * train; with `rateDivisor` m only ids divisible by m) are compared with the trains where the source has data: same
 * count, same first and last, same ids. The table cell is True/False; the stored data is the report (summary and one
 * reason per problem), which the job also writes into the run's bookkeeping file.
 *
 * ```ts
 * export const data_consistency = dataConsistency({ sources: ["SPB_XTD9_XGM/DOOCS/MAIN"] });
 * ```
 */
import type { DataCollection } from "../exdf/data-collection.js";
import { DATA_CONSISTENCY_TAG, formatConsistencyReport } from "../core/consistency-report.js";
import { Cell, Variable, type VariableDefinition } from "./api.js";

export interface DataConsistencyOptions {
  /** the sources to check; default every source of the run */
  readonly sources?: readonly string[];
  /** beam-rate divisor m: only train ids divisible by m are expected (default 1: every train) */
  readonly rateDivisor?: number;
  readonly name?: string;
  readonly title?: string;
  /** "raw" (default) or "proc" */
  readonly data?: "raw" | "proc";
}

/** How many missing ids a reason lists before "…". */
const LISTED = 10;

/** The reasons the run's data are inconsistent (none: consistent). */
export function consistencyReasons(run: DataCollection, opts: Pick<DataConsistencyOptions, "sources" | "rateDivisor"> = {}): string[] {
  const m = opts.rateDivisor ?? 1;
  if (!Number.isSafeInteger(m) || m < 1) throw new RangeError(`dataConsistency: rateDivisor must be a whole number ≥ 1, not ${m}`);
  const all = run.trainIds;
  if (all.length === 0) return ["the run has no trains"];
  const first = all[0]!;
  const last = all[all.length - 1]!;
  const expected: number[] = [];
  for (let t = first; t <= last; t++) if (t % m === 0) expected.push(t);
  const reasons: string[] = [];
  for (const source of opts.sources ?? run.allSources) {
    if (!run.hasSource(source)) {
      reasons.push(`${source} is not in the run`);
      continue;
    }
    const present = run.selectTrainsWithData([source]).trainIds.filter((t) => t % m === 0);
    if (present.length !== expected.length) {
      reasons.push(`${source} number of trains is different from expected : ${present.length} vs ${expected.length}`);
      const have = new Set(present);
      const missing = expected.filter((t) => !have.has(t));
      if (missing.length > 0) reasons.push(`${source} missing trains : ${missing.slice(0, LISTED).join(", ")}${missing.length > LISTED ? `, … (${missing.length})` : ""}`);
    } else if (present[0] !== expected[0]) {
      reasons.push(`${source} first train ${present[0]} is not the expected ${expected[0]}`);
    } else if (present.at(-1) !== expected.at(-1)) {
      reasons.push(`${source} last train ${present.at(-1)} is not the expected ${expected.at(-1)}`);
    } else {
      const i = present.findIndex((t, k) => t !== expected[k]);
      if (i >= 0) reasons.push(`${source} train ids are not as expected (position ${i}: ${present[i]} vs ${expected[i]})`);
    }
  }
  return reasons;
}

export function dataConsistency(opts: DataConsistencyOptions = {}): VariableDefinition {
  return Variable(
    {
      ...(opts.name !== undefined ? { name: opts.name } : {}),
      title: opts.title ?? "Data consistency",
      description: "Whether every source has data for every train of the run (rate divisor applied); the reasons when not",
      tags: [DATA_CONSISTENCY_TAG],
      ...(opts.data !== undefined ? { data: opts.data } : {}),
    },
    (run) => {
      const reasons = consistencyReasons(run, opts);
      return new Cell(formatConsistencyReport(reasons), { summaryValue: reasons.length === 0 });
    },
  );
}
