/**
 * What a lookup recorder is told: its mode and its upstreams (service name → base URL, and optional headers that
 * carry the upstream's credentials: these come from configuration only, never from a client). Parsed from
 * `--upstream NAME=URL` options or the database setting `lookup_upstreams` (JSON: `{"calcat": "https://…"}` or
 * `{"calcat": {"url": "https://…", "headers": {"Authorization": "Bearer …"}}}`).
 */
import { DamnitError } from "../core/errors.js";

export type LookupMode = "record" | "replay" | "passthrough";
export const LOOKUP_MODES: readonly LookupMode[] = ["record", "replay", "passthrough"];

export interface Upstream {
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
}

export type Upstreams = ReadonlyMap<string, Upstream>;

const SERVICE_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]*$/;

export function parseMode(text: string): LookupMode {
  if ((LOOKUP_MODES as readonly string[]).includes(text)) return text as LookupMode;
  throw new DamnitError("BAD_ARGUMENT", `lookup mode '${text}' is not one of ${LOOKUP_MODES.join(", ")}`);
}

function checkUpstream(name: string, url: unknown, headers: unknown): Upstream {
  if (!SERVICE_NAME.test(name)) throw new DamnitError("BAD_UPSTREAM", `upstream name '${name}' must be letters, digits, '-' or '_'`);
  if (typeof url !== "string") throw new DamnitError("BAD_UPSTREAM", `upstream ${name} has no URL`);
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new DamnitError("BAD_UPSTREAM", `upstream ${name}: '${url}' is not a URL`);
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") throw new DamnitError("BAD_UPSTREAM", `upstream ${name}: '${url}' is not an http(s) URL`);
  if (parsed.search || parsed.hash) throw new DamnitError("BAD_UPSTREAM", `upstream ${name}: '${url}' must be a base URL without query or fragment`);
  const hdrs: Record<string, string> = {};
  if (headers !== undefined) {
    if (typeof headers !== "object" || headers === null || Array.isArray(headers)) throw new DamnitError("BAD_UPSTREAM", `upstream ${name}: headers must be an object`);
    for (const [k, v] of Object.entries(headers)) {
      if (typeof v !== "string") throw new DamnitError("BAD_UPSTREAM", `upstream ${name}: header ${k} must be text`);
      hdrs[k.toLowerCase()] = v;
    }
  }
  // user:password in the URL becomes Basic authentication, kept out of the URL we log and hand to undici.
  if (parsed.username || parsed.password) {
    hdrs["authorization"] ??= `Basic ${Buffer.from(`${decodeURIComponent(parsed.username)}:${decodeURIComponent(parsed.password)}`).toString("base64")}`;
    parsed.username = "";
    parsed.password = "";
  }
  return { url: parsed.toString().replace(/\/$/, ""), headers: hdrs };
}

/** `NAME=URL` options. */
export function parseUpstreamOptions(items: readonly string[]): Map<string, Upstream> {
  const out = new Map<string, Upstream>();
  for (const item of items) {
    const eq = item.indexOf("=");
    if (eq <= 0) throw new DamnitError("BAD_UPSTREAM", `--upstream '${item}' is not NAME=URL`);
    const name = item.slice(0, eq);
    if (out.has(name)) throw new DamnitError("BAD_UPSTREAM", `upstream ${name} is given twice`);
    out.set(name, checkUpstream(name, item.slice(eq + 1), undefined));
  }
  return out;
}

/** The `lookup_upstreams` setting (JSON object); "" means none. */
export function parseUpstreamsJson(text: string, where = "lookup_upstreams"): Map<string, Upstream> {
  const out = new Map<string, Upstream>();
  if (text.trim() === "") return out;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new DamnitError("BAD_SETTING", `${where} is not JSON (${(err as Error).message}); give {"service": "https://…"}`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new DamnitError("BAD_SETTING", `${where} must be a JSON object {"service": "https://…"}`);
  for (const [name, spec] of Object.entries(value)) {
    if (typeof spec === "string") out.set(name, checkUpstream(name, spec, undefined));
    else if (typeof spec === "object" && spec !== null) out.set(name, checkUpstream(name, (spec as { url?: unknown }).url, (spec as { headers?: unknown }).headers));
    else throw new DamnitError("BAD_SETTING", `${where}: upstream ${name} must be a URL or {"url": …, "headers": …}`);
  }
  return out;
}

/** The environment variable naming a service's URL for the child: `DAMNIT_LOOKUP_<NAME>_URL`, upper-cased, '-' as '_'. */
export function serviceEnvName(service: string): string {
  return `DAMNIT_LOOKUP_${service.toUpperCase().replace(/-/g, "_")}_URL`;
}

/** The environment a child of the recorder gets. */
export function lookupEnv(baseUrl: string, upstreams: Upstreams, token: string | undefined): Record<string, string> {
  const env: Record<string, string> = { DAMNIT_LOOKUP_URL: baseUrl };
  for (const name of upstreams.keys()) env[serviceEnvName(name)] = `${baseUrl}/${name}`;
  if (token !== undefined) env.DAMNIT_LOOKUP_TOKEN = token;
  return env;
}
