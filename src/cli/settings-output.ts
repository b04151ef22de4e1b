/** What `damnit db-config` and `damnit listener config` share: DAMNIT's printing of settings and number parsing. */
import { DamnitError } from "../core/errors.js";

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
export function printSettingDefaults(specs: Record<string, { default: string | number; meaning: string }>, stored: Record<string, Value>): void {
  for (const [k, spec] of Object.entries(specs)) {
    const value = k in stored ? repr(stored[k]) : `${repr(spec.default)} (default)`;
    console.log(`${k}=${value}`.padEnd(40) + `  ${spec.meaning}`);
  }
}
