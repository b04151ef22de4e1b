/**
 * A fastify hook shared by our HTTP services: every request that could change state (any method but GET, HEAD and
 * OPTIONS) must carry the service's token (see token.ts), or it is answered 401 with a JSON body
 * `{status: "error", code, message}` and never reaches its route. A GET route that changes state is a bug: routes
 * that write use POST/PUT/PATCH/DELETE. The token is never logged: `redactedHeaders` is the pino redaction for it.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { requestToken, tokenMatches } from "./token.js";

const READ_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

/** pino `redact` paths that keep the token (and cookies) out of request logs. */
export const redactedHeaders = ["req.headers.authorization", "req.headers.cookie", 'req.headers["x-damnit-token"]'];

export function requireTokenForWrites(app: FastifyInstance, token: string, opts: { alsoReads?: boolean } = {}): void {
  app.addHook("onRequest", async (request: FastifyRequest, reply: FastifyReply) => {
    if (!opts.alsoReads && READ_METHODS.has(request.method)) return;
    const given = requestToken(request.headers);
    if (given === undefined) {
      return reply.code(401).send({ status: "error", code: "TOKEN_REQUIRED", message: `${request.method} ${request.url.split("?")[0]} needs the service's token (Authorization: Bearer <token>)` });
    }
    if (!tokenMatches(given, token)) {
      return reply.code(401).send({ status: "error", code: "BAD_TOKEN", message: "the token given is not this service's token" });
    }
  });
}
