/**
 * The lookup recorder (spec satellites §A): an HTTP proxy on 127.0.0.1 that routes `/<service>/<path>?<query>` to
 * the service's configured upstream and records each answer in the shared `lookups.sqlite`, so that a run processed
 * again later gets the same external inputs. Modes: `record` (serve stored answers, fetch and store new ones),
 * `replay` (never contact an upstream: 504 for what was not recorded), `passthrough` (no database). The pending row
 * and the 15 s wait for a peer follow §A.4 exactly; 5xx answers and transport failures are passed on, not stored.
 * When a token is set, every request must carry it in `X-Damnit-Token` (Authorization belongs to the client's own
 * protocol and is dropped, never forwarded, stored or keyed).
 *
 * Speed (bench/lookups, issue 14: ≥ 5,000 hits/s on one core, p50 ≤ 2 ms): a cache hit is answered from memory
 * (completed rows never change) and its bookkeeping is written in batches (store.ts). Profiled, the rest of a hit is
 * mostly the socket write itself; fastify's own routing and hooks are a few per cent of it, so it stays (a plain
 * node:http server would save little and lose the content-type parsing and hooks).
 */
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import type { Logger } from "pino";
import { tokenMatches } from "../http/token.js";
import { isSqliteError } from "../core/sqlite-errors.js";
import type { LookupMode, Upstreams } from "./config.js";
import { canonicalQuery, DEFAULT_KEY_HEADERS, requestKey } from "./key.js";
import { defaultNodeName, type FreshResponse, type LookupStore, type PendingRequest, type ServedFrom, type StoredResponse } from "./store.js";
import { DEFAULT_UPSTREAM_TIMEOUT_MS, UpstreamClient } from "./upstream.js";

export const PEER_WAIT_MS = 15_000;
export const POLL_MS = 250;
const BODY_LIMIT = 64 * 2 ** 20;
/**
 * Completed answers kept in memory (a completed row never changes), up to this many bytes of bodies: a repeated
 * lookup then costs no SQLite read. A row purged meanwhile is still served by a recorder that holds it.
 */
const MEMORY_CACHE_BYTES = 64 * 2 ** 20;

export interface RecorderOptions {
  readonly mode: LookupMode;
  readonly upstreams: Upstreams;
  /** the database (not used in passthrough mode) */
  readonly store?: LookupStore;
  /** who is asking, for `lookup_usage` */
  readonly usage?: { readonly processingId?: string; readonly proposal?: number; readonly run?: number };
  readonly token?: string;
  readonly host?: string;
  readonly port?: number;
  /** name in the `node` column (default hostname:pid) */
  readonly node?: string;
  readonly peerWaitMs?: number;
  readonly pollMs?: number;
  readonly upstreamTimeoutMs?: number;
  readonly keyHeaders?: readonly string[];
  readonly logger?: Logger;
}

interface Served {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer;
  readonly marker: "hit" | "miss" | "waited";
}

class TransportError extends Error {}

export class LookupRecorder {
  private readonly app: FastifyInstance;
  private readonly client: UpstreamClient;
  private readonly node: string;
  private address: AddressInfo | undefined;
  private readonly known = new Map<string, StoredResponse>();
  private knownBytes = 0;

  constructor(private readonly opts: RecorderOptions) {
    if (opts.mode !== "passthrough" && !opts.store) throw new Error("a lookup recorder needs a store unless in passthrough mode");
    this.node = opts.node ?? defaultNodeName();
    this.client = new UpstreamClient(opts.upstreamTimeoutMs ?? DEFAULT_UPSTREAM_TIMEOUT_MS);
    this.app = Fastify({ logger: false, bodyLimit: BODY_LIMIT, forceCloseConnections: true });
    this.app.removeAllContentTypeParsers();
    this.app.addContentTypeParser("*", { parseAs: "buffer" }, (_req, body, done) => done(null, body));
    if (opts.token !== undefined) {
      const token = opts.token;
      this.app.addHook("onRequest", async (request, reply) => {
        const given = request.headers["x-damnit-token"];
        if (!tokenMatches(typeof given === "string" ? given.trim() : undefined, token)) {
          return reply
            .code(401)
            .send({ status: "error", code: given === undefined ? "TOKEN_REQUIRED" : "BAD_TOKEN", message: "the lookup recorder needs its token in X-Damnit-Token" });
        }
      });
    }
    this.app.route({
      method: ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"],
      url: "/*",
      handler: (request, reply) => this.handle(request, reply),
    });
  }

  async listen(): Promise<AddressInfo> {
    await this.app.listen({ host: this.opts.host ?? "127.0.0.1", port: this.opts.port ?? 0 });
    this.address = this.app.server.address() as AddressInfo;
    return this.address;
  }

  get port(): number {
    if (!this.address) throw new Error("the recorder is not listening");
    return this.address.port;
  }

  get url(): string {
    const host = this.address!.address.includes(":") ? `[${this.address!.address}]` : this.address!.address;
    return `http://${host}:${this.port}`;
  }

  private closed: Promise<void> | undefined;

  /** Stop listening and close upstream connections (once; later calls wait for the first). */
  close(): Promise<void> {
    this.closed ??= (async () => {
      await this.app.close();
      await this.client.close();
      this.flush();
    })();
    return this.closed;
  }

