/**
 * The `attributes` JSON of a `run_variables` row: display hints and error details. Written with Python's default
 * `json.dumps` separators so that rows we write are byte-for-byte what DAMNIT writes for the same content.
 */

export interface VariableAttributes {
  units?: string;
  bold?: boolean;
  /** RGB, 0–255 each */
  background?: [number, number, number];
  /** the message of the exception a variable raised */
  error?: string;
  /** the exception's class name, e.g. `SourceNameError`, `Skip`, `DependencyError` */
  error_cls?: string;
  [key: string]: unknown;
}

/** JSON text as Python's `json.dumps` writes it: `", "` and `": "` separators, non-ASCII escaped. */
export function pythonJson(value: unknown): string {
  if (value === null || value === undefined) return "null";
  if (typeof value === "number") {
    if (Number.isNaN(value)) return "NaN";
    if (!Number.isFinite(value)) return value > 0 ? "Infinity" : "-Infinity";
    return JSON.stringify(value);
  }
  if (typeof value === "boolean") return value ? "true" : "false";
  if (typeof value === "bigint") return value.toString();
  if (typeof value === "string") {
    return JSON.stringify(value).replace(/[\u007f-\uffff]/g, (c) => "\\u" + c.charCodeAt(0).toString(16).padStart(4, "0"));
  }
  if (Array.isArray(value)) return "[" + value.map(pythonJson).join(", ") + "]";
  if (typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
    return "{" + entries.map(([k, v]) => `${pythonJson(k)}: ${pythonJson(v)}`).join(", ") + "}";
  }
  throw new TypeError(`cannot write a ${typeof value} as JSON`);
}

/** NULL when there is nothing to say, as DAMNIT stores it. */
export function encodeAttributes(attributes: VariableAttributes | null | undefined): string | null {
  if (!attributes) return null;
  const defined = Object.entries(attributes).filter(([, v]) => v !== undefined);
  return defined.length === 0 ? null : pythonJson(Object.fromEntries(defined));
}

/**
 * Parse stored attributes; NULL or unreadable text gives null (a display hint is not worth failing a table over).
 * Python's json writes NaN and Infinity, which JSON.parse rejects: outside strings they are read as null.
 */
export function decodeAttributes(text: unknown): VariableAttributes | null {
  if (typeof text !== "string" || text === "") return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    const jsonSafe = text.replace(/"(?:[^"\\]|\\.)*"|-?Infinity|NaN/g, (token) => (token.startsWith('"') ? token : "null"));
    try {
      parsed = JSON.parse(jsonSafe);
    } catch {
      return null;
    }
  }
  return typeof parsed === "object" && parsed !== null && !Array.isArray(parsed) ? (parsed as VariableAttributes) : null;
}
