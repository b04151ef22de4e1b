/**
 * The lookup recorder against real upstream HTTP servers on 127.0.0.1 that count their calls and connections:
 * the thirteen acceptance checks of spec satellites §A.5 (check 12 with four recorder processes sharing one
 * database), and the bad-input cases of issue 14.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { spawn, type ChildProcess } from "node:child_process";
import { chmodSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import { request } from "undici";
import { LookupRecorder } from "../src/lookups/recorder.js";
import { LookupStore } from "../src/lookups/store.js";
import { parseUpstreamOptions, type LookupMode } from "../src/lookups/config.js";
import { requestKey } from "../src/lookups/key.js";
import { isDamnitError } from "../src/core/errors.js";
import { damnit, expectOneLineError } from "./helpers/cli.js";
import { DAMNIT_BIN, tempDir } from "./helpers/tmp.js";

interface Upstream {
  readonly url: string;
  calls: number;
  connections: number;
  readonly seen: IncomingMessage[];
  close(): Promise<void>;
}

type Behaviour = (req: IncomingMessage, body: Buffer, res: ServerResponse, n: number) => void | Promise<void>;

const servers: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  for (const s of servers.splice(0).reverse()) await s.close();
});

const echo: Behaviour = (req, body, res, n) => {
  res.setHeader("content-type", "application/json");
  res.end(JSON.stringify({ n, method: req.method, url: req.url, body: body.toString("utf8") }));
};

async function upstream(behaviour: Behaviour = echo): Promise<Upstream> {
  const u = { calls: 0, connections: 0, seen: [] as IncomingMessage[] } as Upstream & { calls: number; connections: number };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      u.calls++;
      u.seen.push(req);
      void behaviour(req, Buffer.concat(chunks), res, u.calls);
    });
  });
  server.on("connection", () => u.connections++);
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  const port = (server.address() as AddressInfo).port;
  const close = () =>
    new Promise<void>((done) => {
      server.closeAllConnections();
      server.close(() => done());
    });
  servers.push({ close });
  return Object.assign(u, { url: `http://127.0.0.1:${port}`, close });
}

async function recorder(db: string | undefined, up: string, opts: { mode?: LookupMode; node?: string; peerWaitMs?: number; usage?: { processingId?: string; proposal?: number; run?: number }; timeoutMs?: number } = {}) {
  const store = opts.mode === "passthrough" || db === undefined ? undefined : LookupStore.open(db);
  const r = new LookupRecorder({
    mode: opts.mode ?? "record",
    upstreams: parseUpstreamOptions([`cal=${up}`]),
    store,
    node: opts.node,
    peerWaitMs: opts.peerWaitMs,
    usage: opts.usage,
    upstreamTimeoutMs: opts.timeoutMs,
  });
  await r.listen();
  servers.push({ close: async () => (await r.close(), store?.close()) });
  return r;
}

async function get(url: string, init: { method?: string; body?: string; headers?: Record<string, string> } = {}) {
  const res = await request(url, { method: (init.method ?? "GET") as "GET", body: init.body, headers: init.headers });
  const body = Buffer.from(await res.body.arrayBuffer());
  return { status: res.statusCode, headers: res.headers, body, text: body.toString("utf8") };
}

function rows(db: string): Array<{ key: string; status: number; resp_body: Buffer | null; method: string; path: string; query: string; req_body: Buffer | null; resp_headers: string | null }> {
  const sqlite = new Database(db, { readonly: true });
  try {
    return sqlite.prepare("SELECT * FROM responses ORDER BY key").all() as never;
  } finally {
    sqlite.close();
  }
}

describe("lookup recorder (§A.5)", () => {
  it("1, 2: records once, replays byte-identical bodies, also after a restart on the same file", async () => {
    const body = Buffer.from([0, 1, 2, 255, 254, 10, 13]);
    const up = await upstream((_req, _b, res) => {
      res.setHeader("content-type", "application/x-thing");
      res.statusCode = 201;
      res.end(body);
    });
    const db = join(tempDir(), "lookups.sqlite");
    const r1 = await recorder(db, `${up.url}/api`);
    const first = await get(`${r1.url}/cal/constants?detector=LPD1M`);
    expect(first.status).toBe(201);
    expect(first.body.equals(body)).toBe(true);
    expect(first.headers["content-type"]).toBe("application/x-thing");
    expect(first.headers["x-lookup-recorder"]).toBe("miss");
    expect(up.calls).toBe(1);
    expect(up.seen[0]!.url).toBe("/api/constants?detector=LPD1M");
    const stored = rows(db);
    expect(stored).toHaveLength(1);
    expect(stored[0]!.status).toBe(201);
    expect(Buffer.from(stored[0]!.resp_body!).equals(body)).toBe(true);

    const again = await get(`${r1.url}/cal/constants?detector=LPD1M`);
    expect(again.headers["x-lookup-recorder"]).toBe("hit");
    expect(again.status).toBe(201);
    expect(again.body.equals(body)).toBe(true);
    await r1.close();
    const r2 = await recorder(db, `${up.url}/api`);
    const restarted = await get(`${r2.url}/cal/constants?detector=LPD1M`);
    expect(restarted.body.equals(body)).toBe(true);
    expect(restarted.headers["x-lookup-recorder"]).toBe("hit");
    expect(up.calls).toBe(1);
  });

  it("3: query order does not change the key; method, path, query value and body do", async () => {
    const up = await upstream();
    const db = join(tempDir(), "lookups.sqlite");
    const r = await recorder(db, up.url);
    await get(`${r.url}/cal/q?a=1&b=2`);
    await get(`${r.url}/cal/q?b=2&a=1`);
    expect(up.calls).toBe(1);
    expect(rows(db)).toHaveLength(1);
    await get(`${r.url}/cal/q?a=1&b=3`);
    await get(`${r.url}/cal/other?a=1&b=2`);
    await get(`${r.url}/cal/q?a=1&b=2`, { method: "POST", body: "x" });
    await get(`${r.url}/cal/q?a=1&b=2`, { method: "POST", body: "y" });
    expect(up.calls).toBe(5);
    expect(rows(db)).toHaveLength(5);
    expect(new Set(rows(db).map((x) => x.key)).size).toBe(5);
    const post = rows(db).find((x) => x.method === "POST" && Buffer.from(x.req_body!).toString() === "y");
    expect(post?.query).toBe("a=1&b=2");
  });

  it("4: two recorders on one database, upstream taking 3 s: one upstream call, the second waits for it", async () => {
    const up = await upstream(async (req, body, res, n) => {
      await sleep(3000);
      echo(req, body, res, n);
    });
    const db = join(tempDir(), "lookups.sqlite");
    const a = await recorder(db, up.url, { node: "hostA:1" });
    const b = await recorder(db, up.url, { node: "hostB:2" });
    const first = get(`${a.url}/cal/slow`);
    await sleep(300);
    const t0 = performance.now();
    const second = await get(`${b.url}/cal/slow`);
    const waited = performance.now() - t0;
    const one = await first;
    expect(up.calls).toBe(1);
    expect(second.headers["x-lookup-recorder"]).toBe("waited");
    expect(second.body.equals(one.body)).toBe(true);
    expect(waited).toBeGreaterThan(2000);
    expect(waited).toBeLessThan(4000);
  });

  it("5: a pending row whose owner died costs a peer 15 s, then it fetches and stores", async () => {
    const up = await upstream();
    const db = join(tempDir(), "lookups.sqlite");
    const r = await recorder(db, up.url);
    const key = requestKey({ method: "GET", service: "cal", path: "/k", rawQuery: "", body: Buffer.alloc(0), headers: {} });
    const sqlite = new Database(db);
    sqlite.prepare("INSERT INTO responses(key, method, service, path, query, status, requested_at, node) VALUES (?, 'GET', 'cal', '/k', '', -1, ?, 'crashed:1')").run(key, Date.now() / 1000 - 3600);
    sqlite.close();
    const t0 = performance.now();
    const res = await get(`${r.url}/cal/k`);
    const seconds = (performance.now() - t0) / 1000;
    expect(seconds).toBeGreaterThan(14.5);
    expect(seconds).toBeLessThan(15.5);
    expect(res.status).toBe(200);
    expect(res.headers["x-lookup-recorder"]).toBe("miss");
    expect(up.calls).toBe(1);
    const stored = rows(db);
    expect(stored).toHaveLength(1);
    expect(stored[0]!.status).toBe(200);
  }, 40_000);

  it("6: connection refused gives 502, an upstream 503 is passed on; neither is stored and both are retried", async () => {
    const dead = await upstream();
    const deadUrl = dead.url;
    await dead.close();
    const db = join(tempDir(), "lookups.sqlite");
    const r = await recorder(db, deadUrl);
    const refused = await get(`${r.url}/cal/x`);
    expect(refused.status).toBe(502);
    expect(JSON.parse(refused.text).status).toBe("error");
    expect(rows(db)).toHaveLength(0);

    const flaky = await upstream((_req, _b, res) => {
      res.statusCode = 503;
      res.end("down for maintenance");
    });
    const r2 = await recorder(db, flaky.url);
    const unavailable = await get(`${r2.url}/cal/x`);
    expect(unavailable.status).toBe(503);
    expect(unavailable.text).toBe("down for maintenance");
    expect(rows(db)).toHaveLength(0);
    await get(`${r2.url}/cal/x`);
    expect(flaky.calls).toBe(2);
    expect(rows(db)).toHaveLength(0);
  });

  it("7: replay never connects to the upstream: 504 naming the missing request; recorded keys are served", async () => {
    const up = await upstream();
    const db = join(tempDir(), "lookups.sqlite");
    const rec = await recorder(db, up.url);
    const recorded = await get(`${rec.url}/cal/known?x=1`);
    const connectionsBefore = up.connections;
    const callsBefore = up.calls;
    const rep = await recorder(db, up.url, { mode: "replay" });
    const miss = await get(`${rep.url}/cal/unknown?y=2`);
    expect(miss.status).toBe(504);
    const error = JSON.parse(miss.text) as { message: string; key: string; request: string };
    expect(error.message).toBe("lookup not recorded");
    expect(error.request).toBe("GET /cal/unknown?y=2");
    expect(error.key).toMatch(/^[0-9a-f]{64}$/);
    const hit = await get(`${rep.url}/cal/known?x=1`);
    expect(hit.status).toBe(200);
    expect(hit.body.equals(recorded.body)).toBe(true);
    expect(up.connections).toBe(connectionsBefore);
    expect(up.calls).toBe(callsBefore);
  });

  it("8: a 404 is stored and replayed without the upstream", async () => {
    const up = await upstream((_req, _b, res) => {
      res.statusCode = 404;
      res.setHeader("content-type", "application/json");
      res.end('{"detail":"no constant found"}');
    });
    const db = join(tempDir(), "lookups.sqlite");
    const r = await recorder(db, up.url);
    expect((await get(`${r.url}/cal/c`)).status).toBe(404);
    const again = await get(`${r.url}/cal/c`);
    expect(again.status).toBe(404);
    expect(again.text).toBe('{"detail":"no constant found"}');
    expect(again.headers["x-lookup-recorder"]).toBe("hit");
    expect(up.calls).toBe(1);
  });

  it("11: a client's Authorization and Cookie are neither forwarded, stored nor keyed; upstream credentials come from configuration", async () => {
    const up = await upstream();
    const db = join(tempDir(), "lookups.sqlite");
    const store = LookupStore.open(db);
    const r = new LookupRecorder({
      mode: "record",
      upstreams: new Map([["cal", { url: up.url, headers: { authorization: "Bearer upstream-secret" } }]]),
      store,
    });
    await r.listen();
    servers.push({ close: async () => (await r.close(), store.close()) });
    await get(`${r.url}/cal/a`, { headers: { authorization: "Bearer client-one", cookie: "session=1" } });
    await get(`${r.url}/cal/a`, { headers: { authorization: "Bearer client-two" } });
    expect(up.calls).toBe(1);
    expect(up.seen[0]!.headers.authorization).toBe("Bearer upstream-secret");
    expect(up.seen[0]!.headers.cookie).toBeUndefined();
    const dump = readFileSync(db);
    expect(dump.includes("client-one")).toBe(false);
    expect(dump.includes("session=1")).toBe(false);
    expect(dump.includes("upstream-secret")).toBe(false);
  });

  it("13: every served request writes one lookup_usage row with the processing id, proposal and run", async () => {
    const up = await upstream(async (req, body, res, n) => {
      await sleep(800);
      echo(req, body, res, n);
    });
    const db = join(tempDir(), "lookups.sqlite");
    const a = await recorder(db, up.url, { node: "a:1", usage: { processingId: "job-a", proposal: 1234, run: 5 } });
    const b = await recorder(db, up.url, { node: "b:2", usage: { processingId: "job-b", proposal: 1234, run: 6 } });
    const pa = get(`${a.url}/cal/u`);
    await sleep(200);
    await get(`${b.url}/cal/u`);
    await pa;
    await get(`${a.url}/cal/u`);
    a.flush();
    b.flush();
    const store = LookupStore.open(db);
    try {
      const usage = store.usageOf({});
      expect(usage.map((u) => [u.processingId, u.proposal, u.run, u.servedFrom]).sort()).toEqual(
        [
          ["job-a", 1234, 5, "upstream"],
          ["job-b", 1234, 6, "waited"],
          ["job-a", 1234, 5, "cache"],
        ].sort(),
      );
      expect(new Set(usage.map((u) => u.key)).size).toBe(1);
      expect(store.list({ run: 6, proposal: 1234 })).toHaveLength(1);
      expect(store.list({ run: 7 })).toHaveLength(0);
    } finally {
      store.close();
    }
  });

  it("13, many at once: 150 requests over 3 keys served between two writes give 150 lookup_usage rows in order and the hits of each key", async () => {
    const up = await upstream();
    const db = join(tempDir(), "lookups.sqlite");
    const r = await recorder(db, up.url, { usage: { processingId: "many", proposal: 1, run: 3 } });
    for (const k of ["a", "b", "c"]) await get(`${r.url}/cal/${k}`);
    r.flush();
    const order: string[] = [];
    for (let i = 0; i < 150; i++) {
      const k = ["a", "b", "c"][i % 7 === 0 ? 2 : i % 2]!;
      order.push(k);
      await get(`${r.url}/cal/${k}`);
    }
    r.flush();
    const sqlite = new Database(db, { readonly: true });
    try {
      const usage = sqlite
        .prepare("SELECT u.processing_id, u.proposal, u.run, u.served_from, r.path FROM lookup_usage u JOIN responses r USING (key) ORDER BY u.at, u.rowid")
        .all() as Array<{ processing_id: string; proposal: number; run: number; served_from: string; path: string }>;
      expect(usage).toHaveLength(153);
      expect(usage.slice(3).map((u) => u.path.slice(1))).toEqual(order);
      expect(usage.slice(3).every((u) => u.served_from === "cache" && u.processing_id === "many" && u.proposal === 1 && u.run === 3)).toBe(true);
      const hits = sqlite.prepare("SELECT path, hits FROM responses ORDER BY path").all() as Array<{ path: string; hits: number }>;
      expect(hits).toEqual(["a", "b", "c"].map((k) => ({ path: `/${k}`, hits: order.filter((o) => o === k).length })));
    } finally {
      sqlite.close();
    }
    expect(up.calls).toBe(3);
  });

  it("passthrough neither reads nor writes the database; an unknown service is 404 JSON; a hanging upstream is 502", async () => {
    const up = await upstream();
    const pass = await recorder(undefined, up.url, { mode: "passthrough" });
    await get(`${pass.url}/cal/p`);
    await get(`${pass.url}/cal/p`);
    expect(up.calls).toBe(2);
    const unknown = await get(`${pass.url}/other/p`);
    expect(unknown.status).toBe(404);
    expect(JSON.parse(unknown.text)).toEqual({ status: "error", message: "unknown upstream other" });

    const hang = await upstream(() => {});
    const db = join(tempDir(), "lookups.sqlite");
    const r = await recorder(db, hang.url, { timeoutMs: 500 });
    const res = await get(`${r.url}/cal/h`);
    expect(res.status).toBe(502);
    expect(rows(db)).toHaveLength(0);
  });

  it("a damaged lookups.sqlite is refused naming it", () => {
    const db = join(tempDir(), "lookups.sqlite");
    writeFileSync(db, "this is not a database, just some text that is long enough to be a header".repeat(20));
    let caught: unknown;
    try {
      LookupStore.open(db);
    } catch (err) {
      caught = err;
    }
    expect(isDamnitError(caught, "LOOKUP_DB")).toBe(true);
    expect((caught as Error).message).toContain(db);
  });
});

/** A `damnit lookups serve` process; resolves with its port once its port file appears (bounded). */
async function serveProcess(db: string, up: string, dir: string, i: number): Promise<{ child: ChildProcess; port: number; token: string }> {
  const portFile = join(dir, `port-${i}`);
  const child = spawn(process.execPath, [DAMNIT_BIN, "lookups", "serve", "--db", db, "--upstream", `cal=${up}`, "--port-file", portFile, "--token-file", join(dir, "token")], {
    stdio: ["ignore", "ignore", "pipe"],
    env: { ...process.env, DAMNIT_LOG_FORMAT: "json" },
  });
  servers.push({
    close: () =>
      new Promise<void>((done) => {
        if (child.exitCode !== null) return done();
        child.once("exit", () => done());
        child.kill("SIGTERM");
      }),
  });
  for (let i = 0; i < 200 && !existsSync(portFile); i++) await sleep(50);
  const text = readFileSync(portFile, "utf8");
  expect(text).toMatch(/^\d+\n$/);
  return { child, port: Number(text), token: readFileSync(join(dir, "token"), "utf8").trim() };
}