  private async handle(request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    const raw = request.raw.url ?? "/";
    const q = raw.indexOf("?");
    const pathPart = q < 0 ? raw : raw.slice(0, q);
    const rawQuery = q < 0 ? "" : raw.slice(q + 1);
    const m = /^\/([^/]+)(\/.*)?$/.exec(pathPart);
    const service = m ? decodeURIComponent(m[1]!) : "";
    const upstream = this.opts.upstreams.get(service);
    if (!upstream) return reply.code(404).send({ status: "error", message: `unknown upstream ${service}` });
    const path = m![2] ?? "/";
    const body = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
    const method = request.method.toUpperCase();
    const headers = request.headers;
    const fetchFresh = async (): Promise<FreshResponse> => {
      try {
        return await this.client.fetch(upstream, method, path, rawQuery, headers, body);
      } catch (err) {
        throw new TransportError(`${service}: ${(err as Error).message}`, { cause: err });
      }
    };
    try {
      if (this.opts.mode === "passthrough") return send(reply, { ...(await fetchFresh()), marker: "miss" });
      const key = requestKey({ method, service, path, rawQuery, body, headers }, this.opts.keyHeaders ?? DEFAULT_KEY_HEADERS);
      const pending: PendingRequest = { key, method, service, path, query: canonicalQuery(rawQuery), body };
      const served = this.opts.mode === "replay" ? this.replay(pending) : await this.record(pending, fetchFresh);
      if (served === undefined) {
        return reply.code(504).send({ status: "error", message: "lookup not recorded", key, request: `${method} /${service}${path}${rawQuery ? `?${rawQuery}` : ""}` });
      }
      return send(reply, served);
    } catch (err) {
      if (err instanceof TransportError) {
        this.opts.logger?.warn(`lookup upstream failed: ${err.message}`);
        return reply.code(502).send({ status: "error", message: `upstream ${service} failed: ${(err.cause as Error)?.message ?? err.message}` });
      }
      if (isSqliteError(err) && (err.code === "SQLITE_BUSY" || err.code === "SQLITE_LOCKED")) {
        return reply.code(503).send({ status: "error", message: `the lookups database stayed locked: ${err.message}` });
      }
      this.opts.logger?.error(`lookup recorder failed: ${(err as Error).stack ?? String(err)}`);
      return reply.code(500).send({ status: "error", message: `lookup recorder failed: ${(err as Error).message}` });
    }
  }

  private replay(req: PendingRequest): Served | undefined {
    const store = this.opts.store!;
    const row = this.remembered(req.key) ?? this.remember(store.lookup(req.key));
    if (!row) return undefined;
    this.usage(req.key, "cache", true);
    return fromStored(row, "hit");
  }

  /** §A.4 in record mode. */
  private async record(req: PendingRequest, fetchFresh: () => Promise<FreshResponse>): Promise<Served> {
    const store = this.opts.store!;
    // A peer's pending row that vanishes (its owner gave up) sends us back to step 1; bounded.
    const known = this.remembered(req.key) ?? this.remember(store.completed(req.key));
    if (known) {
      this.usage(req.key, "cache", true);
      return fromStored(known, "hit");
    }
    for (let round = 0; ; round++) {
      const claim = store.claim(req, this.node);
      if (claim.kind === "hit") {
        this.usage(req.key, "cache", true);
        return fromStored(claim.response, "hit");
      }
      if (claim.kind === "mine") return this.fetchAndStore(req, fetchFresh, "upstream");
      const waitMs = this.opts.peerWaitMs ?? PEER_WAIT_MS;
      const pollMs = this.opts.pollMs ?? POLL_MS;
      const started = performance.now();
      let vanished = false;
      while (performance.now() - started < waitMs) {
        await sleep(Math.min(pollMs, Math.max(0, waitMs - (performance.now() - started))));
        const status = store.statusOf(req.key);
        if (status === undefined) {
          vanished = true;
          break;
        }
        if (status >= 0) {
          const row = store.lookup(req.key)!;
          this.usage(req.key, "waited", true);
          return fromStored(row, "waited");
        }
      }
      if (vanished && round < 3) continue;
      return this.fetchAndStore(req, fetchFresh, "upstream-after-wait");
    }
  }

  private async fetchAndStore(req: PendingRequest, fetchFresh: () => Promise<FreshResponse>, servedFrom: ServedFrom): Promise<Served> {
    const store = this.opts.store!;
    let fresh: FreshResponse;
    try {
      fresh = await fetchFresh();
    } catch (err) {
      store.abandon(req.key, this.node);
      throw err;
    }
    if (fresh.status >= 500) {
      // A transient outage is not frozen into the record: passed on, not stored.
      store.abandon(req.key, this.node);
      return { ...fresh, marker: "miss" };
    }
    store.complete(req, fresh, this.node);
    this.usage(req.key, servedFrom, false);
    return { ...fresh, marker: "miss" };
  }

  private remembered(key: string): StoredResponse | undefined {
    return this.known.get(key);
  }

  private remember(row: StoredResponse | undefined): StoredResponse | undefined {
    if (row && row.body.length + this.knownBytes <= MEMORY_CACHE_BYTES) {
      this.known.set(row.key, row);
      this.knownBytes += row.body.length;
    }
    return row;
  }

  private usage(key: string, servedFrom: ServedFrom, hit: boolean): void {
    const u = this.opts.usage ?? {};
    this.opts.store!.noteServed({ processingId: u.processingId ?? null, proposal: u.proposal ?? null, run: u.run ?? null, key, servedFrom }, hit);
  }

  /** Write the served requests' bookkeeping now (it is otherwise written within USAGE_FLUSH_MS, and on close). */
  flush(): void {
    this.opts.store?.flush();
  }
}

function fromStored(row: StoredResponse, marker: Served["marker"]): Served {
  return { status: row.status, headers: row.headers, body: row.body, marker };
}

function send(reply: FastifyReply, served: Served): FastifyReply {
  reply.code(served.status);
  for (const [k, v] of Object.entries(served.headers)) reply.header(k, v);
  if (served.headers["content-type"] === undefined) reply.header("content-type", "application/octet-stream");
  reply.header("x-lookup-recorder", served.marker);
  return reply.send(served.body);
}
