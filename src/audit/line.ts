/**
 * The audit line format shared by the request trail, the listener's trail and `.err` files (spec satellites §B.2,
 * §B.6): `[YYYYmmdd-HHMMSS] {json}`, local time, the JSON object starting at offset 18 and single-level (its values
 * are scalars or arrays of scalars), so operators' one-line parsers (`line[1:16]`, `json.loads(line[18:])`) work on
 * every file. Parsing a line that is not of this form says what is wrong with it, never guesses.
 */

/** A single-level JSON object: what an audit line carries. */
export type AuditScalar = string | number | boolean | null;
export type AuditRecord = Readonly<Record<string, AuditScalar | readonly AuditScalar[]>>;

/** Where the JSON starts: `[`, 15 characters of time, `]`, a space. */
export const JSON_OFFSET = 18;

const LINE = /^\[(\d{8}-\d{6})\] \{/;
const TIME = /^(\d{4})(\d{2})(\d{2})-(\d{2})(\d{2})(\d{2})$/;

const pad = (n: number, width = 2) => String(n).padStart(width, "0");

/** The last time formatted, by its second (the listener formats thousands of lines a second). */
let lastSecond = NaN;
let lastText = "";

/** `YYYYmmdd-HHMMSS` in local time. */
export function auditTime(date: Date = new Date()): string {
  const second = Math.floor(date.getTime() / 1000);
  if (second === lastSecond) return lastText;
  lastSecond = second;
  lastText = `${date.getFullYear()}${pad(date.getMonth() + 1)}${pad(date.getDate())}-${pad(date.getHours())}${pad(date.getMinutes())}${pad(date.getSeconds())}`;
  return lastText;
}

/** `YYYYmmdd` in local time: the suffix of a rotated file. */
export function auditDay(date: Date = new Date()): string {
  return auditTime(date).slice(0, 8);
}

/** The local time an audit timestamp names; undefined when it is not one (`20261302-…`). */
export function parseAuditTime(text: string): Date | undefined {
  const m = TIME.exec(text);
  if (!m) return undefined;
  const [y, mo, d, h, mi, s] = m.slice(1).map(Number) as [number, number, number, number, number, number];
  const date = new Date(y, mo - 1, d, h, mi, s);
  // new Date rolls 13th months and 61st seconds over: a timestamp that does not round-trip is not one
  return auditTime(date) === text ? date : undefined;
}

/** One line, without its newline. Single-level by its type (AuditRecord): nothing is checked at run time. */
export function formatAuditLine(record: AuditRecord, date: Date = new Date()): string {
  return `[${auditTime(date)}] ${JSON.stringify(record)}`;
}

export type ParsedLine = { readonly ok: true; readonly time: string; readonly record: AuditRecord } | { readonly ok: false; readonly reason: string };

/** A line of an audit file (its newline, if any, stripped already or not): its time and record, or why it is none. */
export function parseAuditLine(text: string): ParsedLine {
  const line = text.replace(/\r?\n$/, "");
  const m = LINE.exec(line);
  if (!m) return { ok: false, reason: `does not start with '[YYYYmmdd-HHMMSS] {': '${line.slice(0, 30)}${line.length > 30 ? "…" : ""}'` };
  if (!parseAuditTime(m[1]!)) return { ok: false, reason: `its time ${m[1]} is not a date` };
  let value: unknown;
  try {
    value = JSON.parse(line.slice(JSON_OFFSET));
  } catch (err) {
    return { ok: false, reason: `its JSON does not parse (${(err as Error).message})` };
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) return { ok: false, reason: "its JSON is not an object" };
  for (const [key, v] of Object.entries(value)) {
    const values = Array.isArray(v) ? (v as unknown[]) : [v];
    if (values.some((x) => x !== null && typeof x === "object")) return { ok: false, reason: `its field ${key} is nested (audit lines are single-level)` };
  }
  return { ok: true, time: m[1]!, record: value as AuditRecord };
}