describe("lookup recorder processes", () => {
  it("12: 32 requests, each issued at once by 4 recorder processes on one database: 32 rows, 32 upstream calls", async () => {
    const up = await upstream(async (req, body, res, n) => {
      await sleep(100);
      echo(req, body, res, n);
    });
    const dir = tempDir();
    const db = join(dir, "lookups.sqlite");
    const recorders = [];
    // One at a time: the first makes the token file the others read.
    for (let i = 0; i < 4; i++) recorders.push(await serveProcess(db, up.url, dir, i));
    const requests = [];
    for (let module = 0; module < 16; module++) {
      for (const condition of ["light", "dark"]) {
        for (const r of recorders) {
          requests.push(get(`http://127.0.0.1:${r.port}/cal/constants?module=${module}&condition=${condition}`, { headers: { "x-damnit-token": r.token } }));
        }
      }
    }
    const answers = await Promise.all(requests);
    expect(answers.every((a) => a.status === 200)).toBe(true);
    expect(up.calls).toBe(32);
    const stored = rows(db);
    expect(stored).toHaveLength(32);
    expect(stored.every((r) => r.status === 200)).toBe(true);
    // Every recorder's answer for a request is the one stored.
    const byUrl = new Map<string, string>();
    for (const a of answers) {
      const url = (JSON.parse(a.text) as { url: string }).url;
      if (byUrl.has(url)) expect(byUrl.get(url)).toBe(a.text);
      else byUrl.set(url, a.text);
    }
    expect(byUrl.size).toBe(32);
  }, 180_000);

  it("9, 10: child mode gives the child its URLs, exits with its status, and the port is closed afterwards; the port file holds the port", async () => {
    const up = await upstream();
    const dir = tempDir();
    const db = join(dir, "lookups.sqlite");
    const portFile = join(dir, "port");
    const script = join(dir, "child.mjs");
    writeFileSync(
      script,
      `import { readFileSync, writeFileSync } from "node:fs";
       const port = readFileSync(${JSON.stringify(portFile)}, "utf8");
       const res = await fetch(process.env.DAMNIT_LOOKUP_MY_CAL_URL + "/x?a=1", { headers: { "x-damnit-token": process.env.DAMNIT_LOOKUP_TOKEN } });
       writeFileSync(${JSON.stringify(join(dir, "seen.json"))}, JSON.stringify({ port, base: process.env.DAMNIT_LOOKUP_URL, svc: process.env.DAMNIT_LOOKUP_MY_CAL_URL, status: res.status, marker: res.headers.get("x-lookup-recorder") }));
       process.exit(3);`,
    );
    // Not spawnSync: the upstream lives in this process and must go on answering.
    const child = spawn(process.execPath, [DAMNIT_BIN, "lookups", "record", "--db", db, "--upstream", `my-cal=${up.url}`, "--port-file", portFile, "--", process.execPath, script], {
      stdio: "ignore",
      timeout: 30_000,
    });
    const status = await new Promise<number | null>((done) => child.once("exit", (code) => done(code)));
    expect(status).toBe(3);
    const seen = JSON.parse(readFileSync(join(dir, "seen.json"), "utf8")) as { port: string; base: string; svc: string; status: number; marker: string };
    expect(seen.port).toMatch(/^\d+\n$/);
    const port = Number(seen.port);
    expect(seen.base).toBe(`http://127.0.0.1:${port}`);
    expect(seen.svc).toBe(`http://127.0.0.1:${port}/my-cal`);
    expect(seen.status).toBe(200);
    expect(seen.marker).toBe("miss");
    expect(up.calls).toBe(1);
    await expect(request(`http://127.0.0.1:${port}/my-cal/x`)).rejects.toThrow(/ECONNREFUSED/);
  });

  it("an unwritable database path is refused before the child starts", () => {
    const dir = tempDir();
    const marker = join(dir, "child-ran");
    const result = damnit(["lookups", "record", "--db", join(dir, "no-such-dir", "lookups.sqlite"), "--", "touch", marker]);
    expect(expectOneLineError(result)).toContain("no-such-dir");
    expect(existsSync(marker)).toBe(false);
    if (process.getuid?.() !== 0) {
      const ro = join(dir, "ro");
      chmodSync(dir, 0o500);
      expect(damnit(["lookups", "record", "--db", join(ro, "l.sqlite"), "--", "touch", marker]).status).toBe(1);
    }
  });

  it("list, show, drop-pending and purge from the command line", async () => {
    const up = await upstream();
    const dir = tempDir();
    const db = join(dir, "lookups.sqlite");
    const r = await recorder(db, up.url, { usage: { processingId: "p1", proposal: 1, run: 2 } });
    await get(`${r.url}/cal/a?z=1`);
    r.flush();
    const sqlite = new Database(db);
    sqlite.prepare("INSERT INTO responses(key, method, service, path, query, status, requested_at, node) VALUES ('dead', 'GET', 'cal', '/b', '', -1, 0, 'x:1')").run();
    sqlite.close();
    const list = damnit(["lookups", "list", "--db", db, "--json"]);
    expect(list.status).toBe(0);
    const listed = JSON.parse(list.stdout) as Array<{ key: string; status: number }>;
    expect(listed.map((x) => x.status).sort()).toEqual([-1, 200]);
    const ofRun = JSON.parse(damnit(["lookups", "list", "--db", db, "--run", "2", "--json"]).stdout) as unknown[];
    expect(ofRun).toHaveLength(1);
    const key = listed.find((x) => x.status === 200)!.key;
    const shown = damnit(["lookups", "show", key, "--db", db]);
    expect(shown.stdout).toContain('"url":"/a?z=1"');
    expect(expectOneLineError(damnit(["lookups", "show", "nope", "--db", db]))).toContain("nope");
    expect(damnit(["lookups", "drop-pending", "--db", db]).stdout).toContain("Removed 1 ");
    expect(damnit(["lookups", "purge", "--older-than", "1", "--db", db]).stdout).toContain("Removed 0 ");
    expect(damnit(["lookups", "purge", "--older-than", "0", "--db", db]).stdout).toContain("Removed 1 ");
    expect(rows(db)).toHaveLength(0);
  }, 180_000);
});
