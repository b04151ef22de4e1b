/**
 * The shared pieces of our HTTP services (issue 19 item 5): the token file is the owner's alone and refused when
 * others could read it; a real fastify server on 127.0.0.1 refuses a write without the token (401, typed code) and
 * with a wrong one, accepts it with the right one, and serves reads without; listen addresses default to 127.0.0.1.
 */
import { chmodSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import Fastify from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isDamnitError } from "../src/core/errors.js";
import { parseListenAddress } from "../src/http/listen-address.js";
import { requireTokenForWrites } from "../src/http/require-token.js";
import { loadOrCreateToken, readTokenFile } from "../src/http/token.js";
import { tempDir } from "./helpers/tmp.js";

describe("token file", () => {
  it("is made 0600 and read back unchanged", () => {
    const dir = tempDir("token");
    const file = join(dir, "api.token");
    const token = loadOrCreateToken(file);
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(loadOrCreateToken(file)).toBe(token);
  });

  it("is refused when others may read it, or when it is a symlink", () => {
    const dir = tempDir("token");
    const file = join(dir, "api.token");
    writeFileSync(file, "abcdefghijklmnopqrstuvwxyz\n");
    chmodSync(file, 0o644);
    expect(() => readTokenFile(file)).toThrow(expect.objectContaining({ code: "UNSAFE_FILE" }));
    const link = join(dir, "link.token");
    symlinkSync(file, link);
    try {
      loadOrCreateToken(link);
      expect.unreachable();
    } catch (err) {
      expect(isDamnitError(err, "UNSAFE_FILE")).toBe(true);
    }
  });
});

describe("listen address", () => {
  it("defaults to 127.0.0.1 and refuses nonsense", () => {
    expect(parseListenAddress(undefined)).toEqual({ host: "127.0.0.1", port: 0 });
    expect(parseListenAddress("8080")).toEqual({ host: "127.0.0.1", port: 8080 });
    expect(parseListenAddress(":8080")).toEqual({ host: "127.0.0.1", port: 8080 });
    expect(parseListenAddress("0.0.0.0:81")).toEqual({ host: "0.0.0.0", port: 81 });
    expect(parseListenAddress("[::1]:81")).toEqual({ host: "::1", port: 81 });
    for (const bad of ["x", "1:2:3", "127.0.0.1:99999", "host:"]) {
      expect(() => parseListenAddress(bad)).toThrow(expect.objectContaining({ code: "BAD_LISTEN_ADDRESS" }));
    }
  });
});

describe("requireTokenForWrites on a real server", () => {
  const app = Fastify();
  let base = "";
  let writes = 0;
  const token = "t0ken-for-the-test-0123456789";
  beforeAll(async () => {
    requireTokenForWrites(app, token);
    app.get("/state", async () => ({ writes }));
    app.post("/state", async () => ({ writes: ++writes }));
    await app.listen({ host: "127.0.0.1", port: 0 });
    const addr = app.server.address();
    if (!addr || typeof addr === "string") throw new Error("no address");
    base = `http://127.0.0.1:${addr.port}`;
  });
  afterAll(() => app.close());

  it("reads need no token; writes need the right one", async () => {
    expect((await fetch(`${base}/state`)).status).toBe(200);
    const none = await fetch(`${base}/state`, { method: "POST" });
    expect(none.status).toBe(401);
    expect(await none.json()).toMatchObject({ status: "error", code: "TOKEN_REQUIRED" });
    const wrong = await fetch(`${base}/state`, { method: "POST", headers: { authorization: "Bearer nope" } });
    expect(wrong.status).toBe(401);
    expect(await wrong.json()).toMatchObject({ code: "BAD_TOKEN" });
    expect(writes).toBe(0);
    const ok = await fetch(`${base}/state`, { method: "POST", headers: { authorization: `Bearer ${token}` } });
    expect(ok.status).toBe(200);
    const own = await fetch(`${base}/state`, { method: "POST", headers: { "x-damnit-token": token } });
    expect(await own.json()).toEqual({ writes: 2 });
  });
});
