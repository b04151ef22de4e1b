// The web table against real components, in Debian's headless Chromium: plots of a run's full data read from
// extracted_data/ (cross-checked with h5py), a missing or damaged HDF5 file saying so in its cell, processing states
// from the proposal's Kafka update topic (a real Kafka-protocol broker), and a large table that is virtual (only the
// rows in view are in the DOM) but scrolls to every run. Screenshots go to test-output/web/.
import { mkdirSync, mkdtempSync, rmSync, statSync, truncateSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import puppeteer, { type Browser, type Page } from "puppeteer-core";
import { RunDatabase } from "../src/db/run-database.js";
import { ndarray } from "../src/core/ndarray.js";
import { writeRunOutput } from "../src/extract/h5-output.js";
import { runOutputFile } from "../src/extract/store.js";
import { updateTopic } from "../src/messaging/messages.js";
import { CHROMIUM, chromiumAvailable } from "./helpers/chromium.js";
import { damnit } from "./helpers/cli.js";
import { h5pyAvailable, runH5py } from "./helpers/h5py.js";
import { produceJson, startKafka, type TestKafka } from "./helpers/kafka-broker.js";
import { REPO_ROOT } from "./helpers/paths.js";
import { startServing, type ServingProcess } from "./helpers/web-server.js";

const SHOTS = join(REPO_ROOT, "test-output", "web");
const ready = chromiumAvailable() && h5pyAvailable();
const BIG_RUNS = 500;
/** more columns than the page renders at once (it is virtual across beyond 40) */
const WIDE = Array.from({ length: 60 }, (_, j) => `v${String(j).padStart(2, "0")}`);

let root: string;
let dir: string;
let bigDir: string;
let kafka: TestKafka;
let topic: string;
let server: ServingProcess;
let browser: Browser;

async function openTable(db = 0): Promise<Page> {
  const page = await browser.newPage();
  await page.setViewport({ width: 1600, height: 800 });
  await page.goto(`${server.base}?db=${db}`);
  await page.waitForSelector("body[data-ready='1']", { timeout: 20_000 });
  return page;
}

const api = async (path: string) => {
  const res = await fetch(`${server.base}${path}`);
  return { status: res.status, body: (await res.json()) as any };
};

describe.skipIf(!ready)("damnit web: plots, processing states, large tables", () => {
  beforeAll(async () => {
    // Not tempDir(): that one is removed after each test, and these files serve every test here.
    root = mkdtempSync(join(tmpdir(), "damnit-web-live-"));
    dir = join(root, "demo");
    const demo = damnit(["demo", dir, "--runs", "3"]);
    expect(demo.status, demo.stderr).toBe(0);
    // Run 1 gets a 3-D variable (in its HDF5 file, its cell a number); run 2's file is damaged, run 3's gone.
    const cube = ndarray("float64", [3, 4, 5], Array.from({ length: 60 }, (_, i) => i * 0.5));
    await writeRunOutput(runOutputFile(dir, 1234, 1), [{ name: "cube", data: cube, summary: ndarray("float64", [], [14.75]), attrs: {} }]);
    const db = await RunDatabase.open(dir);
    db.setVariables(1234, 1, { cube: { value: 14.75 } }, { provenance: "context" });
    topic = updateTopic(db.dbId);
    db.close();
    const damaged = runOutputFile(dir, 1234, 2);
    truncateSync(damaged, Math.floor(statSync(damaged).size / 3));
    rmSync(runOutputFile(dir, 1234, 3));

    bigDir = join(root, "big");
    const big = await RunDatabase.open(bigDir, { create: true, initialSettings: { proposal: 99 } });
    big.setVariablesForRuns(
      Array.from({ length: BIG_RUNS }, (_, i) => ({
        proposal: 99,
        run: i + 1,
        values: { a: { value: i + 1 }, b: { value: `run ${i + 1}` }, ...Object.fromEntries(WIDE.map((n, j) => [n, { value: i * 100 + j }])) },
      })),
      { provenance: "context" },
    );
    big.close();

    kafka = await startKafka([topic]);
    server = await startServing(["web", dir, bigDir, "--listen", "127.0.0.1:0", "--read-only"], {
      XDG_CONFIG_HOME: join(root, "config"),
      DAMNIT_KAFKA_BROKERS: kafka.brokers.join(","),
    });
    browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox"] });
    mkdirSync(SHOTS, { recursive: true });
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    await server?.stop();
    await kafka?.stop();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  it("plots a run's full data from extracted_data: 1-D against its coordinate, 2-D as an image with its colour limits", async () => {
    const file = runOutputFile(dir, 1234, 1);
    const expected = runH5py(
      `f = h5py.File(sys.argv[1], "r")
total = f["camera_total"]
tvar = [k for k in total.keys() if k != "trainId"][0]
img = f["camera_image/data"][()]
print(json.dumps({"total": total[tvar][()].tolist(), "trains": total["trainId"][()].tolist(), "lo": float(img.min()), "hi": float(img.max()), "shape": list(img.shape)}))`,
      [file],
    ) as { total: number[]; trains: number[]; lo: number; hi: number; shape: number[] };

    const oneD = await api("api/db/0/data/1234/1/camera_total");
    expect(oneD.status).toBe(200);
    expect(oneD.body.dims).toEqual(["trainId"]);
    expect(oneD.body.data).toEqual(expected.total);
    expect(oneD.body.coords.trainId).toEqual(expected.trains);

    const page = await openTable();
    await page.click("tr[data-run='1234/1'] td[data-col='camera_total']");
    await page.waitForSelector("#plot .uplot", { timeout: 10_000 });
    expect(await page.$eval("#plot .source", (d) => d.textContent)).toBe(`extracted_data/p1234_r1.h5: float64 (${expected.total.length})`);
    expect(await page.$$eval("#plot .u-label", (ls) => ls.map((l) => l.textContent))).toContain("trainId");
    await page.screenshot({ path: join(SHOTS, "plot-1d-coordinate.png") });

    await page.click("#plot button");
    await page.click("tr[data-run='1234/1'] td[data-col='camera_image']");
    await page.waitForSelector("#plot canvas.image", { timeout: 10_000 });
    expect(await page.$eval("#plot .limits", (d) => d.textContent)).toBe(`colour scale ${expected.lo} … ${expected.hi}`);
    expect(await page.$eval("#plot canvas.image", (c) => [Number(c.getAttribute("height")), Number(c.getAttribute("width"))])).toEqual(expected.shape);
    expect(await page.$$("#plot canvas.colourbar")).toHaveLength(1);
    await page.screenshot({ path: join(SHOTS, "plot-2d-image.png") });
    await page.close();
  }, 60_000);

  it("plots a slice of an N-D array, and another slice when asked", async () => {
    const page = await openTable();
    await page.click("tr[data-run='1234/1'] td[data-col='cube']");
    await page.waitForSelector("#plot canvas.image, #plot .plot-error", { timeout: 10_000 });
    expect(await page.$eval("#plot", (d) => d.textContent)).toMatch(/^cube, run 1extracted_data\/p1234_r1.h5: float64 \(3, 4, 5\)slice dim_0 /);
    // Slice 0 of 3×4×5 values i/2: 0 … 9.5; slice 2: 20 … 29.5.
    expect(await page.$eval("#plot .limits", (d) => d.textContent)).toBe("colour scale 0 … 9.5");
    const inputs = await page.$$("#plot .slice input");
    expect(inputs).toHaveLength(1);
    await inputs[0]!.click({ count: 3 });
    await page.keyboard.type("2");
    await page.keyboard.press("Enter");
    await page.waitForFunction(`document.querySelector("#plot .limits")?.textContent === "colour scale 20 … 29.5"`, { timeout: 10_000 });
    await page.screenshot({ path: join(SHOTS, "plot-nd-slice.png") });
    await page.close();
  }, 60_000);

  it("says so in the cell when the run's HDF5 file is damaged or missing", async () => {
    const damaged = await api("api/db/0/data/1234/2/camera_total");
    expect(damaged.status).toBe(400);
    expect(damaged.body.code).toBe("BAD_RUN_FILE");
    const missing = await api("api/db/0/data/1234/3/camera_total");
    expect(missing.body.code).toBe("BAD_RUN_FILE");
    expect(missing.body.message).toBe("extracted_data/p1234_r3.h5 does not exist: no full data for run 3");

    const page = await openTable();
    for (const [run, text] of [
      [2, /p1234_r2\.h5: (truncated or incompletely written|damaged) HDF5 file/],
      [3, /p1234_r3\.h5 does not exist/],
    ] as const) {
      const cell = `tr[data-run='1234/${run}'] td[data-col='camera_total']`;
      await page.click(cell);
      await page.waitForSelector(`${cell}.nodata`, { timeout: 10_000 });
      expect(await page.$eval(cell, (td) => td.getAttribute("title"))).toMatch(text);
      expect(await page.$eval("#plot .plot-error", (d) => d.textContent)).toMatch(text);
      await page.click("#plot button");
    }
    // The other cells of those runs still show their values.
    expect(await page.$eval("tr[data-run='1234/2'] td[data-col='n_trains']", (td) => td.textContent)).toBe("40");
    await page.screenshot({ path: join(SHOTS, "missing-data.png") });
    await page.close();
  }, 60_000);

  it("shows pending and running processing, with the Slurm job, from the update topic, and clears it when finished", async () => {
    const page = await openTable();
    const status = (run: number) => page.$eval(`tr[data-run='1234/${run}'] td[data-status]`, (td) => td.textContent);
    expect(await status(2)).toBe("");
    const pending = { processing_id: "p-2", proposal: 1234, run: 2, data: "all", status: "PENDING", hostname: "", username: "", slurm_cluster: "maxwell", slurm_job_id: "4711" };
    // The server's consumer joins its group shortly after it starts: send again until the page shows it.
    const deadline = Date.now() + 30_000;
    while ((await status(2)) === "" && Date.now() < deadline) {
      await produceJson(kafka.brokers, topic, [{ msg_kind: "processing_state_set", data: pending }]);
      await new Promise((r) => setTimeout(r, 500));
    }
    expect(await status(2), server.output()).toBe("pending (Slurm job 4711 on maxwell)");
    await produceJson(kafka.brokers, topic, [{ msg_kind: "processing_state_set", data: { ...pending, status: "RUNNING", hostname: "node7", username: "beamtime" } }]);
    await page.waitForFunction(`document.querySelector("tr[data-run='1234/2'] td[data-status]")?.textContent === "running (Slurm job 4711 on maxwell, node7)"`, { timeout: 10_000 });
    await page.screenshot({ path: join(SHOTS, "processing-running.png") });
    const api0 = await api("api/db/0/table");
    expect(api0.body.processing).toEqual([{ ...pending, status: "RUNNING", hostname: "node7", username: "beamtime" }]);
    await produceJson(kafka.brokers, topic, [{ msg_kind: "processing_finished", data: { processing_id: "p-2" } }]);
    await page.waitForFunction(`document.querySelector("tr[data-run='1234/2'] td[data-status]")?.textContent === ""`, { timeout: 10_000 });
    expect(await status(1)).toBe("");
    await page.close();
  }, 90_000);

  it("keeps only the rows in view in the DOM of a large table, and scrolls and sorts through every run", async () => {
    const page = await openTable(1);
    expect(await page.evaluate(`document.body.dataset.rows`)).toBe(String(BIG_RUNS));
    expect(await page.$eval("#count", (c) => c.textContent)).toBe(`${BIG_RUNS} of ${BIG_RUNS} runs`);
    const inDom = await page.$$eval("tbody tr[data-run]", (trs) => trs.map((tr) => tr.getAttribute("data-run")));
    expect(inDom.length).toBeGreaterThan(10);
    expect(inDom.length).toBeLessThan(100);
    expect(inDom[0]).toBe("99/1");
    // The scroll height is the whole table's: scrolling to the end shows the last run.
    await page.$eval(".scroll", (s) => (s.scrollTop = s.scrollHeight));
    await page.waitForSelector(`tr[data-run='99/${BIG_RUNS}']`, { timeout: 5_000 });
    expect(await page.$eval(`tr[data-run='99/${BIG_RUNS}'] td[data-col='b']`, (td) => td.textContent)).toBe(`run ${BIG_RUNS}`);
    const box = (await page.evaluate(`(() => {
      const r = document.querySelector("tr[data-run='99/${BIG_RUNS}']").getBoundingClientRect();
      const s = document.querySelector(".scroll").getBoundingClientRect();
      return { top: r.top, bottom: r.bottom, viewTop: s.top, viewBottom: s.bottom };
    })()`)) as { top: number; bottom: number; viewTop: number; viewBottom: number };
    expect(box.bottom).toBeLessThanOrEqual(box.viewBottom + 1);
    expect(box.top).toBeGreaterThanOrEqual(box.viewTop);
    await page.screenshot({ path: join(SHOTS, "large-table-end.png") });
    // Across too: the far columns are not in the DOM until scrolled to, then the near ones go.
    expect(await page.$$("td[data-col='v59']")).toHaveLength(0);
    expect(await page.$$(`tr[data-run='99/${BIG_RUNS}'] td[data-col='v00']`)).toHaveLength(1);
    await page.$eval(".scroll", (s) => (s.scrollLeft = s.scrollWidth));
    await page.waitForSelector(`tr[data-run='99/${BIG_RUNS}'] td[data-col='v59']`, { timeout: 5_000 });
    expect(await page.$eval(`tr[data-run='99/${BIG_RUNS}'] td[data-col='v59']`, (td) => td.textContent)).toBe(String((BIG_RUNS - 1) * 100 + 59));
    expect(await page.$$("th[data-col='v59']")).toHaveLength(1);
    expect(await page.$$("td[data-col='v00']")).toHaveLength(0);
    expect(await page.$$(`tr[data-run='99/${BIG_RUNS}'] td[data-col='a']`)).toHaveLength(0);
    await page.screenshot({ path: join(SHOTS, "large-table-far-right.png") });
    await page.$eval(".scroll", (s) => (s.scrollLeft = 0));
    await page.waitForSelector("th[data-col='a']", { timeout: 5_000 });
    // Sorting by a column re-orders all runs, not just those in the DOM.
    await page.$eval(".scroll", (s) => (s.scrollTop = 0));
    await page.click("th[data-col='a']");
    await page.click("th[data-col='a']");
    await page.waitForFunction(`document.querySelector("tbody tr[data-run]")?.getAttribute("data-run") === "99/${BIG_RUNS}"`, { timeout: 5_000 });
    await page.close();
  }, 60_000);
});

