/**
 * The request key of the lookup recorder (spec satellites §A.2): SHA-256 over
 * `METHOD \n service \n path \n canonical query \n sha256(body)`, plus one `name:value` line per allow-listed header
 * the request carries (default: Accept). Query pairs are decoded and sorted, so their order never matters; client
 * credentials (Authorization, Cookie) can never be part of it.
 */
import { createHash } from "node:crypto";

export const DEFAULT_KEY_HEADERS: readonly string[] = ["accept"];

/** Headers that never reach the store, the key or the upstream. */
export const CLIENT_CREDENTIAL_HEADERS = new Set(["authorization", "cookie", "proxy-authorization", "x-damnit-token"]);

export interface LookupRequest {
  readonly method: string;
  readonly service: string;
  /** the path below the service, starting with "/" */
  readonly path: string;
  /** the query string as received, without "?" */
  readonly rawQuery: string;
  readonly body: Buffer;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
}

/** The query's pairs, decoded, sorted by name then value, and percent-encoded again. */
export function canonicalQuery(rawQuery: string): string {
  const pairs = [...new URLSearchParams(rawQuery)];
  pairs.sort(([a, x], [b, y]) => (a < b ? -1 : a > b ? 1 : x < y ? -1 : x > y ? 1 : 0));
  return pairs.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join("&");
}

function sha256(data: string | Buffer): string {
  return createHash("sha256").update(data).digest("hex");
}

export function requestKey(req: LookupRequest, keyHeaders: readonly string[] = DEFAULT_KEY_HEADERS): string {
  const lines = [req.method.toUpperCase(), req.service, req.path, canonicalQuery(req.rawQuery), sha256(req.body)];
  for (const name of keyHeaders) {
    const lower = name.toLowerCase();
    if (CLIENT_CREDENTIAL_HEADERS.has(lower)) continue;
    const value = req.headers[lower];
    if (value !== undefined) lines.push(`${lower}:${Array.isArray(value) ? value.join(", ") : value}`);
  }
  return sha256(lines.join("\n"));
}
