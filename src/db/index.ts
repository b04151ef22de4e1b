/** The run database (`runs.sqlite`) API. */
export { RunDatabase } from "./run-database.js";
export { DamnitError, isDamnitError, type DamnitErrorCode } from "../core/errors.js";
export { DB_FILE_NAME, LATEST_FORMAT_VERSION, DEFAULT_BUSY_TIMEOUT_MS } from "./format.js";
export { METAMETA_SETTINGS } from "./defaults.js";
export type { OpenOptions, JournalMode } from "./open.js";
export type { UpgradeReport } from "./migrate.js";
export type { VariableRow, WriteOptions, RunValues } from "./run-variables.js";
export type { RunTable, RunRow, CellValue, RunFilter, PivotRow, RunTableOptions } from "./run-table.js";
export type { VariableAttributes } from "./attributes.js";
export { ndarray, isNdArray, shapeText, type NdArray, type DType, type TypedArray } from "../core/ndarray.js";
export { complex, isComplex, type Complex } from "./complex.js";
export { encodeNpy, decodeNpy } from "./npy.js";
export { isPng, pngSize } from "./png-info.js";
export type { DecodedValue, PngThumbnail, UnreadableValue, VariableValue, SummaryType } from "./values.js";
export type { UserVariable, UserVariableType, ComputedVariable, VariableInfo } from "./variables.js";
export type { TimeComment } from "./comments.js";
export type { SettingValue } from "./metameta.js";
