/**
 * `damnit calib import-legacy <dir>`: PSCalib's run-numbered calibration tree
 * `<dir>/<Group>::CalibV1/<source>/<ctype>/<begin>-<end>.data` into a time-based store. Each valid file (names as
 * legacy-finder.ts accepts them; others are warned about) becomes version 1 of a range from the start time of run
 * `begin` to the start time of run `end` (inclusive, as the run numbers were), or open-ended for `end`; the run
 * start times come from the database's runs.sqlite, and a file whose runs have no start time there is skipped with
 * a warning. The detector is `<type>-<source>` as PSCalib names detector files (`CxiDs1.0:Cspad.0` →
 * `cspad-CxiDs1.0-Cspad.0`) unless given.
 */
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { isCtype } from "./ctypes.js";
import { scanLegacyDir } from "./legacy-finder.js";
import type { AddRequest } from "./store.js";
import { readValueFile } from "./value-file.js";

/** PSCalib's detector file name for a DAQ source: type from the device part, `:` replaced by `-`. */
export function detnameOfSource(source: string): string {
  const device = source.split(":").at(-1) ?? source;
  const type = /^([A-Za-z0-9]+?)(?:\.\d+)?$/.exec(device)?.[1]?.toLowerCase() ?? "notype";
  return `${type}-${source.replaceAll(":", "-")}`;
}

function subdirs(dir: string): string[] {
  return readdirSync(dir)
    .filter((name) => statSync(join(dir, name)).isDirectory())
    .sort();
}

export function legacyAdditions(
  dir: string,
  runStart: (run: number) => number | null,
  opts: { detector?: string } = {},
): { additions: AddRequest[]; warnings: string[] } {
  const additions: AddRequest[] = [];
  const warnings: string[] = [];
  for (const group of subdirs(dir).filter((g) => g.endsWith("::CalibV1"))) {
    for (const source of subdirs(join(dir, group))) {
      for (const ctype of subdirs(join(dir, group, source))) {
        const where = join(dir, group, source, ctype);
        if (!isCtype(ctype)) {
          warnings.push(`ignored ${where}: '${ctype}' is not a calibration type`);
          continue;
        }
        const scan = scanLegacyDir(where);
        warnings.push(...scan.warnings);
        for (const file of scan.files) {
          const begin = runStart(file.begin);
          const endRun = file.name.endsWith("-end.data") ? null : file.end;
          const end = endRun === null ? null : runStart(endRun);
          if (begin === null || (endRun !== null && end === null)) {
            const missing = begin === null ? file.begin : endRun;
            warnings.push(`skipped ${file.path}: run ${missing} has no start time in the database, so its time range is unknown`);
            continue;
          }
          additions.push({
            detector: opts.detector ?? detnameOfSource(source),
            ctype,
            at: begin,
            ...(end === null ? {} : { end: Math.max(end, begin) }),
            value: readValueFile(file.path, ctype),
            run: file.begin,
            message: `import-legacy ${file.path} (runs ${file.begin}-${endRun ?? "end"})`,
          });
        }
      }
    }
  }
  return { additions, warnings };
}
