/**
 * Reading a notification (spec §1.1): which topics and events mean "raw data complete" and "calibrated data
 * complete", and the proposal and run a message names. Anything else is refused with a reason, never thrown.
 */
import type { RunDataDirectory } from "../core/data-kind.js";
import type { ListenerSettingsStore } from "./store/index.js";

export interface KafkaProfile {
  readonly name: string;
  readonly rawTopic: string;
  readonly rawEvent: string;
  readonly procTopic: string;
  readonly procEvent: string;
}

export const PROFILES: Record<string, KafkaProfile> = {
  maxwell: { name: "maxwell", rawTopic: "test.r2d2", rawEvent: "migration_complete", procTopic: "cal.offline-corrections", procEvent: "run_corrections_complete" },
  onc: { name: "onc", rawTopic: "test.euxfel.hed.daq", rawEvent: "daq_run_complete", procTopic: "test.euxfel.hed.cal", procEvent: "online_correction_complete" },
};

/** The profile named by the settings, with any topic or event overridden one by one. */
export function profileFromSettings(settings: Pick<ListenerSettingsStore, "get">): KafkaProfile {
  const name = settings.get("kafka_profile") || "maxwell";
  const base = PROFILES[name];
  if (!base) throw new Error(`kafka_profile '${name}' is not one of ${Object.keys(PROFILES).join(", ")}`);
  return {
    name,
    rawTopic: settings.get("kafka_raw_topic") || base.rawTopic,
    rawEvent: settings.get("kafka_raw_event") || base.rawEvent,
    procTopic: settings.get("kafka_proc_topic") || base.procTopic,
    procEvent: settings.get("kafka_proc_event") || base.procEvent,
  };
}

export interface Notification {
  readonly proposal: number;
  readonly run: number;
  readonly kind: RunDataDirectory;
}

export type Parsed = { ok: true; notification: Notification } | { ok: false; reason: string; ignorable: boolean };

/** DAMNIT's int(): whole numbers, also as strings ("1234"). */
function wholeNumber(value: unknown): number | undefined {
  if (typeof value === "number" && Number.isSafeInteger(value) && value >= 0) return value;
  if (typeof value === "string" && /^\s*\+?\d{1,15}\s*$/.test(value)) return Number(value);
  return undefined;
}

/** Limits checked before a message is parsed at all: nothing larger or deeper reaches JSON.parse or our code. */
export const NOTIFICATION_LIMITS = { maxBytes: 1_000_000, maxDepth: 32, quoteChars: 60 } as const;

const UTF8 = new TextDecoder("utf-8", { fatal: true });

/** How deeply arrays and objects nest in JSON text (strings skipped), stopping as soon as `limit` is passed. */
function nestingDepthExceeds(text: string, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > limit) return true;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return false;
}

/** A field's value for a log line: short, one line, never the whole of a huge or deep value. */
export function quoteField(value: unknown): string {
  if (Array.isArray(value)) return `an array of ${value.length} item${value.length === 1 ? "" : "s"}`;
  if (typeof value === "object" && value !== null) return "an object";
  if (value === undefined) return "undefined";
  const text = JSON.stringify(value) ?? String(value);
  const max = NOTIFICATION_LIMITS.quoteChars;
  // Control characters (ANSI escapes) are shown escaped, as JSON.stringify does for strings.
  return text.length > max ? `${text.slice(0, max)}… (${text.length} characters)` : text;
}

export function parseNotification(topic: string, value: Buffer | string | null, profile: KafkaProfile): Parsed {
  if (value === null || value.length === 0) return { ok: false, reason: "empty message", ignorable: false };
  if (value.length > NOTIFICATION_LIMITS.maxBytes) {
    return { ok: false, reason: `message of ${value.length} bytes is too large to be a notification`, ignorable: false };
  }
  let text: string;
  try {
    text = typeof value === "string" ? value : UTF8.decode(value);
  } catch {
    return { ok: false, reason: "not UTF-8 text", ignorable: false };
  }
  if (nestingDepthExceeds(text, NOTIFICATION_LIMITS.maxDepth)) {
    return { ok: false, reason: `JSON nested deeper than ${NOTIFICATION_LIMITS.maxDepth} levels`, ignorable: false };
  }
  let msg: unknown;
  try {
    msg = JSON.parse(text);
  } catch (err) {
    return { ok: false, reason: `not JSON (${(err as Error).message.slice(0, 100)})`, ignorable: false };
  }
  if (typeof msg !== "object" || msg === null || Array.isArray(msg)) return { ok: false, reason: "not a JSON object", ignorable: false };
  const fields = msg as Record<string, unknown>;
  const event = fields.event;
  let kind: RunDataDirectory | undefined;
  if (event === profile.rawEvent && topic === profile.rawTopic) kind = "raw";
  else if (event === profile.procEvent && topic === profile.procTopic) kind = "proc";
  // Other events share these topics: not for us, and not an error.
  if (!kind) return { ok: false, reason: `event ${quoteField(event)} on ${topic} is not one the listener handles`, ignorable: true };
  const proposal = wholeNumber(fields.proposal);
  const run = wholeNumber(fields.run);
  if (proposal === undefined) return { ok: false, reason: `${String(event)}: 'proposal' is ${quoteField(fields.proposal)}, not a whole number`, ignorable: false };
  if (run === undefined) return { ok: false, reason: `${String(event)}: 'run' is ${quoteField(fields.run)}, not a whole number`, ignorable: false };
  return { ok: true, notification: { proposal, run, kind } };
}
