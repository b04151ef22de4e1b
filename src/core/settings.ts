/**
 * Typed key/value settings, the one mechanism behind both stores' settings (`runs.sqlite`'s `metameta` and
 * `listener.sqlite`'s `settings`). Each store has one table of `SettingSpec`s (kind, default, meaning); every
 * reader goes through `SettingsReader.get`, so the default the code applies is the one the table documents and
 * that `--defaults` prints. Keys are the table's keys: an unknown key does not compile.
 */
import { DamnitError } from "./errors.js";

/**
 * How a stored value is read:
 * - `text`: trimmed text ("" when absent and no default);
 * - `number`: any finite number; `integer`: a whole number; `non-negative`: a number ≥ 0; `positive`: a number > 0;
 *   `positive-integer`: a whole number > 0 (an empty value means the default for all of these, as in DAMNIT);
 * - `flag`: 0, "0", "false", "no", "off" and "" are false, anything else true.
 */
export type SettingKind = "text" | "number" | "integer" | "non-negative" | "positive" | "positive-integer" | "flag";

export type SettingValueOf<K extends SettingKind> = K extends "text" ? string : K extends "flag" ? boolean : number;

/** A value as SQLite hands it back. */
export type RawSetting = string | number | bigint | null | undefined;

export interface SettingSpec<K extends SettingKind = SettingKind> {
  readonly kind: K;
  /** the value when the key is absent, or a function computing it on this machine (e.g. ¾ of its memory) */
  readonly default: SettingValueOf<K> | (() => SettingValueOf<K>);
  /** how the default reads in `--defaults` when it is computed, e.g. "3/4 of the machine's memory" */
  readonly defaultText?: string;
  /** written when the store is created (or, for the listener, on every open when absent) */
  readonly stored: boolean;
  readonly meaning: string;
}

export type SettingsTable = Readonly<Record<string, SettingSpec>>;

/** Define a settings table, keeping each entry's kind in its type (so `get` returns string, number or boolean). */
export function settingsTable<T extends { readonly [K in keyof T]: SettingSpec }>(table: T): T {
  return table;
}

export function defaultOf<K extends SettingKind>(spec: SettingSpec<K>): SettingValueOf<K> {
  return typeof spec.default === "function" ? (spec.default as () => SettingValueOf<K>)() : spec.default;
}

const FALSE_WORDS = new Set(["0", "false", "no", "off", ""]);

/**
 * Parse a stored value by its spec. Returns undefined when the value is absent; throws `BAD_SETTING` naming the key
 * when it is present but not of the spec's kind.
 */
export function parseSetting<K extends SettingKind>(
  key: string,
  spec: SettingSpec<K>,
  raw: RawSetting,
  /** the store, for the message (e.g. "in /data/db/runs.sqlite; change it with 'damnit db-config'") */
  where?: string,
): SettingValueOf<K> | undefined {
  if (raw === undefined || raw === null) return undefined;
  const text = String(raw).trim();
  const bad = (what: string): never => {
    const value = JSON.stringify(String(raw)).slice(0, 80);
    throw new DamnitError("BAD_SETTING", `setting ${key}=${value}${where ? ` ${where}` : ""} is not ${what} (${spec.meaning})`);
  };
  switch (spec.kind) {
    case "text":
      return text as SettingValueOf<K>;
    case "flag":
      return !FALSE_WORDS.has(text.toLowerCase()) as SettingValueOf<K>;
    default: {
      if (text === "") return undefined; // DAMNIT leaves numeric settings empty to mean "the default"
      const n = Number(text);
      if (!Number.isFinite(n)) return bad("a number");
      if (spec.kind === "integer" && !Number.isInteger(n)) return bad("a whole number");
      if (spec.kind === "non-negative" && !(n >= 0)) return bad("a number of 0 or more");
      if (spec.kind === "positive" && !(n > 0)) return bad("a number greater than 0");
      if (spec.kind === "positive-integer" && !(Number.isInteger(n) && n > 0)) return bad("a whole number greater than 0");
      return n as SettingValueOf<K>;
    }
  }
}

/** Reads one store's settings through its table. `lookup` returns the stored raw value of a key. */
export class SettingsReader<T extends SettingsTable> {
  constructor(
    private readonly table: T,
    private readonly lookup: (key: string) => RawSetting,
    private readonly opts: {
      /** where the settings are kept, for messages, e.g. "in /data/db/runs.sqlite" */
      readonly where?: string;
      /** called when a stored value is not of its kind; the default is used instead (default: throw) */
      readonly onInvalid?: (err: DamnitError) => void;
    } = {},
  ) {}

  /** The setting's value, or its default when absent (or invalid, when an `onInvalid` handler is given). */
  get<K extends keyof T & string>(key: K): SettingValueOf<T[K]["kind"]> {
    const spec = this.table[key] as SettingSpec<T[K]["kind"]>;
    try {
      const value = parseSetting(key, spec, this.lookup(key), this.opts.where);
      if (value !== undefined) return value;
    } catch (err) {
      if (!(err instanceof DamnitError) || !this.opts.onInvalid) throw err;
      this.opts.onInvalid(err);
    }
    return defaultOf(spec);
  }

  /** Whether the key has a stored value (not just its default). */
  isSet(key: keyof T & string): boolean {
    const raw = this.lookup(key);
    return raw !== undefined && raw !== null;
  }
}

/** Whether `key` is one of the table's keys (for keys that come from a user, e.g. the CLI). */
export function isKnownSetting<T extends SettingsTable>(table: T, key: string): key is keyof T & string {
  return Object.prototype.hasOwnProperty.call(table, key);
}

/** The default as it is written into a store (flags as 1/0, as DAMNIT stores them). */
export function storedDefault(spec: SettingSpec): string | number {
  const value = defaultOf(spec);
  return typeof value === "boolean" ? (value ? 1 : 0) : value;
}

/** How a default reads for a person: its text, or the value computed here. */
export function describeDefault(spec: SettingSpec): string {
  const value = defaultOf(spec);
  const shown = typeof value === "string" ? `'${value}'` : typeof value === "boolean" ? (value ? "1" : "0") : String(value);
  return spec.defaultText ? `${shown} (${spec.defaultText})` : shown;
}
