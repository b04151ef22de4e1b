/**
 * What processing some runs came to, for people: one line of counts, then each failed run and each variable error
 * (grouped, so a hundred runs failing alike read as one line). `damnit reprocess --local` and `damnit demo` print it.
 */
import type { ExtractResult } from "./job.js";
import type { RunToProcess } from "./local.js";

/** "Processed 5 runs in 3.2 s: 4 ok, 1 failed" plus one line per failed run and per variable error. */
export function summariseResults(results: ReadonlyMap<RunToProcess, ExtractResult>, seconds: number): { text: string; failedRuns: number } {
  const entries = [...results.entries()].sort((a, b) => a[0].run - b[0].run);
  const failed = entries.filter(([, r]) => !r.ok);
  const errors = entries.flatMap(([run, r]) => r.errors.map(([name, e]) => ({ run: run.run, name, e })));
  const lines = [
    `Processed ${entries.length} run${entries.length === 1 ? "" : "s"} in ${seconds.toFixed(1)} s: ${entries.length - failed.length} ok, ${failed.length} failed; ${errors.length} variable error${errors.length === 1 ? "" : "s"}`,
  ];
  for (const [run, r] of failed) lines.push(`  r${run.run} failed: ${(r.message ?? "").split("\n").join("\n    ")}`);
  // Group variable errors by variable and first line, so 100 runs failing alike read as one line.
  const groups = new Map<string, number[]>();
  for (const { run, name, e } of errors) {
    // The whole message on one line (a dependency tree's first line alone says nothing), cut to fit.
    const flat = e.message.replaceAll(/\s*\n\s*/g, " ");
    const key = `${name}: ${e.cls}: ${flat.length > 160 ? `${flat.slice(0, 159)}…` : flat}`;
    groups.set(key, [...(groups.get(key) ?? []), run]);
  }
  for (const [key, runs] of groups) lines.push(`  ${key} (run${runs.length === 1 ? "" : "s"} ${runs.join(", ")})`);
  if (entries.length > 0) lines.push(`Logs: process_logs/r<run>-p${entries[0]![0].proposal}.out`);
  return { text: lines.join("\n") + "\n", failedRuns: failed.length };
}
