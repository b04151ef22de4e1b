/**
 * The context-file API (`import { Variable, Cell, Skip } from "damnit/context"`): what a scientist's context file
 * uses to declare the variables of the run table. It follows DAMNIT's `@Variable` / `Cell` / `Skip`:
 *
 * ```ts
 * import { Variable, Cell } from "damnit/context";
 *
 * /** Mean pulse energy of the run *\/
 * export const xgm_mean = Variable({ title: "XGM/mean", units: "µJ", deps: { xgm: "var#xgm_intensity" } },
 *   (run, { xgm }) => mean(xgm));
 * ```
 *
 * A variable's name is the name it is exported under (or the `name` option). Its first argument is the run's data
 * (`DataCollection` from `damnit/data`); its second holds its dependencies, declared in `deps` with DAMNIT's
 * annotation strings: `var#<name or glob>`, `meta#run_number|proposal|proposal_path`, `param#<name>`, and
 * `cal#<detector>/<ctype>` (the calibration constants that apply at the run's start, as `calibration.get` gives).
 */
import type { DataCollection } from "../exdf/data-collection.js";
import { CONTEXT_REGISTRY, callSite, type CallSite } from "./registry.js";
import { Scalar } from "../array/scalar.js";

/** A dependency: an annotation string, another variable, or either with a default used when it has no value. */
export type DepSpec = string | VariableDefinition | { readonly from: string | VariableDefinition; readonly default: unknown };

export type DepValues<D> = { [K in keyof D]: any }; // eslint-disable-line @typescript-eslint/no-explicit-any

export interface VariableOptions<D extends Record<string, DepSpec> = Record<string, DepSpec>> {
  /** variable name (dotted identifier); default: the name the variable is exported under */
  readonly name?: string;
  /** column title; "/" makes hierarchical headers; default: the name */
  readonly title?: string;
  /** column tooltip; default: the JSDoc comment above the declaration */
  readonly description?: string;
  /** a reduction applied to the data for the table cell: mean, sum, nanmean, std, min, max, size, … */
  readonly summary?: string;
  /** "raw" (computed when a run is migrated) or "proc" (when it is calibrated); default raw, or proc if it depends on proc */
  readonly data?: "raw" | "proc";
  /** computed in a separate cluster job after the others */
  readonly cluster?: boolean;
  readonly tags?: string | readonly string[];
  /** used by other variables but not saved */
  readonly transient?: boolean;
  readonly units?: string;
  /** dependencies, by the name they are passed under */
  readonly deps?: D;
}

export type VariableFunction<D> = (run: DataCollection, deps: DepValues<D>) => unknown;

/** What `Variable()` returns; export it from the context file. */
export class VariableDefinition {
  /** marks definitions across module instances (a context may bundle its own copy of this module) */
  readonly __damnitVariable = true;
  constructor(
    readonly options: Readonly<Record<string, unknown>>,
    readonly fn: unknown,
    readonly site: CallSite,
  ) {}
}

export function Variable<D extends Record<string, DepSpec> = Record<string, never>>(
  options: VariableOptions<D>,
  fn: VariableFunction<D>,
): VariableDefinition;
export function Variable(fn: VariableFunction<Record<string, never>>): VariableDefinition;
export function Variable(optionsOrFn: unknown, maybeFn?: unknown): VariableDefinition {
  const bare = typeof optionsOrFn === "function";
  const options = bare ? {} : optionsOrFn;
  const fn = bare ? optionsOrFn : maybeFn;
  const definition = new VariableDefinition(
    typeof options === "object" && options !== null ? (options as Record<string, unknown>) : { __invalid: options },
    fn,
    callSite(),
  );
  CONTEXT_REGISTRY.definitions.push(definition);
  return definition;
}

export interface CellOptions {
  /** reduction for the table cell (overrides the variable's `summary`) */
  readonly summary?: string;
  /** the table cell's value itself: a number or string (or a small array) */
  readonly summaryValue?: unknown;
  /** 1-D or 2-D numeric array shown when the cell is opened */
  readonly preview?: unknown;
  readonly bold?: boolean;
  /** "#rrggbb" or [r, g, b] with 0–255 */
  readonly background?: string | readonly number[];
  readonly units?: string;
}

