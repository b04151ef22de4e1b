/**
 * PSCalib's legacy run-numbered calibration files (`CalibFileFinder`, spec §D.2): `<dir>/<begin>-<end>.data` with
 * numeric begin and a numeric end or `end` (= 9999), both ≤ 9999, inclusive; latest begin wins, narrower first.
 * Unlike PSCalib, a name whose end is before its begin (`12-3.data`) is rejected with a warning instead of kept
 * as a range that can never match.
 */
import { readdirSync } from "node:fs";
import { join } from "node:path";

export interface LegacyFile {
  readonly name: string;
  readonly path: string;
  readonly begin: number;
  readonly end: number;
}

const MAX_RUN = 9999;

/** The valid calibration files of one directory, plus a warning for each rejected `.data` name. */
export function scanLegacyDir(dir: string): { files: LegacyFile[]; warnings: string[] } {
  const files: LegacyFile[] = [];
  const warnings: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    if (name === "HISTORY" || !name.endsWith(".data")) continue;
    const m = /^(\d+)-(\d+|end)\.data$/.exec(name);
    if (!m) {
      warnings.push(`ignored ${join(dir, name)}: not <begin>-<end>.data with a numeric begin and a numeric or 'end' end`);
      continue;
    }
    const begin = Number(m[1]);
    const end = m[2] === "end" ? MAX_RUN : Number(m[2]);
    if (begin > MAX_RUN || end > MAX_RUN) {
      warnings.push(`ignored ${join(dir, name)}: run numbers above ${MAX_RUN}`);
      continue;
    }
    if (end < begin) {
      warnings.push(`ignored ${join(dir, name)}: end run ${end} is before begin run ${begin}, it could never apply`);
      continue;
    }
    files.push({ name, path: join(dir, name), begin, end });
  }
  return { files, warnings };
}

/** The file that applies to `run`, or null: latest begin wins, for equal begins the narrower range. */
export function findLegacyFile(files: readonly LegacyFile[], run: number): LegacyFile | null {
  let best: LegacyFile | null = null;
  for (const f of files) {
    if (f.begin > run || run > f.end) continue;
    if (best === null || f.begin > best.begin || (f.begin === best.begin && f.end < best.end)) best = f;
  }
  return best;
}
