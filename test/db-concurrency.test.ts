/** Many cluster jobs write one database at once: nothing is lost and nobody sees a busy error. */
import { spawn } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { RunDatabase } from "../src/db/index.js";
import { countRows } from "./helpers/db.js";
import { REPO_ROOT, tempDir } from "./helpers/tmp.js";

function runWorker(args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(REPO_ROOT, "test/helpers/write-worker.mjs"), ...args], { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (d) => (stderr += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stderr });
    });
  });
}

describe("concurrent writers", () => {
  it("8 processes × 1,000 rows each: every row stored, no errors", async () => {
    const dir = tempDir();
    (await RunDatabase.open(dir, { create: true, initialSettings: { proposal: 1234 } })).close();
    const WORKERS = 8;
    const RUNS = 100;
    const PER_RUN = 10;
    const results = await Promise.all(
      Array.from({ length: WORKERS }, (_, w) => runWorker([dir, String(w), String(RUNS), String(PER_RUN)])),
    );
    for (const r of results) expect(r).toEqual({ code: 0, stderr: "" });

    const db = await RunDatabase.open(dir);
    expect(countRows(db.sqlite, "run_variables")).toBe(WORKERS * RUNS * PER_RUN);
    const wrong = countRows(
      db.sqlite,
      "run_variables",
      "value != CAST(substr(name, 2, instr(name, '_') - 2) AS INTEGER) * 1000000 + run * 100 + CAST(substr(name, instr(name, '_v') + 2) AS INTEGER)",
    );
    expect(wrong).toBe(0);
    // Every worker's columns made it into the views despite the concurrent schema changes.
    const columns = db.sqlite.prepare("SELECT * FROM runs LIMIT 1").columns().map((c) => c.name);
    expect(columns.filter((c) => /^w\d_v\d$/.test(c))).toHaveLength(WORKERS * PER_RUN);
    expect(countRows(db.sqlite, "runs")).toBe(RUNS);
    db.close();
  });
});