/**
 * A whole number stored as an integer: int64 in the HDF5 file, INTEGER in the run table, as DAMNIT stores a Python
 * int. A plain JS number is always stored as float64 (whole or not, so a column keeps its type from run to run);
 * return `integer(n)` (or a bigint) for counts. Dependents receive it as a `Scalar`, which acts as a number
 * (`n + 1`, `n > 10`; compare with `Number(n) === 10`).
 */
export function integer(value: number | bigint): Scalar {
  if (typeof value === "number" && !Number.isSafeInteger(value)) {
    throw new RangeError(`integer(${value}): not a whole number within ±2^53 (pass a bigint for larger ones)`);
  }
  const big = BigInt(value);
  if (big < -(2n ** 63n) || big >= 2n ** 63n) throw new RangeError(`integer(${value}) does not fit in 64 bits`);
  return new Scalar("int64", BigInt64Array.of(big));
}

/** A result with display options for its table cell (DAMNIT's `Cell`). */
export class Cell {
  readonly __damnitCell = true;
  readonly summary?: string;
  readonly summaryValue?: unknown;
  readonly preview?: unknown;
  readonly bold?: boolean;
  readonly background?: [number, number, number];
  readonly units?: string;

  constructor(
    readonly data: unknown,
    options: CellOptions = {},
  ) {
    const known = new Set(["summary", "summaryValue", "preview", "bold", "background", "units"]);
    for (const key of Object.keys(options)) {
      if (!known.has(key)) throw new TypeError(`Cell has no option '${key}' (options: ${[...known].join(", ")})`);
    }
    if (options.summary !== undefined && typeof options.summary !== "string") {
      throw new TypeError("Cell summary must be the name of a reduction, e.g. 'mean'");
    }
    if (options.bold !== undefined && typeof options.bold !== "boolean") throw new TypeError("Cell bold must be true or false");
    if (options.units !== undefined && (typeof options.units !== "string" || options.units === "")) {
      throw new TypeError("Cell units must be a non-empty string");
    }
    this.summary = options.summary;
    this.summaryValue = options.summaryValue;
    this.preview = options.preview;
    this.bold = options.bold;
    this.units = options.units;
    this.background = options.background === undefined ? undefined : normaliseColour(options.background);
  }
}

function normaliseColour(colour: unknown): [number, number, number] {
  if (typeof colour === "string") {
    const match = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(colour);
    if (!match) throw new RangeError(`Colour string should be a hex code like '#ffcc00', got '${colour}'`);
    return [parseInt(match[1]!, 16), parseInt(match[2]!, 16), parseInt(match[3]!, 16)];
  }
  if (Array.isArray(colour)) {
    if (colour.length !== 3) throw new TypeError(`Wrong number of values (${colour.length}) for R,G,B`);
    if (!colour.every((v) => typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= 255)) {
      throw new RangeError("Colour values must be whole numbers 0 - 255");
    }
    return [colour[0], colour[1], colour[2]];
  }
  throw new TypeError(`Don't understand colour ${String(colour)}; use '#rrggbb' or [r, g, b]`);
}

/** Throw to skip a variable for this run with a reason (shown grey in the table, not as a failure). */
export class Skip extends Error {
  override readonly name = "Skip";
}

/**
 * An array with named dimensions and coordinates (DAMNIT's xarray DataArray). `perTrain()` results of the run
 * reader already are one (dimension `trainId`); use this for others.
 */
export function labelled(
  data: unknown,
  opts: { dims: readonly string[]; coords?: Record<string, unknown>; name?: string; attrs?: Record<string, string | number> },
): { readonly __damnitLabelled: true; data: unknown; dims: readonly string[]; coords: Record<string, unknown>; name?: string; attrs?: Record<string, string | number> } {
  return { __damnitLabelled: true, data, dims: opts.dims, coords: opts.coords ?? {}, name: opts.name, attrs: opts.attrs };
}

export { lookup, LookupResponse, LookupError, LookupNotRecordedError, type LookupQuery } from "./lookup.js";
export { calibration, CalibrationError, CalibrationNotFoundError, type CalibrationQuery, type CalibrationConstants, type CalibrationAddition } from "./calibration.js";
export { dataConsistency, type DataConsistencyOptions } from "./consistency.js";
