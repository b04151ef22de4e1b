/**
 * The listener's control API (spec satellites §B.6, §C.6): HTTP on 127.0.0.1, port from the `api_port` setting (0: a
 * free one), written to `<listener dir>/api.port` once listening; every request needs `Authorization: Bearer
 * <token>` with the token kept 0600 in `<listener dir>/api.token`. Answers use the envelope
 * `{"status":"ok"|"error","message":…}`: HTTP 200 for application errors (bad body, unknown proposal, runs out of
 * range, paused, closed database; `exception` carries the typed error code), 401 without the token, 404 for unknown
 * routes. `GET /metrics` is Prometheus text.
 */
import { rmSync } from "node:fs";
import { join } from "node:path";
import Fastify, { type FastifyInstance, type FastifyReply } from "fastify";
import { z } from "zod";
import type { Logger } from "pino";
import { writeFileAtomically } from "../../bookkeeping/atomic-file.js";
import { DamnitError, isDamnitError } from "../../core/errors.js";
import { privateFileMode } from "../../core/private-files.js";
import { parseListenAddress } from "../../http/listen-address.js";
import { requireTokenForWrites } from "../../http/require-token.js";
import { loadOrCreateToken } from "../../http/token.js";
import type { DispatchOutcome, ReadyRun } from "../dispatch.js";
import type { ListenerControl } from "../control.js";
import type { ListenerStore } from "../store/index.js";
import { validateReprocess } from "./reprocess-request.js";
import type { ListenerStats } from "./stats.js";

export const API_PORT_FILE = "api.port";
export const API_TOKEN_FILE = "api.token";

export interface ControlApiOptions {
  /** the listener directory (api.port, api.token) */
  readonly dir: string;
  readonly port: number;
  readonly store: ListenerStore;
  readonly stats: ListenerStats;
  readonly control: ListenerControl;
  readonly logger: Logger;
  readonly dataRoot: string | undefined;
  /** hand a run to the listener as a notification would (inbox, dispatch) */
  readonly submit: (ready: ReadyRun) => Promise<readonly DispatchOutcome[]>;
  /** after POST /resume: start handling what the inbox kept while paused; how many that is */
  readonly drainInbox: () => number;
}

export interface ControlApi {
  readonly app: FastifyInstance;
  readonly port: number;
  close(): Promise<void>;
}

const requestsQuery = z.object({ limit: z.coerce.number().int().min(1).max(1000).default(100) }).strict();

function envelopeError(reply: FastifyReply, httpStatus: number, message: string, exception: string): FastifyReply {
  return reply.code(httpStatus).send({ status: "error", message, exception });
}

