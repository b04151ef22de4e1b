/**
 * The recorder's upstream side: one request to a configured service with undici, bounded by a time-out (default
 * 60 s, §A.3). Only the request's `Accept` and `Content-Type` go along, with the upstream's configured headers
 * (its credentials); a client's Authorization or Cookie never does. The body comes back as the upstream sent it
 * (undici does not decompress), so what is stored and replayed is byte-identical.
 */
import { Agent, request } from "undici";
import type { Upstream } from "./config.js";
import type { FreshResponse } from "./store.js";

export const DEFAULT_UPSTREAM_TIMEOUT_MS = 60_000;

const FORWARDED = ["accept", "content-type"];
/** Response headers kept (and replayed). */
const KEPT = ["content-type", "content-encoding"];

export class UpstreamClient {
  private readonly agent: Agent;

  constructor(readonly timeoutMs = DEFAULT_UPSTREAM_TIMEOUT_MS) {
    this.agent = new Agent({ connect: { timeout: timeoutMs }, headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
  }

  /** Fetch `path?rawQuery` below the upstream's URL. Throws on transport failures (refused, DNS, TLS, time-out). */
  async fetch(upstream: Upstream, method: string, path: string, rawQuery: string, headers: Readonly<Record<string, string | string[] | undefined>>, body: Buffer): Promise<FreshResponse> {
    const sent: Record<string, string> = {};
    for (const name of FORWARDED) {
      const v = headers[name];
      if (v !== undefined) sent[name] = Array.isArray(v) ? v.join(", ") : v;
    }
    Object.assign(sent, upstream.headers);
    const url = `${upstream.url}${path}${rawQuery ? `?${rawQuery}` : ""}`;
    const hasBody = body.length > 0 && method !== "GET" && method !== "HEAD";
    const res = await request(url, {
      method: method as "GET",
      headers: sent,
      body: hasBody ? body : undefined,
      dispatcher: this.agent,
      signal: AbortSignal.timeout(this.timeoutMs),
    });
    const received = Buffer.from(await res.body.arrayBuffer());
    const kept: Record<string, string> = {};
    for (const name of KEPT) {
      const v = res.headers[name];
      if (v !== undefined) kept[name] = Array.isArray(v) ? v.join(", ") : v;
    }
    return { status: res.statusCode, headers: kept, body: received };
  }

  async close(): Promise<void> {
    await this.agent.close();
  }
}
