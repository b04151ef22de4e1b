// The web table served by the other commands, in Debian's headless Chromium: `damnit demo --web` ends by serving
// its table, and `damnit listen --web` serves its registered databases, with a run the listener processes (here,
// without Kafka or Slurm) appearing on the open page, its processing shown while it runs. Screenshots go to
// test-output/web/.
import { mkdirSync, symlinkSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import puppeteer, { type Browser, type Page } from "puppeteer-core";
import { CHROMIUM, chromiumAvailable } from "./helpers/chromium.js";
import { damnit, expectOneLineError } from "./helpers/cli.js";
import { demoDatabase, listenerDir } from "./helpers/listener.js";
import { REPO_ROOT } from "./helpers/paths.js";
import { tempDir } from "./helpers/tmp.js";
import { startServing } from "./helpers/web-server.js";

const SHOTS = join(REPO_ROOT, "test-output", "web");
const haveChromium = chromiumAvailable();
let browser: Browser;

/** A PATH with node and nothing else: no sbatch, so the listener processes runs itself. */
function pathWithoutSlurm(parent: string): string {
  const bin = join(parent, "bin");
  mkdirSync(bin);
  symlinkSync(process.execPath, join(bin, "node"));
  return bin;
}

async function openTable(base: string): Promise<Page> {
  const page = await browser.newPage();
  await page.setViewport({ width: 1600, height: 700 });
  await page.goto(base);
  await page.waitForSelector("body[data-ready='1']", { timeout: 20_000 });
  return page;
}

const runsOnPage = (page: Page) => page.$$eval("tbody tr[data-run]", (trs) => trs.map((tr) => tr.getAttribute("data-run")));

describe.skipIf(!haveChromium)("the web table served by demo and listen", () => {
  beforeAll(async () => {
    browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox"] });
    mkdirSync(SHOTS, { recursive: true });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
  });

  it("a port in use is a one-line error, for damnit web and listen --web", async () => {
    const tmp = tempDir();
    const db = join(tmp, "db");
    expect(damnit(["proposal", "1234", db]).status).toBe(0);
    const dir = listenerDir(tmp, 1234, db);
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, "127.0.0.1", () => resolve()));
    const port = (taken.address() as { port: number }).port;
    try {
      const env = { XDG_CONFIG_HOME: join(tmp, "config") };
      expect(expectOneLineError(damnit(["web", db, "--listen", `127.0.0.1:${port}`], { env }))).toMatch(new RegExp(`127\\.0\\.0\\.1:${port} is in use; choose another port`));
      expect(expectOneLineError(damnit(["listen", dir, "--web", `127.0.0.1:${port}`], { env: { ...env, PATH: pathWithoutSlurm(tmp) } }))).toMatch(/is in use; choose another port/);
    } finally {
      taken.close();
    }
  }, 120_000);

  it("damnit demo --web ends by serving its table and printing the URL", async () => {
    const tmp = tempDir();
    const dir = join(tmp, "demo");
    const demo = await startServing(["demo", dir, "--runs", "2", "--web", "127.0.0.1:0"], { XDG_CONFIG_HOME: join(tmp, "config") }, 120_000);
    try {
      expect(demo.output()).toContain("Run table of");
      expect(demo.output()).toContain(`serving ${dir}`);
      const info = (await (await fetch(`${demo.base}api/databases`)).json()) as { databases: { dir: string; problem: string | null }[] };
      expect(info.databases).toEqual([expect.objectContaining({ dir, problem: null })]);
      const page = await openTable(demo.base);
      expect(await runsOnPage(page)).toEqual(["1234/1", "1234/2"]);
      // Stopping does not wait for the open page's event stream.
      const t0 = Date.now();
      await demo.stop();
      expect(Date.now() - t0).toBeLessThan(10_000);
      await page.close();
    } finally {
      await demo.stop();
    }
    expect(demo.proc.exitCode, demo.output()).toBe(0);
  }, 180_000);

  it("damnit listen --web serves the registered databases; a run it processes appears on the open page", async () => {
    const tmp = tempDir();
    const db = demoDatabase(tmp, 1);
    const dir = listenerDir(tmp, 1234, db, { watch_interval_seconds: "0.3", watch_settle_seconds: "0.5" });
    const listener = await startServing(["listen", dir, "--web", "127.0.0.1:0"], {
      XDG_CONFIG_HOME: join(tmp, "config"),
      PATH: pathWithoutSlurm(tmp),
      DAMNIT_KAFKA_BROKERS: undefined,
    });
    try {
      const watching = Date.now() + 30_000;
      while (!/watching the raw\/ and proc\/ directories/.test(listener.output()) && Date.now() < watching) await new Promise((r) => setTimeout(r, 100));
      expect(listener.output()).toMatch(/watching the raw\/ and proc\/ directories/);
      const page = await openTable(listener.base);
      expect(await runsOnPage(page)).toEqual(["1234/1"]);
      // Every status the page shows from now on.
      await page.evaluate(`window.statuses = [];
        new MutationObserver(() => document.querySelectorAll("td[data-status]").forEach((td) => td.textContent && window.statuses.push(td.parentElement.getAttribute("data-run") + " " + td.textContent)))
          .observe(document.querySelector("#table"), { subtree: true, childList: true, characterData: true });`);
      const synth = damnit(["synth", join(db, "data"), "--proposal", "1234", "--runs", "1", "--first-run", "2"]);
      expect(synth.status, synth.stderr).toBe(0);
      await page.waitForFunction(`document.querySelector("tr[data-run='1234/2'] td[data-col='n_trains']")?.textContent === "40"`, { timeout: 90_000 });
      const statuses = (await page.evaluate("window.statuses")) as string[];
      expect(statuses.some((s) => /^1234\/2 running \(local, /.test(s)), statuses.join("\n")).toBe(true);
      // Both of the run's jobs (raw, proc) finish: the status clears.
      await page.waitForFunction(`document.querySelector("tr[data-run='1234/2'] td[data-status]")?.textContent === ""`, { timeout: 90_000 });
      await page.screenshot({ path: join(SHOTS, "listen-web.png") });
      await page.close();
    } finally {
      await listener.stop();
    }
    expect(listener.proc.exitCode).toBe(0);
  }, 240_000);
});
