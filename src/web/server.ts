/**
 * `damnit web`'s HTTP service (fastify): the page, the run tables of the databases served as JSON, thumbnails,
 * array data for plots, saved views, server-sent events with the rows that changed, and the writes (run comments,
 * user-editable values, saved views) which need the service's token and are refused on `--read-only`.
 */
import { assertOpenForWriting } from "../bookkeeping/closed.js";
import Fastify, { type FastifyInstance, type FastifyReply } from "fastify";
import { z } from "zod";
import { DamnitError, isDamnitError } from "../core/errors.js";
import { isNdArray } from "../core/ndarray.js";
import type { RunDatabase } from "../db/run-database.js";
import { redactedHeaders, requireTokenForWrites } from "../http/require-token.js";
import { bundleAssets } from "./assets.js";
import { DatabaseState, type TableChange } from "./database-state.js";
import type { UpdateMessage } from "../messaging/messages.js";
import { startUpdateFeed } from "./update-feed.js";
import { readViews, saveView } from "./views-store.js";

export interface WebOptions {
  dirs: string[];
  token: string;
  readOnly: boolean;
  /** how often each database's data_version is polled, ms (default: each database's `web_poll_ms`) */
  pollMs?: number;
  logger?: boolean;
  /** Kafka brokers whose update topics give the runs' processing states; null: none (default: none) */
  brokers?: readonly string[] | null;
}

export interface WebServer {
  app: FastifyInstance;
  states: DatabaseState[];
  /** Hand update messages sent to `topic` to the database they are about (the listener's own, in-process). */
  deliver(topic: string, messages: readonly UpdateMessage[]): void;
}

const WRITE_METHODS = new Set(["POST", "PUT", "PATCH", "DELETE"]);

const commentBody = z.object({ proposal: z.number().int(), run: z.number().int(), text: z.string().max(100_000) });
const valueBody = z.object({ proposal: z.number().int(), run: z.number().int(), name: z.string().min(1), input: z.string().max(100_000) });
const viewBody = z.object({ name: z.string().min(1).max(200), view: z.record(z.string(), z.unknown()) });

/** A proposal and run number from a URL's path. */
function oneRunKey(proposal: string, run: string): { proposal: number; run: number } {
  const p = Number(proposal);
  const r = Number(run);
  if (!Number.isSafeInteger(p) || !Number.isSafeInteger(r)) throw new DamnitError("BAD_ARGUMENT", `not a proposal and run number: ${proposal}/${run}`);
  return { proposal: p, run: r };
}

/** One run's row, read through the (proposal, run) indexes. */
function oneRun(db: RunDatabase, proposal: string, run: string) {
  const key = oneRunKey(proposal, run);
  return db.readRunTable({ proposal: key.proposal, range: { from: key.run, to: key.run } });
}

function errorReply(reply: FastifyReply, status: number, code: string, message: string) {
  return reply.code(status).send({ status: "error", code, message });
}

