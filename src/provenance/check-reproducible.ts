/**
 * `damnit reprocess --check-reproducible <runs>` (issue 14, item 5): process the runs again in a scratch copy of
 * the database directory (scratch.ts) with every external lookup replayed from the recorded answers, then compare
 * each value the reprocessing stored with the one stored before (compare.ts). The real runs.sqlite, lookups.sqlite
 * and run files are only read. A run that fails to process again counts as not reproduced.
 */
import { realpathSync } from "node:fs";
import { join } from "node:path";
import { RunDatabase } from "../db/run-database.js";
import type { ExtractResult } from "../extract/job.js";
import { processRunsLocally, type RunToProcess } from "../extract/local.js";
import { runOutputFile } from "../extract/store.js";
import { compareRun, type Difference } from "./compare.js";
import { makeScratch } from "./scratch.js";

export interface ReproduceOptions {
  readonly match?: readonly string[];
  readonly variables?: readonly string[];
  readonly mock?: boolean;
  readonly params?: Readonly<Record<string, unknown>>;
  readonly concurrency?: number;
  /** make the scratch copy in this directory (default: the system's temporary directory) */
  readonly scratchIn?: string;
  /** leave the scratch copy (its logs: process_logs/) for a look */
  readonly keepScratch?: boolean;
  readonly onRun?: (run: RunToProcess, result: ExtractResult) => void;
}

export interface ReproducibilityReport {
  readonly runs: ReadonlyArray<{ readonly run: number; readonly ok: boolean; readonly message?: string; readonly compared: number }>;
  readonly differences: readonly Difference[];
  /** the scratch copy's directory (removed unless kept) */
  readonly scratch: string;
  readonly kept: boolean;
}

export async function checkReproducible(db: RunDatabase, proposal: number, runs: readonly number[], opts: ReproduceOptions = {}): Promise<ReproducibilityReport> {
  const scratch = makeScratch(db.dir, opts.scratchIn);
  try {
    const copy = await RunDatabase.open(scratch.dir);
    let results: Map<RunToProcess, ExtractResult>;
    try {
      copy.newId();
      results = await processRunsLocally(
        copy,
        runs.map((run) => ({ proposal, run })),
        {
          data: "all",
          match: opts.match,
          variables: opts.variables,
          mock: opts.mock,
          params: opts.params,
          concurrency: opts.concurrency,
          lookups: { mode: "replay" },
          onRun: opts.onRun,
        },
      );
    } finally {
      copy.close();
    }
    const report: Array<ReproducibilityReport["runs"][number]> = [];
    const differences: Difference[] = [];
    for (const [{ run }, result] of [...results].sort(([a], [b]) => a.run - b.run)) {
      const found = await compareRun({
        proposal,
        run,
        names: result.stored,
        real: { db: join(db.dir, "runs.sqlite"), runFile: runOutputFile(db.dir, proposal, run), dir: realpathSync(db.dir) },
        scratch: { db: join(scratch.dir, "runs.sqlite"), runFile: runOutputFile(scratch.dir, proposal, run), dir: scratch.dir },
      });
      differences.push(...found);
      report.push({ run, ok: result.ok, message: result.message, compared: result.stored.length });
    }
    return { runs: report, differences, scratch: scratch.dir, kept: opts.keepScratch ?? false };
  } finally {
    if (!opts.keepScratch) scratch.remove();
  }
}
