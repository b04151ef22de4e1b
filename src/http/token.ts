/**
 * The token that every state-changing request to one of our HTTP services (control API, web table, lookup
 * recorder) must carry. It is a credential: kept in a file readable and writable by its owner only (0600, created
 * fresh, never a symlink), read back only when it is still ours alone, and compared in constant time. The token
 * itself never goes into a log line or a message: `describeToken` names the file instead.
 */
import { closeSync, fstatSync, openSync, readFileSync, writeFileSync, constants } from "node:fs";
import { randomBytes, timingSafeEqual } from "node:crypto";
import { DamnitError } from "../core/errors.js";
import { createFresh } from "../core/safe-open.js";
import { isNodeError } from "../core/node-errors.js";

const { O_RDONLY, O_NOFOLLOW } = constants;

/** A token as it is stored and sent: 32 random bytes, base64url (43 characters). */
export function newToken(): string {
  return randomBytes(32).toString("base64url");
}

/**
 * The token kept in `file`: read when it exists (it must be a regular file of ours, not readable or writable by
 * anyone else: a credential others can read is no credential), else made and written there (0600).
 */
export function loadOrCreateToken(file: string): string {
  const existing = readTokenFile(file);
  if (existing !== undefined) return existing;
  const token = newToken();
  let fd: number;
  try {
    fd = createFresh(file, 0o600);
  } catch (err) {
    // Another process made it between our read and our create: use theirs (still checked).
    const raced = readTokenFile(file);
    if (raced !== undefined) return raced;
    throw err;
  }
  try {
    writeFileSync(fd, `${token}\n`);
  } finally {
    closeSync(fd);
  }
  return token;
}

/** The token in `file`, or undefined when there is no such file. Refused (UNSAFE_FILE) when others could read it. */
export function readTokenFile(file: string): string | undefined {
  let fd: number;
  try {
    fd = openSync(file, O_RDONLY | O_NOFOLLOW);
  } catch (err) {
    if (isNodeError(err, "ENOENT")) return undefined;
    if (isNodeError(err, "ELOOP")) throw new DamnitError("UNSAFE_FILE", `refusing to read token file ${file}: it is a symbolic link`);
    throw err;
  }
  try {
    const stat = fstatSync(fd);
    const uid = process.getuid?.();
    if (!stat.isFile()) throw new DamnitError("UNSAFE_FILE", `refusing to read token file ${file}: it is not a regular file`);
    if (uid !== undefined && stat.uid !== uid) {
      throw new DamnitError("UNSAFE_FILE", `refusing to use token file ${file}: it belongs to uid ${stat.uid}, not to us (uid ${uid})`);
    }
    if ((stat.mode & 0o077) !== 0) {
      throw new DamnitError(
        "UNSAFE_FILE",
        `refusing to use token file ${file}: others may read or write it (mode ${(stat.mode & 0o777).toString(8)}); chmod 600 it or remove it to get a new token`,
      );
    }
    const token = readFileSync(fd, "utf8").trim();
    if (!/^[A-Za-z0-9_-]{16,}$/.test(token)) throw new DamnitError("BAD_TOKEN", `token file ${file} holds no token (remove it to get a new one)`);
    return token;
  } finally {
    closeSync(fd);
  }
}

/** Whether `given` is `token`, in constant time (for equal lengths). */
export function tokenMatches(given: string | undefined, token: string): boolean {
  if (given === undefined) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * The token a request carries: `Authorization: Bearer <token>` or `X-Damnit-Token: <token>`. Header names arrive
 * lower-cased (Node's http).
 */
export function requestToken(headers: Record<string, string | string[] | undefined>): string | undefined {
  const auth = headers["authorization"];
  if (typeof auth === "string") {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
    if (m) return m[1];
  }
  const own = headers["x-damnit-token"];
  return typeof own === "string" ? own.trim() : undefined;
}
