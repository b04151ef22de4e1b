/**
 * `damnit reprocess --check-reproducible <runs>` (issue 14, item 5): process the runs again in a scratch copy of
 * the database directory (scratch.ts) with every external lookup replayed from the recorded answers, each variable
 * with the data kind it was stored from (plan.ts), then compare each value the reprocessing stored with the one
 * stored before (compare.ts). The real runs.sqlite, lookups.sqlite
 * and run files are only read. A run that fails to process again counts as not reproduced.
 */
import { realpathSync } from "node:fs";
import { join } from "node:path";
import { RunDatabase } from "../db/run-database.js";
import type { ExtractResult } from "../extract/job.js";
import { processRunsLocally, type RunToProcess } from "../extract/local.js";
import { runOutputFile } from "../extract/store.js";
import { compareRun, type Difference } from "./compare.js";
import { reprocessingPlan, type Pass } from "./plan.js";
import { makeScratch } from "./scratch.js";
import { ProvenanceStore } from "./store.js";

/** One run's results over several passes: what each stored, ok only if every pass was. */
function mergeResults(a: ExtractResult | undefined, b: ExtractResult): ExtractResult {
  if (!a) return b;
  return { ...b, ok: a.ok && b.ok, message: a.message ?? b.message, stored: [...new Set([...a.stored, ...b.stored])], errors: [...a.errors, ...b.errors], seconds: a.seconds + b.seconds };
}

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
  /** per run: processed again or not, the values compared, those computed now but never stored before */
  readonly runs: ReadonlyArray<{ readonly run: number; readonly ok: boolean; readonly message?: string; readonly compared: number; readonly unstored: readonly string[] }>;
  readonly differences: readonly Difference[];
  /** the scratch copy's directory (removed unless kept) */
  readonly scratch: string;
  readonly kept: boolean;
}

export async function checkReproducible(db: RunDatabase, proposal: number, runs: readonly number[], opts: ReproduceOptions = {}): Promise<ReproducibilityReport> {
  const scratch = makeScratch(db.dir, opts.scratchIn);
  try {
    const copy = await RunDatabase.open(scratch.dir);
    const results = new Map<number, ExtractResult>();
    let records: ProvenanceStore | undefined;
    try {
      copy.newId();
      try {
        records = ProvenanceStore.open(db.dir, { readonly: true });
      } catch {
        records = undefined; // no records: every run is one "all" pass
      }
      // Runs with the same passes are processed together (concurrently); a run's passes one after the other.
      const byPlan = new Map<string, { passes: Pass[]; runs: number[] }>();
      for (const run of runs) {
        const passes = reprocessingPlan(records, proposal, run, opts);
        const key = JSON.stringify(passes);
        const group = byPlan.get(key) ?? { passes, runs: [] };
        group.runs.push(run);
        byPlan.set(key, group);
      }
      records?.close();
      records = undefined;
      for (const { passes, runs: group } of byPlan.values()) {
        for (const [i, pass] of passes.entries()) {
          const done = await processRunsLocally(
            copy,
            group.map((run) => ({ proposal, run })),
            {
              data: pass.data,
              match: opts.match,
              variables: pass.variables,
              mock: opts.mock,
              params: opts.params,
              concurrency: opts.concurrency,
              lookups: { mode: "replay" },
              onRun: i === passes.length - 1 ? opts.onRun : undefined,
            },
          );
          for (const [{ run }, result] of done) results.set(run, mergeResults(results.get(run), result));
        }
      }
    } finally {
      records?.close();
      copy.close();
    }
    const report: Array<ReproducibilityReport["runs"][number]> = [];
    const differences: Difference[] = [];
    for (const [run, result] of [...results].sort(([a], [b]) => a - b)) {
      const found = await compareRun({
        proposal,
        run,
        names: result.stored,
        real: { db: join(db.dir, "runs.sqlite"), runFile: runOutputFile(db.dir, proposal, run), dir: realpathSync(db.dir) },
        scratch: { db: join(scratch.dir, "runs.sqlite"), runFile: runOutputFile(scratch.dir, proposal, run), dir: scratch.dir },
      });
      differences.push(...found.differences);
      report.push({ run, ok: result.ok, message: result.message, compared: result.stored.length - found.unstored.length, unstored: found.unstored });
    }
    return { runs: report, differences, scratch: scratch.dir, kept: opts.keepScratch ?? false };
  } finally {
    if (!opts.keepScratch) scratch.remove();
  }
}
