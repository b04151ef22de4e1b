/**
 * A detector's constants as one HDF5 file in PSCalib's DCS layout (spec §D.2), so that they stay portable:
 *
 *   /  dettype, detid, detname (string[1]), tscfile (float64[1]), predecessor, successor (string[1], when known)
 *      _parameters/<key> (string, int64 or float64 [1]), _history/<"%.6f" of tsec> (string[1], the record)
 *      <ctype>/  ctype (string[1]), _parameters/, _history/
 *        <begin>-<end>/  begin (float64[1]), end (float64[1] or string[1] "end"), range (string[1]), versdef (int64[1])
 *          v<NNNN>/  version (int64[1]), tsprod (float64[1]), data (the array in its dtype, or a scalar string)
 *
 * Strings are fixed-length UTF-8 (h5py reads them as bytes, as PSCalib's files hold). Version groups are named
 * `v%04d` (v10000 beyond 9999); the number is read from `version`, never from the name. Unlike PSCalib, history
 * keys never collide: a record in the same microsecond as the one before is keyed one microsecond later.
 *
 * Import refuses a damaged file whole (no partial detector): a range without a numeric `begin`, a version without
 * `version` or `data`, a ctype PSCalib does not know, a dataset of the wrong kind, each named by its path.
 */
import { renameSync, rmSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { basename, dirname, join } from "node:path";
import type { File as H5File } from "h5wasm/node";
import { DamnitError } from "../core/errors.js";
import { isNdArray } from "../core/ndarray.js";
import { loadH5, openH5File, type H5Lib } from "../h5/file.js";
import { children, datasetMeta, readNdArray, readStrings } from "../h5/inspect.js";
import { H5T_FLOAT, H5T_INTEGER, H5T_STRING } from "../h5/type-classes.js";
import { writeArray } from "../h5/values.js";
import { H5Writer } from "../h5/writer.js";
import { isCtype } from "./ctypes.js";
import type { CtypeDump, DetectorDump, DumpNode, RangeDump, VersionDump } from "./store.js";

const PARAMS = "_parameters";
const HISTORY = "_history";

export const versionGroup = (vnum: number): string => `v${String(vnum).padStart(4, "0")}`;

// ---- writing ----

function writeText(w: H5Writer, path: string, text: string, shape: readonly number[] = [1]): void {
  const bytes = Buffer.from(text, "utf8");
  w.writeDataset(path, { class: "string", size: Math.max(1, bytes.length), utf8: true }, shape, bytes.length > 0 ? bytes : Buffer.alloc(1));
}

function writeFloat(w: H5Writer, path: string, value: number): void {
  w.writeDataset(path, { class: "float", size: 8 }, [1], Float64Array.of(value));
}

function writeInt(w: H5Writer, path: string, value: number): void {
  w.writeDataset(path, { class: "int", size: 8, signed: true }, [1], BigInt64Array.of(BigInt(value)));
}

/** `_parameters/` and `_history/` of one level. */
function writeNode(w: H5Writer, group: string, node: DumpNode): void {
  w.createGroup(`${group}/${PARAMS}`);
  for (const [key, value] of Object.entries(node.params)) {
    const path = `${group}/${PARAMS}/${key}`;
    if (typeof value === "string") writeText(w, path, value);
    else if (Number.isSafeInteger(value)) writeInt(w, path, value);
    else writeFloat(w, path, value);
  }
  w.createGroup(`${group}/${HISTORY}`);
  let last = -Infinity;
  for (const h of [...node.history].sort((a, b) => a.tsec - b.tsec)) {
    let micros = Math.round(h.tsec * 1e6);
    if (micros <= last) micros = last + 1;
    last = micros;
    writeText(w, `${group}/${HISTORY}/${(micros / 1e6).toFixed(6)}`, h.record);
  }
}

function writeVersion(w: H5Writer, group: string, v: VersionDump): void {
  w.createGroup(group);
  writeInt(w, `${group}/version`, v.vnum);
  writeFloat(w, `${group}/tsprod`, v.tsprod);
  if (typeof v.value === "string") writeText(w, `${group}/data`, v.value, []);
  else writeArray(w, `${group}/data`, v.value);
  writeNode(w, group, v);
}

/** Write `dump` as `file` (through a temporary file renamed into place: a reader never sees half of it). */
export async function exportDetectorH5(dump: DetectorDump, file: string): Promise<void> {
  const lib = await loadH5();
  const tmp = join(dirname(file), `.${basename(file)}.${randomBytes(4).toString("hex")}.tmp`);
  const w = new H5Writer(lib, tmp);
  try {
    writeText(w, "/dettype", dump.dettype);
    writeText(w, "/detid", dump.detid);
    writeText(w, "/detname", dump.detname);
    writeFloat(w, "/tscfile", dump.created);
    if (dump.predecessor !== null) writeText(w, "/predecessor", dump.predecessor);
    if (dump.successor !== null) writeText(w, "/successor", dump.successor);
    writeNode(w, "", dump);
    for (const c of dump.ctypes) {
      const cg = `/${c.ctype}`;
      w.createGroup(cg);
      writeText(w, `${cg}/ctype`, c.ctype);
      writeNode(w, cg, c);
      for (const r of c.ranges) {
        const rg = `${cg}/${r.key}`;
        w.createGroup(rg);
        writeFloat(w, `${rg}/begin`, r.begin);
        if (r.end === null) writeText(w, `${rg}/end`, "end");
        else writeFloat(w, `${rg}/end`, r.end);
        writeText(w, `${rg}/range`, r.key);
        writeInt(w, `${rg}/versdef`, r.versdef);
        writeNode(w, rg, r);
        for (const v of r.versions) writeVersion(w, `${rg}/${versionGroup(v.vnum)}`, v);
      }
    }
    w.close();
    renameSync(tmp, file);
  } catch (err) {
    w.abort();
    rmSync(tmp, { force: true });
    throw err;
  }
}

// ---- reading ----

class Reader {
  constructor(
    private readonly lib: H5Lib,
    private readonly f: H5File,
    private readonly file: string,
  ) {}

  bad(path: string, what: string): DamnitError {
    return new DamnitError("CALIB_BAD_FILE", `${this.file}: ${path} ${what}; nothing imported`);
  }

  kinds(path: string): Map<string, string> {
    return new Map(children(this.lib.module, this.f.file_id, path));
  }

  meta(path: string) {
    return datasetMeta(this.lib.module, this.f.file_id, path);
  }

  text(path: string): string {
    const meta = this.meta(path);
    if (meta.type !== H5T_STRING) throw this.bad(path, "is not a string");
    const values = readStrings(this.lib, this.f.file_id, path);
    if (values.length !== 1) throw this.bad(path, `holds ${values.length} strings, not one`);
    return values[0]!.replace(/\0+$/, "");
  }

  number(path: string): number {
    const meta = this.meta(path);
    if (meta.type !== H5T_FLOAT && meta.type !== H5T_INTEGER) throw this.bad(path, "is not a number");
    const arr = readNdArray(this.lib.module, this.f, path, meta);
    if (!arr || arr.data.length !== 1) throw this.bad(path, "is not a single number");
    const v = Number(arr.data[0]);
    if (!Number.isFinite(v)) throw this.bad(path, `is ${v}, not a finite number`);
    return v;
  }

  integer(path: string): number {
    const v = this.number(path);
    if (!Number.isSafeInteger(v)) throw this.bad(path, `is ${v}, not a whole number`);
    return v;
  }

  need(kinds: Map<string, string>, group: string, name: string, kind = "dataset"): string {
    const path = `${group}/${name}`;
    if (kinds.get(name) !== kind) throw this.bad(path, kinds.has(name) ? `is not a ${kind}` : "is missing");
    return path;
  }

  node(group: string, kinds: Map<string, string>): DumpNode {
    const params: Record<string, string | number> = {};
    const history: Array<{ tsec: number; record: string }> = [];
    if (kinds.get(PARAMS) === "group") {
      for (const [key, kind] of this.kinds(`${group}/${PARAMS}`)) {
        const path = `${group}/${PARAMS}/${key}`;
        if (kind !== "dataset") throw this.bad(path, "is not a dataset");
        params[key] = this.meta(path).type === H5T_STRING ? this.text(path) : this.number(path);
      }
    }
    if (kinds.get(HISTORY) === "group") {
      for (const [key, kind] of this.kinds(`${group}/${HISTORY}`)) {
        const path = `${group}/${HISTORY}/${key}`;
        const tsec = Number(key);
        if (kind !== "dataset" || !Number.isFinite(tsec)) throw this.bad(path, "is not a history record named by its time");
        history.push({ tsec, record: this.text(path) });
      }
      history.sort((a, b) => a.tsec - b.tsec);
    }
    return { params, history };
  }

  version(group: string): VersionDump {
    const kinds = this.kinds(group);
    const vnum = this.integer(this.need(kinds, group, "version"));
    if (vnum < 1) throw this.bad(`${group}/version`, `is ${vnum}, not a version number ≥ 1`);
    const tsprod = this.number(this.need(kinds, group, "tsprod"));
    const dataPath = this.need(kinds, group, "data");
    const meta = this.meta(dataPath);
    let value: VersionDump["value"];
    if (meta.type === H5T_STRING) value = this.text(dataPath);
    else {
      const arr = readNdArray(this.lib.module, this.f, dataPath, meta);
      if (!arr || !isNdArray(arr)) throw this.bad(dataPath, "is neither a numeric array nor a string");
      value = arr;
    }
    return { vnum, tsprod, value, ...this.node(group, kinds) };
  }

  range(group: string, key: string): RangeDump {
    const kinds = this.kinds(group);
    const begin = this.number(this.need(kinds, group, "begin"));
    const endPath = this.need(kinds, group, "end");
    let end: number | null;
    if (this.meta(endPath).type === H5T_STRING) {
      const text = this.text(endPath);
      if (text !== "end") throw this.bad(endPath, `is '${text}', neither a number nor "end"`);
      end = null;
    } else end = this.number(endPath);
    const versdef = kinds.has("versdef") ? this.integer(`${group}/versdef`) : 0;
    const versions: VersionDump[] = [];
    for (const [name, kind] of kinds) {
      if (kind === "group" && /^v\d+$/.test(name)) versions.push(this.version(`${group}/${name}`));
    }
    versions.sort((a, b) => a.vnum - b.vnum);
    const seen = new Set<number>();
    for (const v of versions) {
      if (seen.has(v.vnum)) throw this.bad(group, `holds version ${v.vnum} twice`);
      seen.add(v.vnum);
    }
    return { key, begin, end, versdef, versions, ...this.node(group, kinds) };
  }

  ctype(name: string): CtypeDump {
    const group = `/${name}`;
    const kinds = this.kinds(group);
    if (!isCtype(name)) throw this.bad(group, "is not one of the eleven calibration types");
    const ranges: RangeDump[] = [];
    for (const [key, kind] of kinds) {
      if (kind === "group" && key !== PARAMS && key !== HISTORY) ranges.push(this.range(`${group}/${key}`, key));
    }
    return { ctype: name, ranges, ...this.node(group, kinds) };
  }

  detector(): DetectorDump {
    const kinds = this.kinds("/");
    const detname = this.text(this.need(kinds, "", "detname"));
    const dettype = kinds.has("dettype") ? this.text("/dettype") : detname.slice(0, detname.indexOf("-"));
    const detid = kinds.has("detid") ? this.text("/detid") : detname.slice(detname.indexOf("-") + 1);
    if (`${dettype}-${detid}` !== detname) throw this.bad("/detname", `'${detname}' is not <dettype>-<detid> of dettype '${dettype}' and detid '${detid}'`);
    const created = kinds.has("tscfile") ? this.number("/tscfile") : Date.now() / 1000;
    const predecessor = kinds.has("predecessor") ? this.text("/predecessor") : null;
    const successor = kinds.has("successor") ? this.text("/successor") : null;
    const ctypes: CtypeDump[] = [];
    for (const [name, kind] of kinds) {
      if (kind === "group" && name !== PARAMS && name !== HISTORY) ctypes.push(this.ctype(name));
    }
    return { detname, dettype, detid, created, predecessor, successor, ctypes, ...this.node("", kinds) };
  }
}

/** Read a PSCalib-layout file into a dump; a damaged file is a CALIB_BAD_FILE error naming the path. */
export async function readDetectorH5(file: string): Promise<DetectorDump> {
  const lib = await loadH5();
  let f: H5File;
  try {
    f = openH5File(lib, file);
  } catch (err) {
    throw new DamnitError("CALIB_BAD_FILE", `cannot import ${(err as Error).message}`, { cause: err });
  }
  try {
    return new Reader(lib, f, file).detector();
  } finally {
    f.close();
  }
}
