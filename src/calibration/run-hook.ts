/**
 * The context runner's side of `calibration` in context code: for one run, a CalibrationContext per variable
 * (installed as the provider of `damnit/context`'s `calibration` while that variable runs), with the run's start
 * time as the default `at`, the database's three levels, and, when pinning, the lookups recorded for that variable.
 * What each variable looked up is handed back to go with its output.
 */
import { setCalibrationProvider } from "../context/calibration.js";
import type { CalibrationUse } from "../core/variable-output.js";
import { CalibrationContext, pinKey } from "./context.js";
import { calibRoots } from "./lookup.js";

/** What a job tells its runner about calibration (crosses the IPC channel: plain data). */
export interface CalibrationJobConfig {
  /** the database directory: the local level is `<dbDir>/calib` */
  readonly dbDir: string;
  /** the proposal level's root; empty: `<proposal dir>/usr/Shared/amore/calib` */
  readonly proposalCalib: string;
  /** the facility repository's root; empty: none */
  readonly repository: string;
  /** reprocess --pin-calibration: per variable, the lookups to replay exactly */
  readonly pins?: ReadonlyArray<readonly [variable: string, uses: readonly CalibrationUse[]]>;
}

export interface RunCalibration {
  /** `name` is about to run: its calls of `calibration` go to a fresh context */
  begin(name: string): void;
  /** the lookups `name` made (empty if none) */
  usesOf(name: string): readonly CalibrationUse[];
  /** the run is over: no provider */
  end(): void;
}

export function runCalibration(
  config: CalibrationJobConfig,
  run: { readonly proposal: number; readonly run: number; readonly proposalPath: string; readonly startTime: number | null },
): RunCalibration {
  const roots = calibRoots({ dbDir: config.dbDir, proposalDir: run.proposalPath || undefined, proposalCalib: config.proposalCalib, repository: config.repository });
  const pins = new Map(config.pins ?? []);
  const contexts = new Map<string, CalibrationContext>();
  return {
    begin(name) {
      const recorded = pins.get(name);
      const context = new CalibrationContext({
        roots,
        run: run.run,
        proposal: run.proposal,
        variable: name,
        runStart: run.startTime,
        ...(recorded ? { pins: new Map(recorded.map((u) => [pinKey(u.detector, u.ctype), u])) } : {}),
      });
      contexts.set(name, context);
      setCalibrationProvider(context);
    },
    usesOf(name) {
      return (contexts.get(name)?.lookups ?? []).map(({ detector, detname, ctype, range, version, level }) => ({ detector, detname, ctype, range, version, level }));
    },
    end() {
      setCalibrationProvider(undefined);
    },
  };
}
