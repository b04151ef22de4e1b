/** `--param NAME=VALUE` options for `param#` dependencies. */
import { DamnitError } from "../core/errors.js";

/** VALUE is read as JSON (numbers, booleans, lists…) and otherwise taken as a string. */
export function parseParams(items: readonly string[]): Record<string, unknown> {
  const params: Record<string, unknown> = {};
  for (const item of items) {
    const eq = item.indexOf("=");
    if (eq <= 0) throw new DamnitError("BAD_ARGUMENT", `--param '${item}' is not NAME=VALUE`);
    const value = item.slice(eq + 1);
    try {
      params[item.slice(0, eq)] = JSON.parse(value);
    } catch {
      params[item.slice(0, eq)] = value;
    }
  }
  return params;
}
