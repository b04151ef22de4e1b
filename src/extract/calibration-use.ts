/**
 * A job's calibration bookkeeping (spec §D.6): what its runner needs for `calibration` in context code (the
 * database's levels from `calib_proposal_dir` and `calib_repository`; with --pin-calibration, the lookups each
 * variable made last time, from `<db_dir>/calibration_usage.sqlite`), and, once the results are committed, the
 * lookups of each stored variable written to that record.
 */
import type { Logger } from "pino";
import type { SettingsReader } from "../core/settings.js";
import type { CalibrationUse, VariableOutput } from "../core/variable-output.js";
import type { MetametaSettings } from "../db/defaults.js";
import type { CalibrationJobConfig } from "../calibration/run-hook.js";
import { CALIB_USAGE_FILE, CalibUsageStore } from "../calibration/usage.js";
import { existsSync } from "node:fs";
import { join } from "node:path";

export function calibrationConfig(
  db: { readonly dir: string; readonly settings: SettingsReader<MetametaSettings> },
  request: { readonly proposal: number; readonly run: number; readonly pinCalibration?: boolean },
): CalibrationJobConfig {
  const config = { dbDir: db.dir, proposalCalib: db.settings.get("calib_proposal_dir"), repository: db.settings.get("calib_repository") };
  if (!request.pinCalibration) return config;
  const usage = CalibUsageStore.open(db.dir, { readonly: true });
  if (!usage) return { ...config, pins: [] };
  try {
    return { ...config, pins: [...usage.pinsOf(request.proposal, request.run)] };
  } finally {
    usage.close();
  }
}

/**
 * Replace the usage records of the variables just stored by what they looked up now. A database whose context
 * never used calibration gets no file.
 */
export function recordCalibrationUse(dbDir: string, request: { readonly proposal: number; readonly run: number }, stored: readonly VariableOutput[], logger: Logger): void {
  const uses = new Map<string, readonly CalibrationUse[]>(stored.map((o) => [o.name, o.calibration ?? []]));
  const any = stored.some((o) => (o.calibration?.length ?? 0) > 0);
  if (!any && !existsSync(join(dbDir, CALIB_USAGE_FILE))) return;
  try {
    const usage = CalibUsageStore.open(dbDir)!;
    try {
      usage.replace(request.proposal, request.run, uses);
    } finally {
      usage.close();
    }
  } catch (err) {
    logger.error(`Could not record the calibration constants used by r${request.run} in ${join(dbDir, CALIB_USAGE_FILE)}: ${(err as Error).message}`);
  }
}