export async function startControlApi(opts: ControlApiOptions): Promise<ControlApi> {
  const { store, stats, control, logger } = opts;
  const address = parseListenAddress(String(opts.port));
  const token = loadOrCreateToken(join(opts.dir, API_TOKEN_FILE));
  const app = Fastify({ logger: false, bodyLimit: 1 << 20 });
  requireTokenForWrites(app, token, { alsoReads: true });

  app.setErrorHandler((err, _req, reply) => {
    if (isDamnitError(err)) return envelopeError(reply, 200, err.message, err.code);
    const status = (err as { statusCode?: number }).statusCode ?? 500;
    // A body that is not JSON (or too large) is the caller's application error: the envelope, HTTP 200.
    if (status >= 400 && status < 500) return envelopeError(reply, 200, `bad request: ${(err as Error).message}`, "BAD_REQUEST");
    logger.error(`Control API: ${(err as Error).stack ?? String(err)}`);
    return envelopeError(reply, 500, (err as Error).message, "INTERNAL");
  });
  app.setNotFoundHandler((req, reply) => envelopeError(reply, 404, `no route ${req.method} ${req.url.split("?")[0]}`, "NOT_FOUND"));

  // --audit-only, or the audit_only setting as dispatch reads it now (it can be switched while the listener runs)
  const auditOnly = () => control.auditOnly || store.settings.get("audit_only");
  const state = () => (control.paused ? "paused" : auditOnly() ? "audit-only" : "listening");
  app.get("/status", async () => ({ status: "ok", message: state(), state: state(), listening: true, paused: control.paused, audit_only: auditOnly() }));
  app.get("/statistics", async () => ({ status: "ok", message: "statistics", ...stats.statistics() }));
  app.get("/requests", async (req) => {
    const q = requestsQuery.safeParse(req.query);
    if (!q.success) return { status: "error", message: `bad query: ${q.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`, exception: "BAD_ARGUMENT" };
    const requests = store.requests.latest({ limit: q.data.limit });
    return { status: "ok", message: `${requests.length} requests`, requests };
  });
  app.get("/metrics", async (_req, reply) => {
    const text = await stats.registry.metrics();
    return reply.type(stats.registry.contentType).send(text);
  });
  app.post("/pause", async () => {
    const was = control.paused;
    control.paused = true;
    if (!was) logger.info("Paused through the control API: notifications are kept in the inbox until resumed");
    return { status: "ok", message: was ? "already paused" : "paused" };
  });
  app.post("/resume", async () => {
    if (!control.paused) return { status: "ok", message: "not paused" };
    control.paused = false;
    logger.info("Resumed through the control API");
    const n = opts.drainInbox();
    return { status: "ok", message: `resumed; ${n} notification${n === 1 ? "" : "s"} kept while paused being handed on` };
  });
  app.post("/reprocess", async (req) => {
    const valid = await validateReprocess(req.body, { store, control, dataRoot: opts.dataRoot });
    // Each run goes through dispatch like a notification (source `api …`): audited there with origin api.
    const results: Array<{ run: number; outcomes: readonly DispatchOutcome[] }> = [];
    const batch = Date.now();
    for (const run of valid.runs) {
      const ready: ReadyRun = {
        proposal: valid.proposal,
        run,
        kind: valid.kind,
        addedAt: Date.now() / 1000,
        source: `api ${batch} p${valid.proposal} r${run} ${valid.kind}`,
        ...(valid.variables ? { variables: valid.variables } : {}),
        ...(valid.match ? { match: valid.match } : {}),
      };
      results.push({ run, outcomes: await opts.submit(ready) });
    }
    const failed = results.filter((r) => r.outcomes.some((o) => o.action === "failed"));
    return {
      status: failed.length === 0 ? "ok" : "error",
      message:
        failed.length === 0
          ? `requested ${valid.kind} processing of ${results.length} run${results.length === 1 ? "" : "s"} of proposal ${valid.proposal}`
          : `${failed.length} of ${results.length} runs could not be submitted: ${failed.map((f) => `r${f.run}: ${f.outcomes.find((o) => o.action === "failed")!.detail}`).join("; ")}`,
      requests: results.map((r) => ({ run: r.run, outcomes: r.outcomes.map((o) => ({ db_dir: o.dbDir, action: o.action, detail: o.detail })) })),
    };
  });

  try {
    await app.listen({ host: address.host, port: address.port });
  } catch (err) {
    throw new DamnitError("LISTENER_FAULT", `the control API cannot listen on ${address.host}:${address.port} (setting api_port): ${(err as Error).message}`, { cause: err });
  }
  const port = (app.server.address() as { port: number }).port;
  const portFile = join(opts.dir, API_PORT_FILE);
  // Like every file of the listener directory: the owner's (and the colleagues' group's to read, if it has one).
  writeFileAtomically(portFile, `${port}\n`, privateFileMode(opts.dir).mode);
  logger.info(`Control API on http://${address.host}:${port} (token in ${join(opts.dir, API_TOKEN_FILE)})`);
  return {
    app,
    port,
    async close() {
      rmSync(portFile, { force: true });
      await app.close();
    },
  };
}
