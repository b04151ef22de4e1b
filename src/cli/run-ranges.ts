/** `--runs 1-10,15`: run number ranges as a predicate. */
import { DamnitError } from "../core/errors.js";
import type { RunFilter } from "../db/run-table.js";

/** Parse `1-10,15` into a predicate; throws on anything else. */
export function parseRunRanges(text: string): RunFilter {
  const ranges: [number, number][] = [];
  for (const part of text.split(",")) {
    const m = /^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$/.exec(part);
    if (!m) throw new DamnitError("BAD_ARGUMENT", `'${part.trim()}' is not a run number or range like 1-10,15`);
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    if (hi < lo) throw new DamnitError("BAD_ARGUMENT", `run range ${lo}-${hi} is backwards`);
    ranges.push([lo, hi]);
  }
  return (run) => ranges.some(([lo, hi]) => run >= lo && run <= hi);
}
