/**
 * The database's bookkeeping counters (spec satellites §C.6): the highest run number seen and the database-wide
 * attempt counter, in `metameta` keys DAMNIT's tools ignore (no schema change), with `run_info/LAST_RUN` and
 * `run_info/LAST_ARUN` as plain-text mirrors for people and scripts. A counter that is not a whole number is
 * reported (BAD_COUNTER), never silently reset (sf_daq_broker's defect (e)).
 */
import type Database from "better-sqlite3";
import { DamnitError } from "../core/errors.js";
import { getSetting, setSetting } from "../db/metameta.js";
import { writeFileAtomically } from "./atomic-file.js";
import { lastAttemptPath, lastRunPath } from "./paths.js";

export const LAST_RUN_KEY = "run_info_last_run";
export const LAST_ATTEMPT_KEY = "run_info_last_attempt";

export function readCounter(sqlite: Database.Database, key: string, where: string): number {
  const raw = getSetting(sqlite, key);
  if (raw === undefined || raw === null) return 0;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new DamnitError("BAD_COUNTER", `counter ${key}=${JSON.stringify(String(raw))} in ${where} is not a whole number ≥ 0; fix it with 'damnit db-config --any ${key} N'`);
  }
  return n;
}

/** Inside the caller's write transaction: raise LAST_RUN to `run` if higher, take the next attempt number. */
export function advanceCounters(sqlite: Database.Database, run: number, where: string, opts: { newAttempt: boolean }): { lastRun: number; lastAttempt: number } {
  const lastRun = Math.max(readCounter(sqlite, LAST_RUN_KEY, where), run);
  setSetting(sqlite, LAST_RUN_KEY, lastRun);
  let lastAttempt = readCounter(sqlite, LAST_ATTEMPT_KEY, where);
  if (opts.newAttempt) setSetting(sqlite, LAST_ATTEMPT_KEY, ++lastAttempt);
  return { lastRun, lastAttempt };
}

/** The text mirrors of the counters. */
export function writeCounterMirrors(dbDir: string, counters: { lastRun: number; lastAttempt: number }): void {
  writeFileAtomically(lastRunPath(dbDir), `${counters.lastRun}\n`);
  writeFileAtomically(lastAttemptPath(dbDir), `${counters.lastAttempt}\n`);
}
