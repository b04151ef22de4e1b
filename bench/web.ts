/**
 * Web table benchmark (issue #16): a database of 1,000 runs × 100 variables served by a real `damnit web`, opened in
 * Debian's headless Chromium. Prints the time to the first full render and the time from a job's commit to the
 * changed cell on the page (p50, p99), next to reading the same table with `readRunTable` in the same run, and the
 * server's memory. Targets: first render ≤ 1.5 s, update p50 ≤ 0.5 s, server ≤ 150 MiB.
 *
 *   npm run build && node dist/bench/web.js [--runs 1000] [--vars 100] [--updates 30]
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import puppeteer from "puppeteer-core";
import { RunDatabase, type RunValues } from "../src/db/index.js";

const args = process.argv.slice(2);
const option = (name: string, fallback: number) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const RUNS = option("runs", 1000);
const VARS = option("vars", 100);
const UPDATES = option("updates", 30);
const PROPOSAL = 1234;
const BIN = resolve(fileURLToPath(new URL("../../bin/damnit.js", import.meta.url)));

const names = Array.from({ length: VARS }, (_, v) => `var_${String(v).padStart(3, "0")}`);
const allRuns: RunValues[] = Array.from({ length: RUNS }, (_, i) => ({
  proposal: PROPOSAL,
  run: i + 1,
  values: Object.fromEntries(names.map((n, v) => [n, { value: (i + 1) * 1000 + v + 0.5 }])),
}));

const ms = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;
const kib = (pid: number, key: string) => Number(new RegExp(`${key}:\\s+(\\d+)`).exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? NaN);

const root = mkdtempSync(join(tmpdir(), "damnit-bench-web-"));
const dir = join(root, "db");
const db = await RunDatabase.open(dir, { create: true, initialSettings: { proposal: PROPOSAL } });
db.setVariablesForRuns(allRuns, { provenance: "context" });

let readBest = Infinity;
for (let i = 0; i < 3; i++) {
  const t0 = process.hrtime.bigint();
  db.readRunTable();
  readBest = Math.min(readBest, ms(t0));
}

const server = spawn(process.execPath, [BIN, "web", dir, "--listen", "127.0.0.1:0", "--read-only"], {
  env: { ...process.env, XDG_CONFIG_HOME: join(root, "config") },
  stdio: ["ignore", "pipe", "inherit"],
});
const base = await new Promise<string>((ok, fail) => {
  let out = "";
  const timer = setTimeout(() => fail(new Error(`damnit web did not start: ${out}`)), 30_000);
  server.stdout!.on("data", (d: Buffer) => {
    out += d.toString();
    const m = /Run table: (http:\S+)/.exec(out);
    if (m) {
      clearTimeout(timer);
      ok(m[1]!);
    }
  });
});

const browser = await puppeteer.launch({ executablePath: "/usr/bin/chromium", headless: true, args: ["--no-sandbox"] });
try {
  const page = await browser.newPage();
  await page.setViewport({ width: 1600, height: 900 });
  const t0 = process.hrtime.bigint();
  await page.goto(base);
  // Rendered: the page has every run in its table (the DOM holds the rows in view: the table is virtual) and the
  // first rows' cells are on the page.
  await page.waitForFunction(
    `document.body.dataset.ready === "1" && document.body.dataset.rows === "${RUNS}" && document.querySelectorAll("tbody tr[data-run] td[data-col]").length > 0`,
    { timeout: 60_000, polling: 20 },
  );
  const firstRender = ms(t0);
  const phases = (await page.evaluate(`(() => {
    const mark = (n) => performance.getEntriesByName(n)[0]?.startTime ?? NaN;
    const table = performance.getEntriesByType("resource").find((e) => e.name.endsWith("/table"));
    const script = performance.getEntriesByType("resource").find((e) => e.name.endsWith("/app.js"));
    return { script: script.responseEnd, asked: table.startTime, received: table.responseEnd, size: table.encodedBodySize, parsed: mark("damnit:table-parsed"), rendered: mark("damnit:rendered") };
  })()`)) as Record<string, number>;
  const cells = (await page.evaluate(`document.querySelectorAll("tbody td[data-col]").length`)) as number;

  const latencies: number[] = [];
  for (let i = 0; i < UPDATES; i++) {
    const run = 1 + ((i * 37) % RUNS);
    const value = 9_000_000 + i;
    // The changed cell must be on the page: scroll its run into view first (as a person watching it would).
    await page.evaluate(`window.damnitTable.scrollToRun("${PROPOSAL}/${run}")`);
    await page.waitForSelector(`tr[data-run='${PROPOSAL}/${run}'] td[data-col='var_000']`, { timeout: 5_000 });
    await db.withWriteLock(() => db.setVariables(PROPOSAL, run, { var_000: { value } }, { provenance: "context" }));
    const t1 = process.hrtime.bigint();
    await page.waitForFunction(`document.querySelector("tr[data-run='${PROPOSAL}/${run}'] td[data-col='var_000']")?.textContent === "${value}"`, { timeout: 10_000, polling: "raf" });
    latencies.push(ms(t1));
  }
  const rss = kib(server.pid!, "VmRSS") / 1024;
  const hwm = kib(server.pid!, "VmHWM") / 1024;

  console.log(`web table benchmark: ${RUNS} runs × ${VARS} variables (${cells} cells in the DOM: the rows in view)`);
  console.log(`  baseline readRunTable (same table, this process, best of 3): ${readBest.toFixed(0)} ms`);
  console.log(`  first full render in Chromium:         ${firstRender.toFixed(0)} ms   (target ≤ 1500 ms)`);
  const f = (x: number | undefined) => (x ?? NaN).toFixed(0);
  console.log(
    `    in the page: script loaded ${f(phases.script)} ms, table asked ${f(phases.asked)}, received ${f(phases.received)} (${((phases.size ?? 0) / 2 ** 20).toFixed(1)} MiB JSON), parsed ${f(phases.parsed)}, rendered ${f(phases.rendered)} ms after navigation`,
  );
  console.log(`  job commit → changed cell on the page: p50 ${pct(latencies, 50).toFixed(0)} ms, p99 ${pct(latencies, 99).toFixed(0)} ms over ${UPDATES} updates   (target p50 ≤ 500 ms)`);
  console.log(`  server memory: RSS ${rss.toFixed(0)} MiB, peak ${hwm.toFixed(0)} MiB   (target ≤ 150 MiB)`);
} finally {
  await browser.close();
  server.kill("SIGTERM");
  db.close();
  rmSync(root, { recursive: true, force: true });
}
