/**
 * Storing one run's results: the run's HDF5 file (`extracted_data/p<P>_r<R>.h5`) and its `run_variables` rows,
 * together, under the database's write lock. Two jobs for the same run (raw and proc, or a cluster follow-up)
 * therefore merge one after the other and neither drops the other's variables. The HDF5 file is replaced by
 * rename and the rows by one transaction, so a job killed at any moment leaves the previous results readable.
 */
import { readdirSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import { sharedDirectory } from "../core/safe-open.js";
import { complex } from "../db/complex.js";
import { isPng } from "../db/png-info.js";
import type { RunDatabase } from "../db/run-database.js";
import { checkVariableRows, type VariableRow } from "../db/run-variables.js";
import type { VariableValue } from "../db/values.js";
import type { VariableAttributes } from "../db/attributes.js";
import type { NdArray } from "../core/ndarray.js";
import { START_TIME } from "../context/validate.js";
import { checkOutput, TEMP_SUFFIX } from "./h5-output.js";
import type { StoredValue, VariableOutput } from "../core/variable-output.js";

/**
 * The provenance of values computed from the context file. DAMNIT's tools mark any other provenance as an
 * external submission, so computed values carry DAMNIT's name for "the context file".
 */
export const CONTEXT_PROVENANCE = "context.py";

export function extractedDataDir(dbDir: string): string {
  return join(dbDir, "extracted_data");
}

export function runOutputFile(dbDir: string, proposal: number, run: number): string {
  return join(extractedDataDir(dbDir), `p${proposal}_r${run}.h5`);
}

/** The directory for run files, shared by the whole team (mode 0777, as DAMNIT makes it). */
export function ensureExtractedDataDir(dbDir: string): string {
  // A symlink in its place is refused; someone else's directory keeps its mode (writing works if they let us).
  return sharedDirectory(extractedDataDir(dbDir), 0o777);
}

/**
 * Store one run's results under the database's write lock: `prepareFile(path)` writes the merged run file to a
 * temporary file and returns its name (the context runner does it, since it holds the data); the rows are written
 * in the lock's transaction; the temporary file is renamed over the run file last, just before the commit. A job
 * killed before the rename leaves the old file and rows; killed between rename and commit (microseconds), the new
 * file with the old rows, which the next job repairs.
 */
export async function commitRunResults(
  db: RunDatabase,
  proposal: number,
  run: number,
  rows: readonly VariableOutput[],
  prepareFile: (file: string, provenance: string) => Promise<string>,
  opts: { provenance?: string; onWait?: (seconds: number) => void } = {},
): Promise<void> {
  const provenance = opts.provenance ?? CONTEXT_PROVENANCE;
  const { values, startTime } = rowsFromOutputs(rows);
  // Refuse a value SQLite cannot hold before anything is written.
  checkVariableRows(values);
  ensureExtractedDataDir(db.dir);
  const file = runOutputFile(db.dir, proposal, run);
  await db.withWriteLock(async () => {
    removeAbandonedWrites(db.dir, proposal, run);
    const tmp = await prepareFile(file, provenance);
    try {
      db.setVariables(proposal, run, values, { provenance, startTime });
      renameSync(tmp, file);
    } catch (err) {
      rmSync(tmp, { force: true });
      throw err;
    }
  }, { onWait: opts.onWait });
}

/**
 * Temporary files of earlier writes of this run that were killed before renaming. Writers hold the write lock,
 * so while we hold it any such file is abandoned.
 */
function removeAbandonedWrites(dbDir: string, proposal: number, run: number): void {
  const dir = extractedDataDir(dbDir);
  const prefix = `p${proposal}_r${run}.`;
  for (const name of readdirSync(dir)) {
    if (name.startsWith(prefix) && name.endsWith(TEMP_SUFFIX)) rmSync(join(dir, name), { force: true });
  }
}

/**
 * Throw unless `output` can be stored both in the HDF5 file and as a database row: called for each variable as it is
 * computed, so that one unstorable value is that variable's error rather than a failed run.
 */
export function checkStorable(output: VariableOutput): void {
  checkOutput(output);
  checkVariableRows(rowsFromOutputs([output]).values);
}

/** The `run_variables` rows for outputs (DAMNIT's "reduced data" → `add_to_db`), and the run's start time. */
export function rowsFromOutputs(outputs: readonly VariableOutput[]): { values: Record<string, VariableRow>; startTime?: number } {
  const values: Record<string, VariableRow> = {};
  let startTime: number | undefined;
  for (const output of outputs) {
    if (output.name === START_TIME) {
      const value = output.summary === undefined ? undefined : cellValue(output.summary);
      if (typeof value === "number") startTime = value;
      continue;
    }
    if (output.error) {
      values[output.name] = { value: null, attributes: { error: output.error.message, error_cls: output.error.cls } };
      continue;
    }
    const { summary_method, summary_type, max_diff, ...display } = output.attrs;
    const attributes: VariableAttributes = {};
    if (display.units !== undefined) attributes.units = display.units;
    if (display.bold !== undefined) attributes.bold = display.bold;
    if (display.background !== undefined) attributes.background = display.background;
    values[output.name] = {
      value: output.summary === undefined ? null : cellValue(output.summary),
      maxDiff: max_diff ?? null,
      summaryMethod: summary_method ?? "",
      summaryType: summary_type ?? null,
      attributes: Object.keys(attributes).length > 0 ? attributes : null,
      real: output.summary !== undefined && typeof output.summary !== "string" && output.summary.dtype.startsWith("float"),
    };
  }
  return { values, startTime };
}

/** A summary as the database stores it: scalars as numbers, PNG bytes as a blob, other arrays as arrays. */
function cellValue(summary: StoredValue): VariableValue {
  if (typeof summary === "string") return summary;
  if (summary.shape.length === 0) return scalar(summary);
  if (summary.dtype === "uint8" && summary.shape.length === 1 && isPng(summary.data as Uint8Array)) return summary.data as Uint8Array;
  return summary;
}

function scalar(array: NdArray): VariableValue {
  const v = array.data[0]!;
  if (array.dtype === "bool") return v !== 0;
  // DAMNIT stores a complex scalar as a 16-byte blob (summary_type "complex")
  if (array.dtype === "complex64" || array.dtype === "complex128") return complex(v as number, array.data[1] as number);
  if (typeof v === "bigint") return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  return v;
}
