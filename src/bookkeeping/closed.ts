/**
 * A closed database is frozen (spec satellites §C.6): `<db_dir>/run_info/CLOSED` exists, or its `closed` setting is
 * on. The listener skips its notifications (`skipped: closed`); reprocess, extract and the web table's edits refuse
 * to write with DB_CLOSED. Settings stay writable, so `damnit db-config closed 0` can open it again (the marker
 * file is removed by hand).
 */
import { existsSync } from "node:fs";
import { DamnitError } from "../core/errors.js";
import type { RunDatabase } from "../db/run-database.js";
import { closedMarkerPath } from "./paths.js";

/** Why the database is closed (the marker file or the setting), or undefined when it is open. */
export function closedReason(db: Pick<RunDatabase, "dir" | "settings">): string | undefined {
  const marker = closedMarkerPath(db.dir);
  if (existsSync(marker)) return marker;
  if (db.settings.get("closed")) return `setting closed=1 in ${db.dir}/runs.sqlite`;
  return undefined;
}

export function isClosed(db: Pick<RunDatabase, "dir" | "settings">): boolean {
  return closedReason(db) !== undefined;
}

/** Throws DB_CLOSED naming the database and why, when it is closed; `action` says what was refused. */
export function assertOpenForWriting(db: Pick<RunDatabase, "dir" | "settings">, action: string): void {
  const reason = closedReason(db);
  if (reason !== undefined) throw new DamnitError("DB_CLOSED", `${db.dir} is closed for writing (${reason}); cannot ${action}`);
}
