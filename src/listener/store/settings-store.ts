/**
 * The listener's settings (DAMNIT's `settings` table): read typed and with their defaults through LISTENER_SETTINGS
 * (`get`, from SettingsReader), and listed, set and deleted as stored (for `damnit listener config`).
 */
import type Database from "better-sqlite3";
import { SettingsReader, storedDefault } from "../../core/settings.js";
import { LISTENER_SETTINGS, type ListenerSettings } from "../settings.js";

export type SettingValue = string | number;

/** The stored defaults by key (sorted), as a new store holds them (DAMNIT inserts them on every open when absent). */
export function storedListenerDefaults(): Record<string, SettingValue> {
  const stored: Record<string, SettingValue> = {};
  for (const [key, spec] of Object.entries(LISTENER_SETTINGS).sort(([a], [b]) => (a < b ? -1 : 1))) if (spec.stored) stored[key] = storedDefault(spec);
  return stored;
}

function readSetting(sqlite: Database.Database, key: string): SettingValue | undefined {
  const row = sqlite.prepare("SELECT value FROM settings WHERE key = ?").get(key) as { value: SettingValue } | undefined;
  return row?.value ?? undefined;
}

export class ListenerSettingsStore extends SettingsReader<ListenerSettings> {
  constructor(
    private readonly sqlite: Database.Database,
    /** called after a change (the databases' snapshot depends on static_mode) */
    private readonly onChange: () => void,
  ) {
    super(LISTENER_SETTINGS, (key) => readSetting(sqlite, key));
  }

  /** Insert the stored defaults that are absent (DAMNIT's insert-if-missing on open). */
  insertMissingDefaults(): void {
    const insert = this.sqlite.prepare("INSERT OR IGNORE INTO settings(key, value) VALUES (?, ?)");
    this.sqlite.transaction(() => {
      for (const [key, value] of Object.entries(storedListenerDefaults())) insert.run(key, value);
    })();
  }

  /** Every stored setting, by key. */
  all(): Record<string, SettingValue> {
    const rows = this.sqlite.prepare("SELECT key, value FROM settings ORDER BY key").all() as Array<{ key: string; value: SettingValue }>;
    return Object.fromEntries(rows.map((r) => [r.key, r.value]));
  }

  /** The stored value of a key, as stored (undefined when absent). */
  raw(key: string): SettingValue | undefined {
    return readSetting(this.sqlite, key);
  }

  set(key: string, value: SettingValue): void {
    this.sqlite.prepare("INSERT INTO settings(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value").run(key, value);
    this.onChange();
  }

  /** Delete a stored setting; false when it was not stored. */
  delete(key: string): boolean {
    const deleted = this.sqlite.prepare("DELETE FROM settings WHERE key = ?").run(key).changes > 0;
    this.onChange();
    return deleted;
  }
}