export async function createWebServer(opts: WebOptions): Promise<WebServer> {
  const assets = await bundleAssets();
  const states = await Promise.all(opts.dirs.map((dir, i) => DatabaseState.open(i, dir)));
  for (const s of states) s.watch(opts.pollMs);
  const byTopic = new Map<string, DatabaseState>();
  for (const s of states) if (s.updateTopic) byTopic.set(s.updateTopic, s);
  const feed = opts.brokers ? startUpdateFeed(opts.brokers, new Map([...byTopic].map(([topic, s]) => [topic, (m: UpdateMessage) => s.deliver(m)]))) : undefined;
  // forceCloseConnections: open pages hold their event streams for ever; closing must not wait for them.
  const app = Fastify({ logger: opts.logger ? { redact: redactedHeaders } : false, bodyLimit: 1 << 20, forceCloseConnections: true });

  if (opts.readOnly) {
    app.addHook("onRequest", async (request, reply) => {
      if (WRITE_METHODS.has(request.method)) return errorReply(reply, 403, "READ_ONLY", "this damnit web serves read-only (--read-only): no changes");
    });
  }
  requireTokenForWrites(app, opts.token);
  app.addHook("onClose", async () => {
    await feed?.close();
    states.forEach((s) => s.close());
  });
  app.addHook("onSend", async (_req, reply) => {
    reply.header("X-Content-Type-Options", "nosniff");
    reply.header("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'");
  });

  app.setErrorHandler((err, _req, reply) => {
    if (err instanceof z.ZodError) return errorReply(reply, 400, "BAD_ARGUMENT", err.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; "));
    if (isDamnitError(err)) {
      const status = err.code === "READ_ONLY" ? 403 : err.code === "NO_SUCH_KEY" || err.code === "NO_RUN" || err.code === "NO_EXTRACTED_DATA" ? 404 : err.code === "BUSY" ? 503 : 400;
      return errorReply(reply, status, err.code, err.message);
    }
    const status = (err as { statusCode?: number }).statusCode ?? 500;
    return errorReply(reply, status, status === 500 ? "INTERNAL" : "BAD_REQUEST", (err as Error).message);
  });

  const stateOf = (id: string): DatabaseState => {
    const s = states[Number(id)];
    if (!/^\d+$/.test(id) || !s) throw new DamnitError("NO_SUCH_KEY", `no database number ${id} here`);
    return s;
  };
  const dbOf = (id: string) => {
    const s = stateOf(id);
    if (!s.db) throw new DamnitError("NO_DATABASE", `${s.dir} cannot be served: ${s.problem}`);
    return { s, db: s.db };
  };

  app.get("/", async (_req, reply) => reply.type("text/html; charset=utf-8").send(assets.html));
  app.get("/app.js", async (_req, reply) => reply.type("text/javascript; charset=utf-8").send(assets.js));
  app.get("/app.css", async (_req, reply) => reply.type("text/css; charset=utf-8").send(assets.css));

  app.get("/api/databases", async () => ({
    readOnly: opts.readOnly,
    databases: states.map((s) => ({ id: s.index, name: s.name, dir: s.dir, problem: s.problem ?? null })),
  }));

  app.get<{ Params: { id: string } }>("/api/db/:id/table", async (req, reply) => {
    const { s, db } = dbOf(req.params.id);
    s.refresh();
    // The rows are kept as JSON strings: joined, not serialised again per request.
    const extra = JSON.stringify({ timeComments: db.listTimeComments(), tags: db.getAllTags(), processing: s.processing.list() });
    return reply.type("application/json; charset=utf-8").send(`${extra.slice(0, -1)},${s.snapshotJson().slice(1)}`);
  });

  app.get<{ Params: { id: string } }>("/api/db/:id/events", (req, reply) => {
    const { s } = dbOf(req.params.id);
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { "Content-Type": "text/event-stream", "Cache-Control": "no-cache", Connection: "keep-alive", "X-Content-Type-Options": "nosniff" });
    res.write(`: connected\n\nevent: processing\ndata: ${JSON.stringify(s.processing.list())}\n\n`);
    const send = (_c: TableChange, json: string) => res.write(`event: change\ndata: ${json}\n\n`);
    const unsubscribe = s.subscribe(send);
    const unsubscribeProcessing = s.subscribeProcessing((json) => res.write(`event: processing\ndata: ${json}\n\n`));
    const ping = setInterval(() => res.write(": ping\n\n"), 15_000);
    req.raw.on("close", () => {
      clearInterval(ping);
      unsubscribe();
      unsubscribeProcessing();
    });
  });

  app.get<{ Params: { id: string; proposal: string; run: string; name: string } }>("/api/db/:id/thumb/:proposal/:run/:name", async (req, reply) => {
    const { db } = dbOf(req.params.id);
    const cell = oneRun(db, req.params.proposal, req.params.run).rows[0]?.cells.get(req.params.name);
    const v = cell?.value;
    if (!v || typeof v !== "object" || v instanceof Uint8Array || v.kind !== "png") {
      return errorReply(reply, 404, "NO_SUCH_KEY", `run ${req.params.run} has no thumbnail for ${req.params.name}`);
    }
    return reply.type("image/png").header("Cache-Control", "no-cache").send(Buffer.from(v.bytes));
  });

  app.get<{ Params: { id: string; proposal: string; run: string; name: string } }>("/api/db/:id/array/:proposal/:run/:name", async (req, reply) => {
    const { db } = dbOf(req.params.id);
    const cell = oneRun(db, req.params.proposal, req.params.run).rows[0]?.cells.get(req.params.name);
    const v = cell?.value;
    if (!isNdArray(v)) return errorReply(reply, 404, "NO_SUCH_KEY", `run ${req.params.run} has no array for ${req.params.name}`);
    return { shape: v.shape, dtype: v.dtype, summaryType: cell?.summaryType ?? null, data: Array.from(v.data as ArrayLike<number | bigint>, Number) };
  });

  app.get<{ Params: { id: string; proposal: string; run: string; name: string }; Querystring: { index?: string } }>(
    "/api/db/:id/data/:proposal/:run/:name",
    async (req) => {
      const { db } = dbOf(req.params.id);
      const { proposal, run } = oneRunKey(req.params.proposal, req.params.run);
      const index = (req.query.index ?? "").split(",").filter(Boolean).map(Number);
      if (index.some((i) => !Number.isSafeInteger(i) || i < 0)) throw new DamnitError("BAD_ARGUMENT", `index must be whole numbers ≥ 0: ${req.query.index}`);
      // Loaded on the first plot: a server nobody plots from never holds the HDF5 reader.
      const { readPlotData } = await import("./run-data.js");
      return readPlotData(db.dir, proposal, run, req.params.name, index);
    },
  );

  app.get<{ Params: { id: string } }>("/api/db/:id/views", async (req) => readViews(dbOf(req.params.id).db));
  app.post<{ Params: { id: string } }>("/api/db/:id/views", async (req) => {
    const body = viewBody.parse(req.body);
    saveView(dbOf(req.params.id).db, body.name, body.view);
    return { status: "ok" };
  });

  app.post<{ Params: { id: string } }>("/api/db/:id/comment", async (req) => {
    const body = commentBody.parse(req.body);
    const { s, db } = dbOf(req.params.id);
    assertOpenForWriting(db, "edit comments");
    await db.withWriteLock(() => db.setRunComment(body.proposal, body.run, body.text), { waitSeconds: 30 });
    s.refresh();
    return { status: "ok" };
  });

  app.post<{ Params: { id: string } }>("/api/db/:id/value", async (req) => {
    const body = valueBody.parse(req.body);
    const { s, db } = dbOf(req.params.id);
    assertOpenForWriting(db, "edit values");
    await db.withWriteLock(() => db.setUserValue(body.proposal, body.run, body.name, body.input), { waitSeconds: 30 });
    s.refresh();
    return { status: "ok" };
  });

  const deliver = (topic: string, messages: readonly UpdateMessage[]) => {
    const s = byTopic.get(topic);
    if (s) for (const m of messages) s.deliver(m);
  };
  return { app, states, deliver };
}
