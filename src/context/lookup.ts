/**
 * External lookups from context code (`import { lookup } from "damnit/context"`): `await lookup.get("calcat",
 * "/api/constants", { detector: "LPD1M" })`. Context files never build a catalogue's URL themselves: the job's
 * lookup recorder (src/lookups/) records each answer, and a reprocess with `--replay-lookups` gets the very same
 * answers back, or an error naming the request that was never recorded. The recorder's address comes from
 * `DAMNIT_LOOKUP_<SERVICE>_URL` and its token from `DAMNIT_LOOKUP_TOKEN`, which the job sets.
 */

export type LookupQuery = Readonly<Record<string, string | number | boolean | ReadonlyArray<string | number>>>;

/** An upstream's answer (2xx or 4xx: a "not found" is an answer too, recorded and replayed like any other). */
export class LookupResponse {
  constructor(
    readonly status: number,
    readonly contentType: string | undefined,
    readonly bytes: Uint8Array,
    /** "hit", "miss" or "waited" (X-Lookup-Recorder) */
    readonly served: string | undefined,
  ) {}

  get ok(): boolean {
    return this.status >= 200 && this.status < 300;
  }

  text(): string {
    return new TextDecoder().decode(this.bytes);
  }

  json(): unknown {
    return JSON.parse(this.text());
  }
}

/** A lookup that gave no answer: the recorder is not set up, the upstream failed, or (replay) it was never recorded. */
export class LookupError extends Error {
  override readonly name: string = "LookupError";
}

/** Replay mode, and the request was not recorded when the run was first processed. */
export class LookupNotRecordedError extends LookupError {
  override readonly name = "LookupNotRecordedError";
}

function envName(service: string): string {
  return `DAMNIT_LOOKUP_${service.toUpperCase().replace(/-/g, "_")}_URL`;
}

function queryString(query: LookupQuery | undefined): string {
  if (!query) return "";
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) {
    for (const item of Array.isArray(v) ? v : [v]) params.append(k, String(item));
  }
  const s = params.toString();
  return s ? `?${s}` : "";
}

async function call(method: string, service: string, path: string, query: LookupQuery | undefined, body?: string | Uint8Array, contentType?: string): Promise<LookupResponse> {
  const base = process.env[envName(service)];
  const what = `${method} ${service}${path.startsWith("/") ? "" : "/"}${path}${queryString(query)}`;
  if (!base) throw new LookupError(`no lookup service '${service}' is configured for this job (${what}); set it in the database setting lookup_upstreams`);
  const headers: Record<string, string> = { accept: "application/json" };
  const token = process.env.DAMNIT_LOOKUP_TOKEN;
  if (token) headers["x-damnit-token"] = token;
  if (contentType) headers["content-type"] = contentType;
  let res: Response;
  try {
    res = await fetch(`${base}${path.startsWith("/") ? "" : "/"}${path}${queryString(query)}`, { method, headers, body });
  } catch (err) {
    throw new LookupError(`${what}: the lookup recorder did not answer (${(err as Error).message})`);
  }
  const bytes = new Uint8Array(await res.arrayBuffer());
  if (res.status === 504 && res.headers.get("x-lookup-recorder") === null) {
    throw new LookupNotRecordedError(`${what} was not recorded when this run was first processed (replaying recorded lookups)`);
  }
  if (res.status >= 500) throw new LookupError(`${what}: ${res.status} ${new TextDecoder().decode(bytes).slice(0, 200)}`);
  return new LookupResponse(res.status, res.headers.get("content-type") ?? undefined, bytes, res.headers.get("x-lookup-recorder") ?? undefined);
}

export const lookup = {
  /** GET `<service><path>?<query>` through the job's lookup recorder. */
  get(service: string, path: string, query?: LookupQuery): Promise<LookupResponse> {
    return call("GET", service, path, query);
  },
  /** POST a body (an object is sent as JSON) through the job's lookup recorder. */
  post(service: string, path: string, body: unknown, query?: LookupQuery): Promise<LookupResponse> {
    if (typeof body === "string" || body instanceof Uint8Array) return call("POST", service, path, query, body, "application/octet-stream");
    return call("POST", service, path, query, JSON.stringify(body), "application/json");
  },
};
