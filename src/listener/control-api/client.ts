/**
 * Asking a running listener's control API from the same machine (`damnit listener status`): its port and token from
 * the listener directory (`api.port`, `api.token`), then one authorised request with a short timeout.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { request } from "undici";
import { isNodeError } from "../../core/node-errors.js";
import { readTokenFile } from "../../http/token.js";
import { API_PORT_FILE, API_TOKEN_FILE } from "./server.js";

export interface ApiEndpoint {
  readonly url: string;
  readonly token: string;
}

/** The API of the listener in `dir`, or undefined when none is listening (no api.port). */
export function apiEndpoint(dir: string): ApiEndpoint | undefined {
  let port: number;
  try {
    port = Number(readFileSync(join(dir, API_PORT_FILE), "utf8").trim());
  } catch (err) {
    if (isNodeError(err, "ENOENT")) return undefined;
    throw err;
  }
  const token = readTokenFile(join(dir, API_TOKEN_FILE));
  if (!Number.isInteger(port) || port <= 0 || token === undefined) return undefined;
  return { url: `http://127.0.0.1:${port}`, token };
}

/** GET `path` of the API: the envelope it answers. */
export async function apiGet(endpoint: ApiEndpoint, path: string, timeoutMs = 3000): Promise<Record<string, unknown>> {
  const res = await request(`${endpoint.url}${path}`, {
    headers: { authorization: `Bearer ${endpoint.token}` },
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
  });
  return (await res.body.json()) as Record<string, unknown>;
}
