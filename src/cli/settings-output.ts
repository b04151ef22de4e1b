/** What `damnit db-config` and `damnit listener config` share: DAMNIT's printing of settings and number parsing. */
import { DamnitError } from "../core/errors.js";
import { closeNames } from "../core/close-names.js";
import { describeDefault, isKnownSetting, parseSetting, type SettingsTable } from "../core/settings.js";

type Value = string | number | bigint | null | undefined;

/** Python-like repr, as DAMNIT prints settings: strings quoted, numbers bare. */
export function repr(value: Value): string {
  return typeof value === "string" ? `'${value}'` : String(value);
}

/** `--num`: a finite number, stored as INTEGER when whole (DAMNIT parses int, then float). */
export function parseNumber(text: string): number {
  const n = Number(text);
  if (text.trim() === "" || !Number.isFinite(n)) throw new DamnitError("BAD_ARGUMENT", `'${text}' is not a number`);
  return n;
}

/** `key=value` per stored setting. */
export function printSettings(stored: Record<string, Value>): void {
  for (const [k, v] of Object.entries(stored)) console.log(`${k}=${repr(v)}`);
}

/** Every setting the code reads: its stored value, or its default marked so, and what it means. */
export function printSettingDefaults(specs: SettingsTable, stored: Record<string, Value>): void {
  for (const [k, spec] of Object.entries(specs)) {
    const value = k in stored ? repr(stored[k]) : `${describeDefault(spec)} (default)`;
    console.log(`${k}=${value}`.padEnd(40) + `  ${spec.meaning}`);
  }
}

/**
 * The value to store for `key` given as text on the command line: a key the code reads is checked against its kind
 * (numbers stored as numbers, flags as 1/0); any other key is refused with the closest names, unless `any` (keys kept
 * for other tools), when it is stored as text, or as a number with `num`.
 */
export function settingToStore(table: SettingsTable, key: string, text: string, opts: { num: boolean; any: boolean; command: string }): string | number {
  if (!isKnownSetting(table, key)) {
    if (!opts.any) {
      const close = closeNames(key, Object.keys(table));
      throw new DamnitError(
        "UNKNOWN_SETTING",
        `damnit reads no setting named '${key}'${close.length > 0 ? ` (did you mean ${close.map((c) => `'${c}'`).join(", ")}?)` : ""}; ` +
          `'${opts.command} --defaults' lists them, '--any' stores another key as it is`,
      );
    }
    return opts.num ? parseNumber(text) : text;
  }
  const spec = table[key]!;
  if (opts.num && spec.kind === "text") return parseNumber(text);
  const value = parseSetting(key, spec, opts.num ? String(parseNumber(text)) : text);
  if (value === undefined) return text; // "" for a numeric setting: the default
  return typeof value === "boolean" ? (value ? 1 : 0) : value;
}
