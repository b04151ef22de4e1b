/**
 * `damnit calib <action>`: the management CLI of the calibration-constant store, mirroring PSCalib's `dcs`
 * (print, get, add, delversion, delrange, delctype, set-default, alias, legacy-find), HDF5 export/import in PSCalib's
 * layout, and `used`: what each run's variables looked up. `--store DIR` picks the store root; default `./calib`
 * (the local level of the database in the current directory).
 */
import Database from "better-sqlite3";
import { existsSync, mkdirSync, statSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import type { ArgumentsCamelCase, Argv, CommandModule } from "yargs";
import { DamnitError } from "../../core/errors.js";
import { shapeText, type NdArray } from "../../core/ndarray.js";
import { encodeNpy } from "../../db/npy.js";
import { findLegacyFile, scanLegacyDir } from "../../calibration/legacy-finder.js";
import { CalibStore, notFound, scopes, type CalibHit } from "../../calibration/store.js";
import { exportDetectorH5, readDetectorH5 } from "../../calibration/hdf5.js";
import { CalibUsageStore } from "../../calibration/usage.js";
import { readValueFile } from "../../calibration/value-file.js";
import { legacyAdditions } from "../../calibration/legacy-import.js";

const ACTIONS = ["print", "get", "add", "delversion", "delrange", "delctype", "set-default", "alias", "legacy-find", "export", "import", "import-legacy", "used"] as const;

interface Args {
  action: (typeof ACTIONS)[number];
  target?: string;
  output?: string;
  store?: string;
  detector?: string;
  ctype?: string;
  at?: string;
  end?: string;
  run?: number;
  vers?: number;
  range?: string;
  file?: string;
  message?: string;
  predecessor?: string;
  successor?: string;
  alias?: string;
  dir: string;
  json: boolean;
}

/** Epoch seconds or an ISO-8601 date; anything else is a CALIB_BAD_TIME error naming it. */
export function parseTime(text: string): number {
  const trimmed = text.trim();
  if (/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(trimmed)) return Number(trimmed);
  const ms = /^\d{4}-\d{2}-\d{2}/.test(trimmed) ? Date.parse(trimmed) : NaN;
  if (!Number.isFinite(ms)) throw new DamnitError("CALIB_BAD_TIME", `bad time '${text}': give epoch seconds or an ISO date like 2026-12-02T12:00:00Z`);
  return ms / 1000;
}

/** A run's start time from `<dbDir>/runs.sqlite`. */
export function runStartTime(dbDir: string, run: number): number {
  const path = join(dbDir, "runs.sqlite");
  if (!existsSync(path)) throw new DamnitError("NO_DATABASE", `--run needs a database: no ${path}`);
  const db = new Database(path, { readonly: true, timeout: 10_000 });
  try {
    const row = db.prepare("SELECT start_time FROM run_info WHERE run = ? AND start_time IS NOT NULL ORDER BY proposal LIMIT 1").get(run) as { start_time: number } | undefined;
    if (!row) throw new DamnitError("NO_RUN", `run ${run} has no start time in ${path}`);
    return Number(row.start_time);
  } finally {
    db.close();
  }
}

function summary(hit: CalibHit): string {
  const v = hit.value;
  const what = typeof v === "string" ? `text, ${v.length} characters` : `${v.dtype} ${shapeText(v.shape)}`;
  return `${hit.detname} ${hit.ctype} range ${hit.range} version ${hit.version} (produced ${new Date(hit.tsprod * 1000).toISOString()}): ${what}`;
}

function need<T>(value: T | undefined, option: string, action: string): T {
  if (value === undefined) throw new DamnitError("BAD_ARGUMENT", `'damnit calib ${action}' needs ${option}`);
  return value;
}

function localTime(tsec: number): string {
  const d = new Date(tsec * 1000);
  const p = (n: number, w = 2) => String(n).padStart(w, "0");
  const micro = Math.round((tsec % 1) * 1e6) % 1e6;
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(micro, 6)}`;
}

/** History as PSCalib prints it: `YYYY-mm-ddTHH:MM:SS.ffffff <record>` in local time, sorted. */
export function historyLines(store: CalibStore, scope: string): string[] {
  return store.historyOf(scope).map((h) => `${localTime(h.tsec)} ${h.record}`);
}

function printStore(store: CalibStore, only?: string): void {
  for (const d of store.detectors()) {
    if (only !== undefined && d.detname !== only) continue;
    console.log(`${d.detname}  dettype=${d.dettype} detid=${d.detid}${d.predecessor ? ` predecessor=${d.predecessor}` : ""}${d.successor ? ` successor=${d.successor}` : ""}`);
    for (const line of historyLines(store, scopes.detector(d.detname))) console.log(`  | ${line}`);
    for (const c of store.ctypes(d.detname)) {
      console.log(`  ${c}`);
      for (const r of store.ranges(d.detname, c)) {
        console.log(`    ${r.key}  begin=${r.begin} end=${r.end ?? "end"} versdef=${r.versdef}`);
        for (const v of store.versions(d.detname, c, r.key)) {
          console.log(`      v${String(v.vnum).padStart(4, "0")}  tsprod=${new Date(v.tsprod * 1000).toISOString()} ${v.dtype} ${v.dtype === "text" ? "" : shapeText(v.shape)}`);
        }
        for (const line of historyLines(store, scopes.range(d.detname, c, r.key))) console.log(`      | ${line}`);
      }
    }
  }
}

export const calibCommand: CommandModule<object, Args> = {
  command: "calib <action> [target] [output]",
  describe: "Calibration constants by detector, type, validity range and version (PSCalib's dcs)",
  builder: (y: Argv) =>
    y
      .positional("action", { choices: ACTIONS, describe: "what to do" })
      .positional("target", {
        type: "string",
        describe: "legacy-find: the directory of <begin>-<end>.data files; export: the detector (or -d); import: the HDF5 file",
      })
      .positional("output", { type: "string", describe: "export: FILE.h5, or a directory for PSCalib's <dir>/<dettype>/<dettype>-<detid>.h5" })
      .option("store", { type: "string", describe: "store root (default ./calib)" })
      .option("detector", { alias: "d", type: "string", describe: "detector name <dettype>-<detid> or an alias" })
      .option("ctype", { alias: "t", type: "string", describe: "constant type, e.g. pedestals" })
      .option("at", { alias: "T", type: "string", describe: "time: epoch seconds or ISO date" })
      .option("end", { type: "string", describe: "add: end of validity (default open-ended); alias: end of the alias" })
      .option("run", { alias: "r", type: "number", describe: "time = this run's start time in ./runs.sqlite (legacy-find: the run number)" })
      .option("vers", { alias: "v", type: "number", describe: "version number (PSCalib: --vers)" })
      .option("range", { alias: "g", type: "string", describe: "range key <begin>-<end>" })
      .option("file", { alias: "f", type: "string", describe: "data file: .npy, text array, or text for geometry" })
      .option("message", { alias: "m", type: "string", describe: "comment for the history" })
      .option("predecessor", { alias: "p", type: "string" })
      .option("successor", { alias: "s", type: "string" })
      .option("alias", { type: "string", describe: "alias: the alias name" })
      .option("dir", { type: "string", default: ".", describe: "used, import-legacy: the database directory" })
      .option("json", { type: "boolean", default: false, describe: "used: JSON output" }) as Argv<Args>,
  handler: async (argv: ArgumentsCamelCase<Args>) => {
    const a = argv.action;
    if (a === "used") return printUsed(argv);
    if (a === "import-legacy") return importLegacy(resolve(argv.store ?? "calib"), need(argv.target, "the legacy calib directory", a), argv);
    if (a === "import") return importFile(resolve(argv.store ?? "calib"), need(argv.target, "an HDF5 file", a));
    if (a === "legacy-find") {
      const { files, warnings } = scanLegacyDir(need(argv.target, "a directory", a));
      for (const w of warnings) process.stderr.write(`damnit: warning: ${w}\n`);
      const run = need(argv.run, "--run", a);
      const hit = findLegacyFile(files, run);
      if (!hit) throw new DamnitError("CALIB_NOT_FOUND", `no calibration file in ${argv.target} applies to run ${run}`);
      console.log(hit.path);
      return;
    }
    const root = resolve(argv.store ?? "calib");
    const time = (): number => (argv.at !== undefined ? parseTime(argv.at) : argv.run !== undefined ? runStartTime(".", argv.run) : need<number>(undefined, "--at or --run", a));
    const writes = a !== "print" && a !== "get" && a !== "export";
    if (!writes && !CalibStore.exists(root)) {
      if (a === "get") throw notFound(argv.detector ?? "?", argv.ctype ?? "?", time());
      throw new DamnitError("NO_DATABASE", `no calibration store at ${root} (give --store DIR)`);
    }
    const store = CalibStore.open(root, { readonly: !writes });
    try {
      const det = (): string => need(argv.detector, "--detector", a);
      const ctype = (): string => need(argv.ctype, "--ctype", a);
      switch (a) {
        case "print":
          printStore(store, argv.detector);
          break;
        case "export": {
          const detector = argv.detector ?? need(argv.target, "a detector", a);
          const output = need(argv.detector !== undefined && argv.output === undefined ? argv.target : argv.output, "FILE.h5", a);
          const dump = store.dumpDetector(detector);
          if (!dump) throw new DamnitError("CALIB_UNKNOWN_DETECTOR", `no detector '${detector}' in ${store.path}`);
          let file = output;
          if (output.endsWith("/") || (existsSync(output) && statSync(output).isDirectory())) {
            mkdirSync(join(output, dump.dettype), { recursive: true });
            file = join(output, dump.dettype, `${dump.detname}.h5`);
          }
          await exportDetectorH5(dump, file);
          console.log(`exported ${dump.detname} (${dump.ctypes.length} constant types) to ${file}`);
          break;
        }
        case "get": {
          const at = time();
          const hit = store.get({ detector: det(), ctype: ctype(), at, version: argv.vers, range: argv.range });
          if (argv.file) {
            const v = hit.value;
            writeFileSync(argv.file, typeof v === "string" ? v : encodeNpy(v as NdArray));
          }
          console.log(summary(hit));
          break;
        }
        case "add": {
          const value = readValueFile(need(argv.file, "--file", a), ctype());
          const r = store.add({
            detector: det(),
            ctype: ctype(),
            at: time(),
            end: argv.end !== undefined ? parseTime(argv.end) : undefined,
            value,
            version: argv.vers,
            message: argv.message,
            run: argv.run,
            predecessor: argv.predecessor,
            successor: argv.successor,
          });
          console.log(`added ${r.detname} ${argv.ctype} range ${r.range} version ${r.version}`);
          break;
        }
        case "delversion": {
          const v = store.deleteVersion(det(), ctype(), need(argv.range, "--range", a), argv.vers, argv.message);
          if (v === null) process.stderr.write(`damnit: warning: no such version in ${argv.detector} ${argv.ctype} range ${argv.range}; nothing deleted\n`);
          else console.log(`deleted version ${v}`);
          break;
        }
        case "delrange":
          if (!store.deleteRange(det(), ctype(), need(argv.range, "--range", a), argv.message)) process.stderr.write(`damnit: warning: no range ${argv.range}; nothing deleted\n`);
          else console.log(`deleted range ${argv.range}`);
          break;
        case "delctype":
          if (!store.deleteCtype(det(), ctype(), argv.message)) process.stderr.write(`damnit: warning: no ctype ${argv.ctype}; nothing deleted\n`);
          else console.log(`deleted ctype ${argv.ctype}`);
          break;
        case "set-default":
          store.setDefault(det(), ctype(), need(argv.range, "--range", a), need(argv.vers, "--version", a), argv.message);
          console.log(`default version of ${argv.range} is now ${argv.vers}`);
          break;
        case "alias":
          store.addAlias(need(argv.alias, "--alias", a), det(), argv.at !== undefined ? parseTime(argv.at) : null, argv.end !== undefined ? parseTime(argv.end) : null, argv.message);
          console.log(`alias ${argv.alias} → ${argv.detector}`);
          break;
      }
    } finally {
      store.close();
    }
  },
};

/** `import FILE.h5`: a whole detector from a PSCalib-layout file; a damaged file is refused whole, the store unchanged. */
async function importFile(root: string, file: string): Promise<void> {
  const dump = await readDetectorH5(file);
  const store = CalibStore.open(root);
  try {
    store.restoreDetector(dump);
  } finally {
    store.close();
  }
  const versions = dump.ctypes.reduce((n, c) => n + c.ranges.reduce((m, r) => m + r.versions.length, 0), 0);
  console.log(`imported ${dump.detname}: ${dump.ctypes.length} constant types, ${versions} versions`);
}

/** `used [--run N] [--json]`: the calibration constants each run's variables used, from calibration_usage.sqlite. */
function printUsed(argv: ArgumentsCamelCase<Args>): void {
  const usage = CalibUsageStore.open(argv.dir, { readonly: true });
  const rows = usage ? usage.list(argv.run !== undefined ? { runs: [argv.run] } : {}) : [];
  usage?.close();
  if (argv.json) {
    console.log(JSON.stringify(rows.map(({ recordedAt, ...r }) => ({ ...r, recordedAt: new Date(recordedAt * 1000).toISOString() }))));
    return;
  }
  if (rows.length === 0) {
    console.log("no calibration constants used (no run recorded any)");
    return;
  }
  for (const r of rows) {
    const alias = r.detector !== r.detname ? ` (as ${r.detector})` : "";
    console.log(`p${r.proposal} r${r.run} ${r.variable}: ${r.detname}${alias} ${r.ctype} range ${r.range} version ${r.version} (${r.level})`);
  }
}

/** `import-legacy DIR`: PSCalib's run-numbered `.data` files, their run ranges turned into times with runs.sqlite. */
function importLegacy(root: string, dir: string, argv: ArgumentsCamelCase<Args>): void {
  const starts = new Map<number, number | null>();
  const runStart = (run: number): number | null => {
    if (!starts.has(run)) {
      try {
        starts.set(run, runStartTime(argv.dir, run));
      } catch (err) {
        if (!(err instanceof DamnitError && err.code === "NO_RUN")) throw err;
        starts.set(run, null);
      }
    }
    return starts.get(run)!;
  };
  const { additions, warnings } = legacyAdditions(dir, runStart, { detector: argv.detector });
  for (const w of warnings) process.stderr.write(`damnit: warning: ${w}\n`);
  if (additions.length === 0) throw new DamnitError("CALIB_NOT_FOUND", `no importable <begin>-<end>.data files under ${dir}`);
  const store = CalibStore.open(root);
  try {
    store.addMany(additions);
  } finally {
    store.close();
  }
  console.log(`imported ${additions.length} legacy calibration file${additions.length === 1 ? "" : "s"} into ${join(root, "calib.sqlite")}`);
}
