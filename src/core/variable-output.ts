/**
 * What one variable's evaluation produces for one run, in the form it is stored: the contract between the context
 * runner (which evaluates and summarises), the HDF5 writer (`extracted_data/p<P>_r<R>.h5`) and the database
 * writer (`run_variables`). Mirrors DAMNIT's fragment layout (spec §3.8):
 * `/<name>/data`, `/.reduced/<name>`, `/.preview/<name>`, `/.errors/<name>`.
 */
import type { NdArray } from "./ndarray.js";

/** A value as HDF5 stores it: a variable-length UTF-8 string, or an array (shape [] for a scalar). */
export type StoredValue = string | NdArray;

/**
 * An array with named dimensions and coordinates (DAMNIT's xarray DataArray), stored as a NetCDF4-style group
 * with HDF5 dimension scales and `_damnit_objtype = "dataarray"`.
 */
export interface LabelledArray {
  readonly kind: "labelled";
  readonly data: NdArray;
  /** one name per dimension of `data` */
  readonly dims: readonly string[];
  /** 1-D coordinate arrays keyed by dimension name; a dimension may have none */
  readonly coords: Readonly<Record<string, NdArray>>;
  /** name of the array inside its group (xarray's DataArray name); default "data" */
  readonly name?: string;
  readonly attrs?: Readonly<Record<string, string | number>>;
}

/**
 * A figure as DAMNIT stores one (a matplotlib Figure from a Python context): its rendered RGBA image, an
 * (H, W, 4) uint8 array in `<name>/data` with the group attribute `_damnit_objtype = "image"`. Its table cell is
 * `thumbnail`, the PNG DAMNIT makes of the figure (larger side at most 300 px), as 1-D uint8 bytes; without one
 * the cell reads "<thumbnail error>", as DAMNIT's when the figure cannot be rendered.
 */
export interface FigureImage {
  readonly kind: "image";
  readonly data: NdArray;
  readonly thumbnail?: NdArray;
}

/**
 * Several labelled arrays sharing dimensions (an xarray Dataset), stored as one NetCDF4-style group with
 * `_damnit_objtype = "dataset"`. Each variable has its name ("/" becomes "_" in HDF5, as DAMNIT does); a dimension
 * has the same length and coordinate in every variable that has it. Its table cell reads `Dataset (<MB>MB)`.
 */
export interface LabelledSet {
  readonly kind: "dataset";
  readonly variables: readonly (LabelledArray & { readonly name: string })[];
  readonly attrs?: Readonly<Record<string, string | number>>;
}

export type DataValue = StoredValue | LabelledArray | FigureImage | LabelledSet;

/** Attributes of `.reduced/<name>`; they also become the `run_variables` row's columns and `attributes` JSON. */
export interface SummaryAttrs {
  /** the reduction that made the summary, e.g. "mean" */
  summary_method?: string;
  /** "trendline" for a 2×N trendline summary */
  summary_type?: "trendline";
  /** |nanmax − nanmin| of numeric data with more than one element (booleans: 1 if both values occur) */
  max_diff?: number;
  bold?: boolean;
  /** RGB 0–255 */
  background?: [number, number, number];
  units?: string;
}

/** The error a variable raised (or the reason it was skipped), stored as `.errors/<name>` with attr `type`. */
export interface VariableError {
  /** exception class name, e.g. "Skip", "DependencyError", "SourceNameError", "TypeError", "TimeoutError" */
  readonly cls: string;
  readonly message: string;
}

/**
 * One variable's stored result. Either `error` is set (and nothing else), or at least one of data/summary/preview.
 * A variable that returned nothing produces no VariableOutput at all, so earlier values stay.
 */
export interface VariableOutput {
  readonly name: string;
  readonly data?: DataValue;
  /** the table cell: a scalar, a string, a 2×N float64 trendline, or PNG bytes as a 1-D uint8 array */
  readonly summary?: StoredValue;
  readonly preview?: DataValue;
  readonly attrs: SummaryAttrs;
  readonly error?: VariableError;
  /** the calibration constants the variable looked up (written as the `calibration` attribute of its HDF5 objects) */
  readonly calibration?: readonly CalibrationUse[];
}

/** One calibration lookup a variable made (spec §D.6 provenance): what it asked for and exactly what answered. */
export interface CalibrationUse {
  /** the detector as asked (a name or an alias) */
  readonly detector: string;
  readonly detname: string;
  readonly ctype: string;
  readonly range: string;
  readonly version: number;
  readonly level: "local" | "proposal" | "repository";
}
