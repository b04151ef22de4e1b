// `damnit web` end to end: a real server process on a database made by `damnit demo`, driven by Debian's headless
// Chromium. Screenshots of the table and a plot go to test-output/web/ for people to look at.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import puppeteer, { type Browser, type Page } from "puppeteer-core";
import Database from "better-sqlite3";
import { RunDatabase } from "../src/db/run-database.js";
import { ndarray } from "../src/core/ndarray.js";
import { CHROMIUM, chromiumAvailable } from "./helpers/chromium.js";
import { damnit } from "./helpers/cli.js";
import { DAMNIT_BIN, REPO_ROOT } from "./helpers/paths.js";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";

const SHOTS = join(REPO_ROOT, "test-output", "web");
const haveChromium = chromiumAvailable();
if (!haveChromium) console.warn("skipping web tests: /usr/bin/chromium is missing");

let root: string;
let dir: string;
let server: ChildProcess;
let base: string;
let token: string;
let browser: Browser;

async function startServer(args: string[]): Promise<{ proc: ChildProcess; base: string }> {
  const proc = spawn(process.execPath, [DAMNIT_BIN, "web", dir, "--listen", "127.0.0.1:0", ...args], {
    env: { ...process.env, XDG_CONFIG_HOME: join(root, "config"), DAMNIT_LOG_FORMAT: "json" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`damnit web did not start: ${out}`)), 20_000);
    proc.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      const m = /Run table: (http:\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    proc.stderr!.on("data", (d: Buffer) => (out += d.toString()));
    proc.on("exit", (code) => reject(new Error(`damnit web exited ${code}: ${out}`)));
  });
  return { proc, base: url };
}

async function openTable(withToken: boolean): Promise<Page> {
  const page = await browser.newPage();
  await page.setViewport({ width: 1600, height: 700 });
  await page.goto(withToken ? `${base}#token=${token}` : base);
  await page.waitForSelector("body[data-ready='1']", { timeout: 15_000 });
  return page;
}

const cellText = (page: Page, run: string, col: string) =>
  page.$eval(`tr[data-run='${run}'] td[data-col='${col}']`, (td) => td.textContent ?? "");

