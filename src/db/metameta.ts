/**
 * `metameta`: the database's key/value settings (format version, db_id, proposal, Slurm resources, …).
 * Semantics follow DAMNIT's mapping: set = upsert, setDefault returns the existing value, deleting a missing key is an
 * error, bulk updates are one transaction.
 */
import type Database from "better-sqlite3";
import { DamnitError } from "../core/errors.js";
import { asSqlInteger } from "./sql-integer.js";

export type SettingValue = string | number | bigint | null;

export function getSetting(db: Database.Database, key: string): SettingValue | undefined {
  const row = db.prepare("SELECT value FROM metameta WHERE key = ?").get(key) as { value: SettingValue } | undefined;
  return row?.value;
}

export function setSetting(db: Database.Database, key: string, value: SettingValue): void {
  db.prepare("INSERT INTO metameta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value").run(
    key,
    asSqlInteger(value),
  );
}

/** Insert the value if the key is absent; return what is stored afterwards. */
export function setDefaultSetting(db: Database.Database, key: string, value: SettingValue): SettingValue {
  db.prepare("INSERT OR IGNORE INTO metameta (key, value) VALUES (?, ?)").run(key, asSqlInteger(value));
  return getSetting(db, key) ?? null;
}

export function deleteSetting(db: Database.Database, key: string): void {
  const { changes } = db.prepare("DELETE FROM metameta WHERE key = ?").run(key);
  if (changes === 0) throw new DamnitError("NO_SUCH_KEY", `no setting named '${key}' in metameta`);
}

export function updateSettings(db: Database.Database, values: Record<string, SettingValue>): void {
  db.transaction(() => {
    for (const [key, value] of Object.entries(values)) setSetting(db, key, value);
  }).immediate();
}

export function allSettings(db: Database.Database): Record<string, SettingValue> {
  const rows = db.prepare("SELECT key, value FROM metameta ORDER BY key").all() as { key: string; value: SettingValue }[];
  return Object.fromEntries(rows.map((r) => [r.key, r.value]));
}
