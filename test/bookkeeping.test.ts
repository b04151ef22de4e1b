/**
 * Run bookkeeping (issue 17 items 5–6, spec satellites §C.5/§C.6): the run's JSON file in folders of 1000 runs with
 * every processing attempt (a real Slurm reprocess, local processing, concurrent writers), the counters and their
 * mirrors, CLOSED refusing writes, and the data consistency variable checked against the synthetic runs' defining
 * functions.
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { runFilePath } from "../src/bookkeeping/paths.js";
import type { RunRecord } from "../src/bookkeeping/run-record.js";
import { consistencyReasons } from "../src/context/consistency.js";
import { openRun } from "../src/exdf/open-run.js";
import { CAMERA, EMPTY_CAMERA, XGM_CONTROL, cameraHasTrain, firstTrainId } from "../src/synth/layout.js";
import { damnit, expectOneLineError } from "./helpers/cli.js";
import { runVariableRows } from "./helpers/db.js";
import { demoDatabase } from "./helpers/listener.js";
import { itSlurm, waitForJob } from "./helpers/slurm.js";
import { REPO_ROOT, tempDir } from "./helpers/tmp.js";

const TRAINS = 40; // the demo's "small" runs

function record(dbDir: string, run: number): RunRecord {
  return JSON.parse(readFileSync(runFilePath(dbDir, run), "utf8")) as RunRecord;
}

function metameta(dbDir: string, key: string): unknown {
  const db = new Database(join(dbDir, "runs.sqlite"), { readonly: true });
  try {
    return (db.prepare("SELECT value FROM metameta WHERE key = ?").get(key) as { value: unknown } | undefined)?.value;
  } finally {
    db.close();
  }
}

describe("run bookkeeping files", () => {
  it("are split into folders of 1000 runs, with 6-digit names", () => {
    expect(runFilePath("/d", 3456)).toBe("/d/run_info/003000/run_003456.json");
    expect(runFilePath("/d", 999)).toBe("/d/run_info/000000/run_000999.json");
    expect(runFilePath("/d", 1000)).toBe("/d/run_info/001000/run_001000.json");
  });

  itSlurm(
    "a reprocess through Slurm adds an attempt (origin, Slurm job, outcome, times) after the demo's own; counters and LAST_RUN/LAST_ARUN follow",
    async () => {
      const db = demoDatabase(tempDir(), 1);
      // The demo processed run 1 here: one attempt already, finished.
      const before = record(db, 1);
      expect(before.attempts).toHaveLength(1);
      expect(before.attempts[0]).toMatchObject({ attempt: 1, unique_attempt: 1, outcome: "finished", origin: "cli", slurm_job: null });

      const result = damnit(["reprocess", "1", "--slurm", "--dir", db]);
      expect(result.status, result.stderr).toBe(0);
      const arrayId = /Slurm array job (\d+)/.exec(result.stdout)![1];
      expect((await waitForJob(`${arrayId}_0`, 120_000)).state).toBe("COMPLETED");

      const after = record(db, 1);
      expect(after).toMatchObject({ proposal: 1234, run: 1, run_data: "all" });
      expect(after.damnit_version).toMatch(/^\d+\.\d+\.\d+/);
      expect(after.context_hash).toMatch(/^[0-9a-f]{16}$/);
      expect(after.request_time).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}$/);
      expect(after.attempts).toHaveLength(2);
      const a = after.attempts[1]!;
      expect(a).toMatchObject({ attempt: 2, unique_attempt: 2, origin: "cli", outcome: "finished", run_data: "all", error: null });
      // The submitter's note and the job's are one attempt: the job's id is the array task's.
      expect(a.slurm_job).toMatch(new RegExp(`^${arrayId}(_0)?$`));
      expect(a.started_at).not.toBeNull();
      expect(a.finished_at!).toBeGreaterThanOrEqual(a.started_at!);
      expect(a.started_at!).toBeGreaterThanOrEqual(a.requested_at);
      expect(new Set(after.attempts.map((x) => x.processing_id)).size).toBe(2);
      // The file as sf_daq_broker writes it: sorted keys, 4-space indent.
      const text = readFileSync(runFilePath(db, 1), "utf8");
      expect(text.split("\n")[1]).toBe('    "attempts": [');
      expect(Object.keys(JSON.parse(text) as object)).toEqual([...Object.keys(JSON.parse(text) as object)].sort());

      expect(Number(metameta(db, "run_info_last_run"))).toBe(1);
      expect(Number(metameta(db, "run_info_last_attempt"))).toBe(2);
      expect(readFileSync(join(db, "run_info", "LAST_RUN"), "utf8")).toBe("1\n");
      expect(readFileSync(join(db, "run_info", "LAST_ARUN"), "utf8")).toBe("2\n");
    },
    180_000,
  );

  it("concurrent writers of one run lose no attempt: 4 processes × 6 attempts give 24, numbered 1–24 once each", async () => {
    const db = join(tempDir(), "db");
    mkdirSync(db);
    expect(damnit(["proposal", "1234", db]).status).toBe(0);
    const worker = new URL("./helpers/attempt-worker.mjs", import.meta.url).pathname;
    await Promise.all(
      [0, 1, 2, 3].map(
        (w) =>
          new Promise<void>((resolve, reject) => {
            const child = spawn(process.execPath, [worker, db, String(w), "6"], { stdio: ["ignore", "ignore", "pipe"] });
            let err = "";
            child.stderr.on("data", (d: Buffer) => (err += d.toString()));
            const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
            child.on("exit", (code) => {
              clearTimeout(timer);
              if (code === 0) resolve();
              else reject(new Error(`worker ${w} exited ${code}: ${err}`));
            });
          }),
      ),
    );
    const r = record(db, 7);
    expect(r.attempts).toHaveLength(24);
    expect(r.attempts.map((a) => a.attempt).sort((x, y) => x - y)).toEqual(Array.from({ length: 24 }, (_, i) => i + 1));
    expect(r.attempts.map((a) => a.unique_attempt).sort((x, y) => x - y)).toEqual(Array.from({ length: 24 }, (_, i) => i + 1));
    expect(r.attempts.every((a) => a.outcome === "finished")).toBe(true);
    expect(new Set(r.attempts.map((a) => a.processing_id)).size).toBe(24);
    expect(readFileSync(join(db, "run_info", "LAST_ARUN"), "utf8")).toBe("24\n");
    expect(readFileSync(join(db, "run_info", "LAST_RUN"), "utf8")).toBe("7\n");
  }, 90_000);

  it("a corrupt counter is reported by name, never reset", async () => {
    const db = join(tempDir(), "db");
    mkdirSync(db);
    expect(damnit(["proposal", "1234", db]).status).toBe(0);
    expect(damnit(["db-config", "--any", "run_info_last_attempt", "lots", "-C", db]).status).toBe(0);
    // The built modules, as jobs run them (the damnit version is read from the installed package.json).
    const { RunDatabase } = (await import(join(REPO_ROOT, "dist/src/db/run-database.js"))) as typeof import("../src/db/run-database.js");
    const { noteAttempt } = (await import(join(REPO_ROOT, "dist/src/bookkeeping/attempts.js"))) as typeof import("../src/bookkeeping/attempts.js");
    const opened = await RunDatabase.open(db);
    try {
      await expect(noteAttempt(opened, { proposal: 1234, run: 3, processingId: "x", outcome: "submitting" })).rejects.toMatchObject({
        code: "BAD_COUNTER",
        message: expect.stringContaining("run_info_last_attempt"),
      });
    } finally {
      opened.close();
    }
    expect(metameta(db, "run_info_last_attempt")).toBe("lots");
    expect(existsSync(runFilePath(db, 3))).toBe(false);
  });

describe("one processing id per attempt", () => {
  it("a local reprocess of several runs: each run's bookkeeping attempt, audit line and provenance record carry the same id", () => {
    const db = demoDatabase(tempDir(), 2);
    const result = damnit(["reprocess", "1-2", "--local", "--dir", db]);
    expect(result.status, result.stderr).toBe(0);
    const audited = readFileSync(join(db, "audit", "requests.log"), "utf8")
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line.slice(18)) as Record<string, unknown>)
      .filter((r) => "origin" in r);
    const provenance = new Database(join(db, "provenance.sqlite"), { readonly: true });
    try {
      for (const run of [1, 2]) {
        const attempts = record(db, run).attempts;
        expect(attempts).toHaveLength(2);
        const id = attempts[1]!.processing_id;
        const requests = audited.filter((r) => r.run === run && r.processing_id === id);
        expect(requests).toHaveLength(1);
        const rows = provenance.prepare("SELECT count(*) AS n FROM attempts WHERE run = ? AND processing_id = ?").get(run, id) as { n: number };
        expect(rows.n).toBe(1);
      }
    } finally {
      provenance.close();
    }
  });
});
});

describe("CLOSED", () => {
  it("run_info/CLOSED or the closed setting refuses reprocess and extract with a one-line error; nothing is written", () => {
    const db = demoDatabase(tempDir(), 1);
    const file = runFilePath(db, 1);
    const before = readFileSync(file, "utf8");
    const rows = runVariableRows(db, { run: 1 }).length;
    writeFileSync(join(db, "run_info", "CLOSED"), "");
    for (const args of [["reprocess", "1", "--local", "--dir", db], ["reprocess", "1", "--slurm", "--dir", db], ["extract", "1234", "1", "raw", "--dir", db]]) {
      const r = damnit(args);
      expect(r.status, args.join(" ")).toBe(1);
      expect(expectOneLineError(r)).toMatch(new RegExp(`${db} is closed for writing \\(${join(db, "run_info", "CLOSED")}\\)`));
    }
    rmSync(join(db, "run_info", "CLOSED"));
    expect(damnit(["db-config", "closed", "1", "-C", db]).status).toBe(0);
    const r = damnit(["reprocess", "1", "--local", "--dir", db]);
    expect(r.status).toBe(1);
    expect(expectOneLineError(r)).toMatch(/is closed for writing \(setting closed=1/);
    expect(readFileSync(file, "utf8")).toBe(before);
    expect(runVariableRows(db, { run: 1 })).toHaveLength(rows);
    // Open again: processing goes on, as a new attempt.
    expect(damnit(["db-config", "closed", "0", "-C", db]).status).toBe(0);
    const again = damnit(["reprocess", "1", "--local", "--dir", db]);
    expect(again.status, again.stderr).toBe(0);
    expect(record(db, 1).attempts).toHaveLength(2);
  }, 120_000);
});

describe("CLOSED and the web table", () => {
  it("refuses comment and value edits with DB_CLOSED; nothing is written", async () => {
    const db = demoDatabase(tempDir(), 1);
    const { createWebServer } = await import("../src/web/server.js");
    const web = await createWebServer({ dirs: [db], token: "t".repeat(43), readOnly: false, pollMs: 10_000 });
    try {
      const before = runVariableRows(db, { run: 1 });
      writeFileSync(join(db, "run_info", "CLOSED"), "");
      const headers = { authorization: `Bearer ${"t".repeat(43)}`, "content-type": "application/json" };
      for (const [url, body] of [
        ["/api/db/0/comment", { proposal: 1234, run: 1, text: "closed?" }],
        ["/api/db/0/value", { proposal: 1234, run: 1, name: "n_trains", input: "7" }],
      ] as const) {
        const r = await web.app.inject({ method: "POST", url, headers, payload: JSON.stringify(body) });
        expect(r.statusCode, url).toBe(400);
        expect(r.json(), url).toMatchObject({ status: "error", code: "DB_CLOSED", message: expect.stringMatching(/is closed for writing/) });
      }
      expect(runVariableRows(db, { run: 1 })).toEqual(before);
    } finally {
      await web.app.close();
    }
  }, 60_000);
});

describe("data consistency", () => {
  it("per source: expected trains in the run's range (rate divisor applied) vs trains with data, from the synthetic run's definition", async () => {
    const root = tempDir();
    expect(damnit(["synth", root, "--proposal", "1234", "--runs", "1"]).status).toBe(0);
    const run = await openRun(1234, 1, { root, data: "raw" });
    try {
      const first = firstTrainId(1);
      expect(consistencyReasons(run, { sources: [XGM_CONTROL] })).toEqual([]);
      const cameraTrains = Array.from({ length: TRAINS }, (_, i) => i).filter(cameraHasTrain);
      const missing = Array.from({ length: TRAINS }, (_, i) => i).filter((i) => !cameraHasTrain(i)).map((i) => first + i);
      expect(consistencyReasons(run, { sources: [CAMERA] })).toEqual([
        `${CAMERA} number of trains is different from expected : ${cameraTrains.length} vs ${TRAINS}`,
        `${CAMERA} missing trains : ${missing.slice(0, 10).join(", ")}, … (${missing.length})`,
      ]);
      // With divisor m only ids divisible by m count: expected and present both filtered.
      const m = 3;
      const expected = Array.from({ length: TRAINS }, (_, i) => first + i).filter((t) => t % m === 0);
      const present = cameraTrains.map((i) => first + i).filter((t) => t % m === 0);
      const reasons = consistencyReasons(run, { sources: [CAMERA], rateDivisor: m });
      if (present.length === expected.length) expect(reasons).toEqual([]);
      else expect(reasons[0]).toBe(`${CAMERA} number of trains is different from expected : ${present.length} vs ${expected.length}`);
      expect(consistencyReasons(run, { sources: [EMPTY_CAMERA] })).toEqual([
        `${EMPTY_CAMERA} number of trains is different from expected : 0 vs ${TRAINS}`,
        `${EMPTY_CAMERA} missing trains : ${Array.from({ length: 10 }, (_, i) => first + i).join(", ")}, … (${TRAINS})`,
      ]);
      expect(consistencyReasons(run, { sources: ["NO/SUCH/SOURCE"] })).toEqual(["NO/SUCH/SOURCE is not in the run"]);
      expect(() => consistencyReasons(run, { rateDivisor: 0 })).toThrow(/rateDivisor must be a whole number ≥ 1/);
    } finally {
      run.close();
    }
  });

  it("as a context variable: False in the table, the report in the HDF5 data, summary and reasons in the run's bookkeeping file", () => {
    const db = demoDatabase(tempDir(), 1);
    writeFileSync(
      join(db, "context.ts"),
      [
        'import { dataConsistency, Variable } from "damnit/context";',
        'export const n_trains = Variable({ title: "Trains" }, (run) => run.trainIds.length);',
        `export const data_consistency = dataConsistency({ sources: [${JSON.stringify(XGM_CONTROL)}, ${JSON.stringify(CAMERA)}] });`,
        "",
      ].join("\n"),
    );
    const r = damnit(["reprocess", "1", "--local", "--dir", db]);
    expect(r.status, r.stderr).toBe(0);
    const row = runVariableRows(db, { run: 1 }).filter((v) => v.name === "data_consistency");
    expect(row).toHaveLength(1);
    expect(Number(row[0]!.value)).toBe(0);
    const rec = record(db, 1);
    const cameraTrains = Array.from({ length: TRAINS }, (_, i) => i).filter(cameraHasTrain).length;
    expect(rec.data_consistency).toMatchObject({
      variable: "data_consistency",
      summary: false,
      processing_id: rec.attempts.at(-1)!.processing_id,
    });
    expect(rec.data_consistency!.reasons[0]).toBe(`${CAMERA} number of trains is different from expected : ${cameraTrains} vs ${TRAINS}`);
    expect(rec.data_consistency!.reasons).toHaveLength(2);
    const show = damnit(["show", db, "--json"]);
    expect(show.status, show.stderr).toBe(0);
  }, 120_000);

  it("the same check in Python (damnit_ctx.data_consistency) gives the same reasons as TypeScript's", (context) => {
    const python = "/usr/bin/python3";
    if (spawnSync(python, ["-c", "import numpy, extra_data"], { timeout: 60_000 }).status !== 0) {
      if (process.env.REQUIRE_PYTHON_CONTEXT === "1") throw new Error("REQUIRE_PYTHON_CONTEXT=1 but /usr/bin/python3 cannot import numpy and extra_data");
      context.skip("/usr/bin/python3 lacks numpy or extra_data");
    }
    const db = demoDatabase(tempDir(), 1);
    rmSync(join(db, "context.ts"));
    expect(damnit(["db-config", "context_python", python, "-C", db]).status).toBe(0);
    writeFileSync(
      join(db, "context.py"),
      ["from damnit_ctx import data_consistency", "", `data_consistency(sources=[${JSON.stringify(XGM_CONTROL)}, ${JSON.stringify(CAMERA)}, ${JSON.stringify(EMPTY_CAMERA)}])`, ""].join("\n"),
    );
    const r = damnit(["reprocess", "1", "--local", "--dir", db]);
    expect(r.status, r.stderr).toBe(0);
    const rec = record(db, 1);
    const first = firstTrainId(1);
    const all = Array.from({ length: TRAINS }, (_, i) => i);
    const missing = all.filter((i) => !cameraHasTrain(i)).map((i) => first + i);
    expect(rec.data_consistency).toMatchObject({ variable: "data_consistency", summary: false });
    expect(rec.data_consistency!.reasons).toEqual([
      `${CAMERA} number of trains is different from expected : ${all.filter(cameraHasTrain).length} vs ${TRAINS}`,
      `${CAMERA} missing trains : ${missing.slice(0, 10).join(", ")}, … (${missing.length})`,
      `${EMPTY_CAMERA} number of trains is different from expected : 0 vs ${TRAINS}`,
      `${EMPTY_CAMERA} missing trains : ${all.slice(0, 10).map((i) => first + i).join(", ")}, … (${TRAINS})`,
    ]);
    expect(Number(runVariableRows(db, { run: 1 }).find((v) => v.name === "data_consistency")?.value)).toBe(0);
  }, 120_000);
});
