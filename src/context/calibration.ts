/**
 * Calibration constants from context code (`import { calibration } from "damnit/context"`, spec §D.6):
 * `calibration.get({ detector, ctype, at?, version? })` answers from the database's calibration stores (local
 * `<db_dir>/calib`, the proposal's, the facility's `calib_repository`), `at` defaulting to the run's start time;
 * `calibration.add({ detector, ctype, value })` adds constants to the local store (an open range from the run's
 * start). The context runner installs the provider for each variable (on globalThis, so that every copy of this
 * module sees it) and records each lookup for provenance; outside a run there is none and calls say so.
 */
import type { NdArray } from "../core/ndarray.js";

export interface CalibrationQuery {
  /** a detector name `<dettype>-<detid>` or an alias */
  readonly detector: string;
  /** one of PSCalib's eleven types: pedestals, pixel_status, pixel_rms, pixel_gain, pixel_mask, … geometry */
  readonly ctype: string;
  /** epoch seconds; default: the run's start time */
  readonly at?: number;
  /** an exact version; default: the range's default version, else its last */
  readonly version?: number;
}

export interface CalibrationConstants {
  /** the array (in its ctype's element type), or the text of a geometry constant */
  readonly data: NdArray | string;
  readonly text?: string;
  readonly dtype: string;
  readonly shape: readonly number[];
  readonly detname: string;
  readonly ctype: string;
  /** the validity range's key, `<begin>-<end|end>` */
  readonly range: string;
  readonly version: number;
  /** production time (epoch seconds) */
  readonly tsprod: number;
  /** the store that answered */
  readonly level: "local" | "proposal" | "repository";
}

export interface CalibrationAddition {
  readonly detector: string;
  readonly ctype: string;
  /** an array (NdArray, a typed array, an array of numbers) or, for geometry, text */
  readonly value: NdArray | string | ArrayBufferView | readonly number[];
  /** start of validity; default: the run's start time */
  readonly at?: number;
  readonly message?: string;
}

/** What the runner installs while a variable runs. */
export interface CalibrationProvider {
  get(q: CalibrationQuery): CalibrationConstants;
  add(q: CalibrationAddition): { detname: string; range: string; version: number };
}

/** No constants apply (or a pinned version was deleted): the variable's error. */
export class CalibrationNotFoundError extends Error {
  override readonly name = "CalibrationNotFoundError";
}

/** Any other calibration problem: a bad ctype, time or value, a locked store, no store configured. */
export class CalibrationError extends Error {
  override readonly name: string = "CalibrationError";
}

const KEY = Symbol.for("damnit.context.calibration");
const holder = globalThis as unknown as Record<symbol, CalibrationProvider | undefined>;

/** The runner's hook: the provider for the variable about to run (undefined: none). */
export function setCalibrationProvider(provider: CalibrationProvider | undefined): void {
  holder[KEY] = provider;
}

function provider(): CalibrationProvider {
  const p = holder[KEY];
  if (!p) throw new CalibrationError("calibration constants are only available inside a variable while damnit processes a run");
  return p;
}

/** Errors of the store carry a typed code; context code sees classes it can catch. */
function translate(err: unknown): never {
  const code = err instanceof Error && "code" in err ? (err as { code: unknown }).code : undefined;
  if (code === "CALIB_NOT_FOUND") throw new CalibrationNotFoundError((err as Error).message);
  if (typeof code === "string" && err instanceof Error) throw new CalibrationError(err.message);
  throw err;
}

export const calibration = {
  /** The constants that apply at `at` (default: the run's start time); a CalibrationNotFoundError if none do. */
  get(q: CalibrationQuery): CalibrationConstants {
    try {
      return provider().get(q);
    } catch (err) {
      return translate(err);
    }
  },
  /** Add constants to the database's local store, valid from `at` (default: the run's start time) on. */
  add(q: CalibrationAddition): { detname: string; range: string; version: number } {
    try {
      return provider().add(q);
    } catch (err) {
      return translate(err);
    }
  },
};
