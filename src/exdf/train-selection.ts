/** Choosing trains of a run, with EXtra-data's semantics; selecting never reads data. */
import { DamnitError } from "../core/errors.js";

export type TrainSelection =
  /** These train IDs, intersected with the run's (sorted; unknown IDs are dropped). */
  | { readonly ids: readonly number[] }
  /** Train IDs from `start` (inclusive) to `stop` (exclusive); null means open-ended. */
  | { readonly idRange: readonly [number | null, number | null] }
  /** Positions in the run's train list, Python-style: negative counts from the end, `stop` exclusive. */
  | { readonly index: readonly [number | null, number | null] };

/** Apply a selection to sorted train IDs. */
export function selectTrainIds(trainIds: readonly number[], selection: TrainSelection): number[] {
  if ("ids" in selection) {
    const wanted = new Set(selection.ids);
    return trainIds.filter((t) => wanted.has(t));
  }
  if ("idRange" in selection) {
    const [start, stop] = selection.idRange;
    return trainIds.filter((t) => (start === null || t >= start) && (stop === null || t < stop));
  }
  const n = trainIds.length;
  const clamp = (i: number | null, fallback: number) => (i === null ? fallback : i < 0 ? Math.max(0, n + i) : Math.min(n, i));
  const [start, stop] = selection.index;
  return trainIds.slice(clamp(start, 0), clamp(stop, n));
}

/**
 * "A:B", "A:", ":B" or "A" (one train) as a range; `what` names the option in errors. Negative numbers count from
 * the end and are only allowed for positions (`positions: true`), never for train IDs.
 */
export function parseRange(text: string, what: string, opts: { positions?: boolean } = {}): [number | null, number | null] {
  const m = /^\s*(-?\d+)?\s*(?::\s*(-?\d+)?)?\s*$/.exec(text);
  if (!m || (m[1] === undefined && m[2] === undefined && !text.includes(":"))) {
    throw new DamnitError("BAD_ARGUMENT", `${what} '${text}' is not a range like 1000:1100, 1000: or :1100`);
  }
  const start = m[1] === undefined ? null : Number(m[1]);
  const stop = m[2] === undefined ? null : Number(m[2]);
  if (!opts.positions && ((start ?? 0) < 0 || (stop ?? 0) < 0)) {
    throw new DamnitError("BAD_ARGUMENT", `${what} '${text}' has a negative train ID; count from the end with --train-index`);
  }
  if (!text.includes(":")) return [start, start === null ? null : start === -1 ? null : start + 1];
  return [start, stop];
}