describe.skipIf(!haveChromium)("damnit web", () => {
  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), "damnit-web-"));
    dir = join(root, "demo");
    const demo = damnit(["demo", dir, "--runs", "2"]);
    expect(demo.status, demo.stderr).toBe(0);
    // A title and comment with markup must show as text.
    const db = await RunDatabase.open(dir);
    db.setRunComment(1234, 2, "<b>bold?</b><img src=x onerror=alert(1)>");
    // A 2-D array value (not a thumbnail): its cell opens an image plot.
    db.setVariables(1234, 1, { image2d: { value: ndarray("float64", [4, 5], Array.from({ length: 20 }, (_, i) => i)) } }, { provenance: "context" });
    db.close();
    ({ proc: server, base } = await startServer([]));
    token = readFileSync(join(root, "config", "damnit", "web-token"), "utf8").trim();
    browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox"] });
    mkdirSync(SHOTS, { recursive: true });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    server?.kill("SIGTERM");
    if (root) rmSync(root, { recursive: true, force: true });
  });

  it("keeps the token owner-only", () => {
    expect(statSync(join(root, "config", "damnit", "web-token")).mode & 0o777).toBe(0o600);
  });

  it("shows every run and variable with the stored values, thumbnails, sparklines and errors", async () => {
    const page = await openTable(false);
    const db = new Database(join(dir, "runs.sqlite"), { readonly: true });
    const rows = db.prepare("SELECT run, name, value, attributes FROM run_variables WHERE proposal = 1234 ORDER BY run, name").all() as any[];
    db.close();
    const runs = await page.$$eval("tbody tr[data-run]", (trs) => trs.map((tr) => tr.getAttribute("data-run")));
    expect(runs).toEqual(["1234/1", "1234/2"]);
    const n = rows.find((r) => r.name === "n_trains" && r.run === 1);
    expect(await cellText(page, "1234/1", "n_trains")).toBe(String(n.value));
    expect(await cellText(page, "1234/2", "comment")).toBe("<b>bold?</b><img src=x onerror=alert(1)>");
    expect(await page.$$("tr[data-run='1234/2'] td[data-col='comment'] img")).toHaveLength(0);
    const thumbs = await page.$$eval("img.thumb", (imgs) => imgs.map((i) => (i as any).naturalWidth));
    expect(thumbs.length).toBeGreaterThan(0);
    for (const w of thumbs) expect(w).toBeGreaterThan(0);
    expect((await page.$$("svg.spark path")).length).toBeGreaterThan(0);
    const errors = rows.filter((r) => r.value === null && r.attributes && JSON.parse(r.attributes).error !== undefined);
    if (errors.length) {
      const e = errors[0];
      const title = await page.$eval(`tr[data-run='1234/${e.run}'] td[data-col='${e.name}']`, (td) => td.getAttribute("title"));
      expect(title).toContain(JSON.parse(e.attributes).error);
    }
    await page.screenshot({ path: join(SHOTS, "table.png"), fullPage: true });
    await page.close();
  }, 60_000);

  it("shows a value written by a job while the page is open, without a reload", async () => {
    const page = await openTable(false);
    const db = await RunDatabase.open(dir);
    await db.withWriteLock(() => db.setVariables(1234, 2, { n_trains: { value: 4242 } }, { provenance: "context" }));
    db.close();
    await page.waitForFunction(`document.querySelector("tr[data-run='1234/2'] td[data-col='n_trains']")?.textContent === "4242"`, { timeout: 5_000 });
    await page.close();
  }, 30_000);

  it("stores a comment edited in place in runs.sqlite, as damnit show sees it", async () => {
    const page = await openTable(true);
    await page.click("tr[data-run='1234/1'] td[data-col='comment']", { count: 2 });
    await page.waitForSelector("input.edit");
    await page.keyboard.type("sample changed");
    await page.keyboard.press("Enter");
    await page.waitForFunction(`document.querySelector("#status")?.textContent?.startsWith("saved")`, { timeout: 10_000 });
    const db = new Database(join(dir, "runs.sqlite"), { readonly: true });
    const row = db.prepare("SELECT value, provenance FROM run_variables WHERE proposal = 1234 AND run = 1 AND name = 'comment' ORDER BY version DESC").all() as any[];
    db.close();
    expect(row).toHaveLength(1);
    expect(row[0]).toEqual({ value: "sample changed", provenance: "manual-input" });
    const show = damnit(["show", dir, "--json"]);
    expect(JSON.parse(show.stdout).find((r: any) => r.run === 1).values.comment).toBe("sample changed");
    await page.close();
  }, 30_000);

  it("opens a plot of a 2-D value and a 1-D trendline, and of one variable against another", async () => {
    const page = await openTable(false);
    await page.click("tr[data-run='1234/1'] td[data-col='image2d'].plottable");
    await page.waitForSelector("#plot canvas.image", { timeout: 10_000 });
    expect(await page.$eval("#plot .limits", (d) => d.textContent)).toBe("colour scale 0 … 19");
    await page.screenshot({ path: join(SHOTS, "plot-2d.png") });
    await page.click("tr[data-run='1234/1'] td.plottable:has(svg.spark)");
    await page.waitForSelector("#plot .uplot", { timeout: 10_000 });
    await page.screenshot({ path: join(SHOTS, "plot-1d.png") });
    await page.click("#plotvs-btn");
    await page.waitForSelector("#plot #plot-x", { timeout: 10_000 });
    await page.waitForSelector("#plot .uplot", { timeout: 10_000 });
    await page.screenshot({ path: join(SHOTS, "plot-runs.png") });
    await page.close();
  }, 30_000);

  it("refuses a write without the token, and every write when read-only", async () => {
    const body = JSON.stringify({ proposal: 1234, run: 1, text: "sneaky" });
    const anon = await fetch(`${base}api/db/0/comment`, { method: "POST", headers: { "content-type": "application/json" }, body });
    expect(anon.status).toBe(401);
    expect(((await anon.json()) as any).code).toBe("TOKEN_REQUIRED");
    const ro = await startServer(["--read-only"]);
    try {
      const res = await fetch(`${ro.base}api/db/0/comment`, { method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${token}` }, body });
      expect(res.status).toBe(403);
      expect(((await res.json()) as any).code).toBe("READ_ONLY");
    } finally {
      ro.proc.kill("SIGTERM");
    }
    const db = new Database(join(dir, "runs.sqlite"), { readonly: true });
    const sneaky = db.prepare("SELECT count(*) AS n FROM run_variables WHERE value = 'sneaky'").get() as any;
    db.close();
    expect(sneaky.n).toBe(0);
  }, 30_000);
});
