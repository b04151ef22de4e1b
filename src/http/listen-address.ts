/**
 * `--listen HOST:PORT` (or just `PORT`) for our HTTP services. The host defaults to 127.0.0.1: a service is reachable
 * from other machines only when the operator names another address. Port 0 asks the system for a free one.
 */
import { DamnitError } from "../core/errors.js";

export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

export const DEFAULT_HOST = "127.0.0.1";

export function parseListenAddress(text: string | number | undefined, defaultPort = 0): ListenAddress {
  if (text === undefined || text === "") return { host: DEFAULT_HOST, port: defaultPort };
  const s = String(text).trim();
  // [::1]:8080, host:8080, :8080, 8080
  const m = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d+)$/.exec(s) ?? /^()()(\d+)$/.exec(s);
  const port = m ? Number(m[3]) : NaN;
  if (!m || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new DamnitError("BAD_LISTEN_ADDRESS", `'${s}' is not an address to listen on: give PORT or HOST:PORT (e.g. 127.0.0.1:8080)`);
  }
  const host = m[1] || m[2] || DEFAULT_HOST;
  return { host, port };
}

/** An address as a URL's authority (IPv6 in brackets). */
export function formatListenAddress(a: ListenAddress): string {
  return a.host.includes(":") ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}
