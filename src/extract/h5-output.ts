/**
 * The per-run HDF5 file `extracted_data/p<P>_r<R>.h5` in DAMNIT's layout (spec §3.8):
 *
 *   / (attr provenance; damnit_provenance: the writing attempts' provenance records, src/provenance/h5-attribute.ts)
 *   /.reduced/<name>   summary: scalar, string, PNG bytes (1-D uint8) or 2×N trendline; attrs from SummaryAttrs
 *   /.preview/<name>   preview: dataset, or NetCDF4 group for a LabelledArray
 *   /.errors/<name>    error message (string), attr type = exception class
 *   /<name>/data       data: string or array; a LabelledArray makes /<name> a NetCDF4 group instead
 *
 * Writing merges like DAMNIT's combiner (§9.1): every variable named in the new outputs is replaced completely,
 * everything else in the old file is copied unchanged into a new file, which then replaces the old one by rename.
 * See h5-writer.ts for how bools become h5py's enum, h5-copy.ts for what a copy cannot keep, netcdf.ts for
 * LabelledArrays.
 */
import { randomBytes } from "node:crypto";
import { closeSync, constants, fchmodSync, fstatSync, fsyncSync, lstatSync, openSync, renameSync, rmSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import type { File as H5File } from "h5wasm/node";
import { DamnitError } from "../core/errors.js";
import { isNodeError } from "../core/node-errors.js";
import { type H5Lib, loadH5, openH5File } from "../h5/file.js";
import { copyAttributes, copyObject, finishScales, newScaleBook, type ScaleBook } from "../h5/copy.js";
import { attributeNames, attributeValue, childNames, children, objectKind, readStrings, stringAttribute } from "../h5/inspect.js";
import { checkArray, readStored, writeStored } from "../h5/values.js";
import { BOOL_ENUM, H5Writer } from "../h5/writer.js";
import { OBJTYPE_ATTR, checkLabelledArray, checkLabelledSet, isDataArrayGroup, readLabelled, writeLabelled, writeLabelledSet } from "./netcdf.js";
import type { DataValue, LabelledArray, SummaryAttrs, VariableOutput } from "../core/variable-output.js";
import { mergeFileProvenance, PROVENANCE_ATTRIBUTE } from "../provenance/h5-attribute.js";

export const SPECIAL_GROUPS = [".reduced", ".preview", ".errors"] as const;
/** Provenance of a new file when the caller gives none: DAMNIT's name for values computed from the context file. */
export const DEFAULT_PROVENANCE = "context.py";
/** Attribute naming the calibration constants a variable used (JSON). */
export const CALIBRATION_ATTR = "calibration";

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/**
 * Throw (naming the variable and the problem) unless `output` can be written: the checks writing does, without
 * writing, so that a result that cannot be stored becomes that variable's error instead of failing the run's write.
 */
export function checkOutput(output: VariableOutput): void {
  const where = `variable ${output.name}`;
  checkVariableName(output.name);
  const checkString = (text: string, what: string) => {
    if (text.includes("\0")) throw new Error(`${what}: HDF5 strings cannot contain NUL characters`);
  };
  const checkValue = (value: unknown, what: string, labelledAllowed: boolean) => {
    if (typeof value === "string") checkString(value, what);
    else if (labelledAllowed && isLabelled(value as DataValue)) checkLabelledArray(value as LabelledArray, what);
    else if (labelledAllowed && isKind(value, "image")) checkArray(value.data, what);
    else if (labelledAllowed && isKind(value, "dataset")) checkLabelledSet(value, what);
    else checkArray(value, what);
  };
  if (output.summary !== undefined) checkValue(output.summary, `${where} summary`, false);
  if (output.preview !== undefined) checkValue(output.preview, `${where} preview`, true);
  if (output.data !== undefined) checkValue(output.data, `${where} data`, true);
  for (const key of ["summary_method", "summary_type", "units"] as const) {
    const value = output.attrs[key];
    if (value === undefined) continue;
    if (typeof value !== "string") throw new TypeError(`${where}: attribute ${key} must be a string`);
    checkString(value, `${where} attribute ${key}`);
  }
  if (output.error) {
    checkString(output.error.cls, `${where} error class`);
    checkString(output.error.message, `${where} error message`);
  }
}

/** Temporary files of run-file writes end like this (DAMNIT's own fragments end `.writing.h5`: not ours to touch). */
export const TEMP_SUFFIX = ".damnit-writing.h5";

/**
 * Merge `outputs` into the run file `file` (which may not exist yet) and replace it atomically:
 * every variable named in `outputs` is replaced completely (its top-level group and its entries in .reduced,
 * .preview and .errors are dropped, then whatever the output has is written); every other variable already in the
 * file is kept with identical values, dtypes, shapes and attributes. `.reduced`, `.preview`, `.errors` always exist.
 * The caller holds a lock so no two merges of one file run at once; you don't lock.
 */
export async function writeRunOutput(file: string, outputs: readonly VariableOutput[], opts: RunOutputOptions = {}): Promise<void> {
  const tmp = await prepareRunOutput(file, outputs, opts);
  try {
    renameSync(tmp, file);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

/**
 * The first half of writeRunOutput: write the merged file as `<dir>/p<P>_r<R>.<random>.damnit-writing.h5` (mode 0666,
 * synced to disk) and return its path; renaming it over `file` is the caller's, so that the rename can be the last
 * step before committing the database rows. On any error the temporary file is removed.
 */
export interface RunOutputOptions {
  /** the root `provenance` attribute of a new file (DAMNIT's; default "context.py") */
  readonly provenance?: string;
  /** the writing attempt's provenance record (JSON), merged into the root `damnit_provenance` attribute */
  readonly record?: string;
}

export async function prepareRunOutput(file: string, outputs: readonly VariableOutput[], opts: RunOutputOptions = {}): Promise<string> {
  const replaced = new Set<string>();
  for (const output of outputs) {
    checkVariableName(output?.name);
    if (replaced.has(output.name)) throw new Error(`variable ${output.name} appears twice in one write`);
    replaced.add(output.name);
  }
  const lib = await loadH5();
  const tmp = join(dirname(file), `${basename(file).replace(/\.h5$/, "")}.${randomBytes(4).toString("hex")}${TEMP_SUFFIX}`);
  let writer: H5Writer | undefined;
  try {
    writer = new H5Writer(lib, tmp);
    const book = newScaleBook();
    const present = new Set<string>();
    let previousRecord: string | undefined;
    if (fileExists(file)) {
      const src = openH5File(lib, file);
      try {
        if (opts.record !== undefined) previousRecord = stringAttribute(lib, src.file_id, "/", PROVENANCE_ATTRIBUTE);
        copyKept(lib, src, writer, replaced, book, present, opts.record !== undefined ? new Set([PROVENANCE_ATTRIBUTE]) : undefined);
      } finally {
        src.close();
      }
      finishScales(writer, book);
    } else {
      writer.writeStringAttribute("/", "provenance", opts.provenance ?? DEFAULT_PROVENANCE);
    }
    if (opts.record !== undefined) writer.writeStringAttribute("/", PROVENANCE_ATTRIBUTE, mergeFileProvenance(previousRecord, opts.record, [...replaced]));
    for (const group of SPECIAL_GROUPS) if (!present.has(group)) writer.createGroup(`/${group}`);
    for (const output of outputs) writeOutput(writer, output, book);
    writer.close();
    // extracted_data/ is the team's (0777): between libhdf5's close and here someone could have put a symlink in
    // our file's place. Open it without following links, check it is the regular file we made, and give it its
    // mode and sync it through that descriptor: a planted link's target is never chmod-ed.
    const fd = openSync(tmp, constants.O_RDONLY | constants.O_NOFOLLOW);
    try {
      const stat = fstatSync(fd);
      if (!stat.isFile() || stat.nlink !== 1 || (process.getuid && stat.uid !== process.getuid())) {
        throw new DamnitError("UNSAFE_FILE", `refusing to finish ${tmp}: it is no longer the file this job wrote (replaced by someone else?)`);
      }
      fchmodSync(fd, 0o666);
      // On disk before it replaces the old file: a machine crash must not leave an empty run file behind.
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    return tmp;
  } catch (err) {
    if (writer) {
      // Only a file this call created: the constructor fails, creating nothing, if the name is taken.
      writer.abort();
      rmSync(tmp, { force: true });
    }
    throw err;
  }
}

/** Read a run file back into VariableOutputs keyed by variable name (data, summary, preview, attrs, error). */
export async function readRunOutput(file: string): Promise<Map<string, VariableOutput>> {
  const lib = await loadH5();
  const f = openH5File(lib, file);
  try {
    const { module } = lib;
    const id = f.file_id;
    const top = childNames(module, id, "/");
    const names = new Set(top.filter((n) => !n.startsWith(".")));
    const special: Record<string, Set<string>> = {};
    for (const group of SPECIAL_GROUPS) {
      const entries = top.includes(group) && objectKind(module, id, `/${group}`) === "group" ? childNames(module, id, `/${group}`) : [];
      special[group] = new Set(entries);
      for (const name of entries) names.add(name);
    }
    const result = new Map<string, VariableOutput>();
    for (const name of [...names].sort()) {
      const output: Mutable<VariableOutput> = { name, attrs: {} };
      if (special[".reduced"]!.has(name)) {
        const path = `/.reduced/${name}`;
        if (objectKind(module, id, path) === "dataset") {
          const summary = readStored(lib, f, path);
          if (summary !== undefined) output.summary = summary;
        }
        output.attrs = readSummaryAttrs(lib, id, path);
      }
      if (special[".preview"]!.has(name)) {
        const preview = readDataValue(lib, f, `/.preview/${name}`, false);
        if (preview !== undefined) output.preview = preview;
      }
      if (top.includes(name)) {
        const data = readDataValue(lib, f, `/${name}`, true);
        if (data !== undefined) output.data = data;
      }
      if (special[".errors"]!.has(name)) {
        const path = `/.errors/${name}`;
        if (objectKind(module, id, path) === "dataset") {
          output.error = { cls: stringAttribute(lib, id, path, "type") ?? "", message: readStrings(lib, id, path)[0] ?? "" };
        }
      }
      result.set(name, output);
    }
    return result;
  } finally {
    f.close();
  }
}

/**
 * Whether a run file to merge with exists. A symlink in its place counts as none: its target (maybe outside the
 * proposal, readable only by the service) is never read into the team's file, and the rename replaces the link.
 */
function fileExists(path: string): boolean {
  try {
    return !lstatSync(path).isSymbolicLink();
  } catch (err) {
    if (isNodeError(err, "ENOENT")) return false;
    throw err;
  }
}

function checkVariableName(name: unknown): asserts name is string {
  if (typeof name !== "string" || name === "" || name.startsWith(".") || name.includes("/")) {
    throw new Error(`invalid variable name ${JSON.stringify(name)}: names are non-empty, without "/" and not starting with "."`);
  }
}

/** Copy everything of the old file except the replaced variables; note which special groups it had. */
function copyKept(lib: H5Lib, src: H5File, w: H5Writer, replaced: ReadonlySet<string>, book: ScaleBook, present: Set<string>, skipRoot?: ReadonlySet<string>): void {
  const { module } = lib;
  copyAttributes(lib, src, w, "/", skipRoot);
  for (const [name, kind] of children(module, src.file_id, "/")) {
    const path = `/${name}`;
    if ((SPECIAL_GROUPS as readonly string[]).includes(name) && kind === "group") {
      w.createGroup(path);
      present.add(name);
      copyAttributes(lib, src, w, path);
      for (const [child, childKind] of children(module, src.file_id, path)) {
        if (!replaced.has(child)) copyObject(lib, src, w, `${path}/${child}`, book, childKind);
      }
    } else if (!replaced.has(name)) {
      copyObject(lib, src, w, path, book, kind);
    }
  }
}

function isKind<K extends "image" | "dataset">(value: unknown, kind: K): value is Extract<DataValue, { kind: K }> {
  return typeof value === "object" && value !== null && (value as { kind?: unknown }).kind === kind;
}

function isLabelled(value: DataValue): value is LabelledArray {
  return typeof value === "object" && value !== null && (value as { kind?: unknown }).kind === "labelled";
}

function writeOutput(w: H5Writer, output: VariableOutput, book: ScaleBook): void {
  const { name } = output;
  const where = `variable ${name}`;
  if (output.summary !== undefined) {
    const path = `/.reduced/${name}`;
    writeStored(w, path, output.summary, `${where} summary`);
    writeSummaryAttrs(w, path, output.attrs ?? {}, where);
  }
  if (output.preview !== undefined) {
    const path = `/.preview/${name}`;
    if (isLabelled(output.preview)) writeLabelled(w, path, output.preview, book, `${where} preview`);
    else if (isKind(output.preview, "image")) {
      // DAMNIT's store_preview: a figure's RGBA image, marked as an image
      writeStored(w, path, output.preview.data, `${where} preview`);
      w.writeStringAttribute(path, OBJTYPE_ATTR, "image");
    } else if (isKind(output.preview, "dataset")) throw new TypeError(`${where}: a preview cannot be a Dataset`);
    else writeStored(w, path, output.preview, `${where} preview`);
  }
  if (output.data !== undefined) {
    const path = `/${name}`;
    if (isLabelled(output.data)) {
      writeLabelled(w, path, output.data, book, `${where} data`);
    } else if (isKind(output.data, "dataset")) {
      writeLabelledSet(w, path, output.data, book, `${where} data`);
    } else if (isKind(output.data, "image")) {
      // DAMNIT's store_data: the figure's RGBA image as data, the group marked as an image
      w.createGroup(path);
      writeStored(w, `${path}/data`, output.data.data, `${where} data`);
      w.writeStringAttribute(path, OBJTYPE_ATTR, "image");
    } else {
      w.createGroup(path);
      writeStored(w, `${path}/data`, output.data, `${where} data`);
    }
  }
  if (output.error !== undefined) {
    const { cls, message } = output.error;
    if (typeof cls !== "string" || typeof message !== "string") throw new TypeError(`${where}: error class and message must be strings`);
    const path = `/.errors/${name}`;
    w.writeStringDataset(path, [message], []);
    w.writeStringAttribute(path, "type", cls);
  }
  writeCalibrationUse(w, output);
}

/**
 * The calibration constants a variable used (spec §D.6 provenance), as a JSON attribute `calibration` — a list of
 * {detector, detname, ctype, range, version, level} — on each object written for it; DAMNIT's readers ignore it.
 */
function writeCalibrationUse(w: H5Writer, output: VariableOutput): void {
  if (!output.calibration || output.calibration.length === 0) return;
  const text = JSON.stringify(output.calibration);
  const { name } = output;
  if (output.data !== undefined) w.writeStringAttribute(`/${name}`, CALIBRATION_ATTR, text);
  if (output.summary !== undefined) w.writeStringAttribute(`/.reduced/${name}`, CALIBRATION_ATTR, text);
  if (output.error !== undefined) w.writeStringAttribute(`/.errors/${name}`, CALIBRATION_ATTR, text);
}

function writeSummaryAttrs(w: H5Writer, path: string, attrs: SummaryAttrs, where: string): void {
  const strings = { summary_method: attrs.summary_method, summary_type: attrs.summary_type, units: attrs.units };
  for (const [key, value] of Object.entries(strings)) {
    if (value === undefined) continue;
    if (typeof value !== "string") throw new TypeError(`${where}: attribute ${key} must be a string`);
    w.writeStringAttribute(path, key, value);
  }
  if (attrs.max_diff !== undefined) {
    if (typeof attrs.max_diff !== "number") throw new TypeError(`${where}: max_diff must be a number`);
    w.writeAttribute(path, "max_diff", { class: "float", size: 8 }, [], Float64Array.of(attrs.max_diff));
  }
  if (attrs.bold !== undefined) {
    if (typeof attrs.bold !== "boolean") throw new TypeError(`${where}: bold must be true or false`);
    w.writeAttribute(path, "bold", BOOL_ENUM, [], Uint8Array.of(attrs.bold ? 1 : 0));
  }
  if (attrs.background !== undefined) {
    const bg = attrs.background;
    if (!Array.isArray(bg) || bg.length !== 3 || !bg.every((c) => Number.isInteger(c) && c >= 0 && c <= 255)) {
      throw new RangeError(`${where}: background must be three integers 0–255, got ${JSON.stringify(bg)}`);
    }
    w.writeAttribute(path, "background", { class: "int", size: 1, signed: false }, [3], Uint8Array.from(bg));
  }
}

function scalarOf(value: unknown): unknown {
  if (ArrayBuffer.isView(value) || Array.isArray(value)) {
    const items = value as unknown as ArrayLike<unknown>;
    return items.length === 1 ? items[0] : undefined;
  }
  return value;
}

function readSummaryAttrs(lib: H5Lib, fileId: bigint, path: string): SummaryAttrs {
  const attrs: Mutable<SummaryAttrs> = {};
  for (const key of attributeNames(lib.module, fileId, path)) {
    const value = attributeValue(lib, fileId, path, key);
    const scalar = scalarOf(value);
    switch (key) {
      case "summary_method":
      case "units":
        if (typeof scalar === "string") attrs[key] = scalar;
        break;
      case "summary_type":
        if (typeof scalar === "string") attrs.summary_type = scalar as SummaryAttrs["summary_type"];
        break;
      case "max_diff":
        if (typeof scalar === "number" || typeof scalar === "bigint") attrs.max_diff = Number(scalar);
        break;
      case "bold":
        if (typeof scalar === "number" || typeof scalar === "bigint" || typeof scalar === "boolean") attrs.bold = Number(scalar) !== 0;
        break;
      case "background":
        if ((ArrayBuffer.isView(value) || Array.isArray(value)) && (value as unknown as ArrayLike<unknown>).length === 3) {
          attrs.background = Array.from(value as unknown as ArrayLike<number | bigint>, Number) as [number, number, number];
        }
        break;
    }
  }
  return attrs;
}

/**
 * A DataValue stored at `path`: a NetCDF4 DataArray group, a variable group holding `data`, or (previews) a
 * dataset. Undefined for what the types cannot represent (xarray Datasets, string arrays, other records).
 */
export function readDataValue(lib: H5Lib, f: H5File, path: string, variableGroup: boolean): DataValue | undefined {
  const { module } = lib;
  const kind = objectKind(module, f.file_id, path);
  if (kind === "dataset") return readStored(lib, f, path);
  if (kind !== "group") return undefined;
  if (isDataArrayGroup(lib, f, path)) return readLabelled(lib, f, path);
  if (!variableGroup || stringAttribute(lib, f.file_id, path, OBJTYPE_ATTR) === "dataset") return undefined;
  const dataPath = `${path}/data`;
  return objectKind(module, f.file_id, dataPath) === "dataset" ? readStored(lib, f, dataPath) : undefined;
}
