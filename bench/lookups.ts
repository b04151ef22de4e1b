/**
 * Lookup recorder benchmark (issue 14): requests/s and p50/p99 latency of cache hits through the recorder, next
 * to direct requests to the same local upstream, in one run. Target: hit p50 ≤ 2 ms and ≥ 5,000 hits/s on one
 * core. The upstream and the recorder (`damnit lookups serve`, one process: one core) each run in a process of
 * their own; the client is this one, the same for both figures.
 *
 *   npm run build && node dist/bench/lookups.js [--requests 20000] [--concurrency 8] [--keys 32]
 */
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Pool } from "undici";

const DAMNIT = fileURLToPath(new URL("../../bin/damnit.js", import.meta.url));

const args = process.argv.slice(2);
const option = (name: string, fallback: number) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const REQUESTS = option("requests", 20_000);
const CONCURRENCY = option("concurrency", 8);
const KEYS = option("keys", 32);

const UPSTREAM = `
const http = require("node:http");
const body = JSON.stringify({ constants: Array.from({ length: 20 }, (_, i) => ({ id: i, path: "xfel/cal/lpd/module" + i + ".h5" })) });
const server = http.createServer((req, res) => { res.setHeader("content-type", "application/json"); res.end(body); });
server.listen(0, "127.0.0.1", () => process.send(server.address().port));
`;

async function startUpstream(): Promise<{ port: number; stop(): void }> {
  const child = spawn(process.execPath, ["-e", UPSTREAM], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
  const port = await new Promise<number>((resolve) => child.once("message", (m) => resolve(Number(m))));
  return { port, stop: () => child.kill() };
}

interface Figures {
  perSecond: number;
  p50: number;
  p99: number;
}

async function load(origin: string, pathOf: (i: number) => string, headers: Record<string, string> = {}, marker?: string): Promise<Figures> {
  const pool = new Pool(origin, { connections: CONCURRENCY });
  const latencies = new Float64Array(REQUESTS);
  let next = 0;
  const started = performance.now();
  const worker = async () => {
    for (let i = next++; i < REQUESTS; i = next++) {
      const t0 = performance.now();
      const res = await pool.request({ method: "GET", path: pathOf(i), headers });
      await res.body.arrayBuffer();
      if (res.statusCode !== 200) throw new Error(`status ${res.statusCode} for ${pathOf(i)}`);
      if (marker !== undefined && res.headers["x-lookup-recorder"] !== marker) throw new Error(`${pathOf(i)} was not a cache hit (${String(res.headers["x-lookup-recorder"])})`);
      latencies[i] = performance.now() - t0;
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  const seconds = (performance.now() - started) / 1000;
  await pool.close();
  latencies.sort();
  return { perSecond: REQUESTS / seconds, p50: latencies[Math.floor(REQUESTS * 0.5)]!, p99: latencies[Math.floor(REQUESTS * 0.99)]! };
}

const fmt = (f: Figures) => `${Math.round(f.perSecond).toString().padStart(7)} req/s   p50 ${f.p50.toFixed(2)} ms   p99 ${f.p99.toFixed(2)} ms`;

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "damnit-bench-lookups-"));
  const upstream = await startUpstream();
  const portFile = join(dir, "port");
  const serve = spawn(
    process.execPath,
    [DAMNIT, "lookups", "serve", "--db", join(dir, "lookups.sqlite"), "--upstream", `calcat=http://127.0.0.1:${upstream.port}/api`, "--port-file", portFile, "--token-file", join(dir, "token"), "--processing-id", "bench"],
    { stdio: ["ignore", "ignore", "inherit"], env: { ...process.env, DAMNIT_LOG_FORMAT: "json" } },
  );
  for (let i = 0; i < 400 && !existsSync(portFile); i++) await sleep(50);
  const recorder = { url: `http://127.0.0.1:${Number(readFileSync(portFile, "utf8"))}` };
  const token = readFileSync(join(dir, "token"), "utf8").trim();
  try {
    const path = (i: number) => `/constants?module=${i % KEYS}&condition=${i % 2 ? "light" : "dark"}`;
    const headers = { "x-damnit-token": token };
    // Record every key once, and warm both paths up.
    await load(`http://127.0.0.1:${upstream.port}`, (i) => `/api${path(i)}`);
    await load(recorder.url, (i) => `/calcat${path(i)}`, headers);
    const direct = await load(`http://127.0.0.1:${upstream.port}`, (i) => `/api${path(i)}`);
    const hits = await load(recorder.url, (i) => `/calcat${path(i)}`, headers, "hit");
    console.log(`lookup recorder, ${REQUESTS} requests over ${KEYS} keys, ${CONCURRENCY} at a time`);
    console.log(`  direct to upstream (baseline): ${fmt(direct)}`);
    console.log(`  cache hit through recorder:    ${fmt(hits)}`);
    const ok = hits.p50 <= 2 && hits.perSecond >= 5000;
    console.log(`  target hit p50 ≤ 2 ms and ≥ 5,000 hits/s: ${ok ? "met" : "NOT met"}`);
  } finally {
    serve.kill("SIGTERM");
    await new Promise((done) => serve.once("exit", done));
    upstream.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
