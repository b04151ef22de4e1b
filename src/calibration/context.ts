/**
 * What context code sees as `calibration` (spec §D.6): `get({detector, ctype, at?, version?})` through the three
 * levels with `at` defaulting to the run's start time, `add(...)` into the local store (an open range from the run
 * start, under the store's write lock), and a record of every lookup (run, variable, detname, ctype, range,
 * version, level) for provenance. With `pins`, a lookup replays exactly the recorded range/version/level instead of
 * resolving again; a pinned version since deleted is a CALIB_NOT_FOUND error naming that range and version.
 * The context runner (src/extract/runner.ts) makes one per variable and installs it as the provider behind
 * `calibration` of `damnit/context`; the variable's `lookups` go with its output into the run's HDF5 file and the
 * database's usage record (usage.ts).
 */
import { DamnitError } from "../core/errors.js";
import type { CalibrationUse } from "../core/variable-output.js";
import { asCalibValue, type CalibValue } from "./data.js";
import { lookup, type LevelHit, type LevelRoot } from "./lookup.js";
import { CalibStore, notFound } from "./store.js";

export interface CalibLookupRecord extends CalibrationUse {
  readonly run: number;
  readonly variable: string;
}

export interface CalibContextOptions {
  readonly roots: readonly LevelRoot[];
  readonly run: number;
  readonly variable: string;
  /** recorded as the `experiment` parameter of ranges this context adds */
  readonly proposal?: number;
  /** The run's start time (s) from runs.sqlite; null when unknown (then `at` must be given). */
  readonly runStart: number | null;
  /** Recorded lookups to replay (`reprocess --pin-calibration`), keyed by `pinKey`. */
  readonly pins?: ReadonlyMap<string, CalibrationUse>;
}

export const pinKey = (detector: string, ctype: string): string => `${detector}/${ctype}`;

export class CalibrationContext {
  readonly lookups: CalibLookupRecord[] = [];
  constructor(private readonly opts: CalibContextOptions) {}

  private time(at: number | undefined): number {
    const t = at ?? this.opts.runStart;
    if (t === null) throw new DamnitError("CALIB_BAD_TIME", `run ${this.opts.run} has no start time; give calibration.get an explicit 'at'`);
    return t;
  }

  get(q: { detector: string; ctype: string; at?: number; version?: number }): LevelHit & { data: CalibValue; text?: string } {
    const at = this.time(q.at);
    const pin = this.opts.pins?.get(pinKey(q.detector, q.ctype));
    let hit: LevelHit;
    if (pin) {
      try {
        hit = lookup(this.opts.roots, { detector: pin.detname, ctype: q.ctype, at, range: pin.range, version: pin.version, level: pin.level });
      } catch (err) {
        if (err instanceof DamnitError && err.code === "CALIB_NOT_FOUND") {
          throw new DamnitError("CALIB_NOT_FOUND", `pinned ${q.ctype} constants of ${pin.detname} (range ${pin.range} version ${pin.version}, ${pin.level} store) no longer exist`);
        }
        throw err;
      }
    } else {
      hit = lookup(this.opts.roots, { detector: q.detector, ctype: q.ctype, at, version: q.version });
    }
    this.lookups.push({ run: this.opts.run, variable: this.opts.variable, detector: q.detector, detname: hit.detname, ctype: hit.ctype, range: hit.range, version: hit.version, level: hit.level });
    return { ...hit, data: hit.value, ...(typeof hit.value === "string" ? { text: hit.value } : {}) };
  }

  /** Add constants to the local store: an open range from `at` (default: the run start), version last+1. */
  add(q: { detector: string; ctype: string; value: CalibValue | ArrayLike<number> | ArrayBufferView; at?: number; message?: string }): { detname: string; range: string; version: number } {
    const local = this.opts.roots.find((r) => r.level === "local");
    if (!local) throw notFound(q.detector, q.ctype);
    const store = CalibStore.open(local.root);
    try {
      return store.add({
        detector: q.detector,
        ctype: q.ctype,
        at: this.time(q.at),
        value: asCalibValue(q.value),
        run: this.opts.run,
        ...(this.opts.proposal !== undefined ? { experiment: `p${this.opts.proposal}` } : {}),
        message: q.message ?? `from variable ${this.opts.variable} of run ${this.opts.run}`,
      });
    } finally {
      store.close();
    }
  }
}
