/** `damnit migrate v0-to-v1` converts DAMNIT's legacy wide table into a current database, keeping every value. */
import { createHash } from "node:crypto";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { RunDatabase } from "../src/db/index.js";
import { convertV0ToV1 } from "../src/legacy/v0-to-v1.js";
import { damnit } from "./helpers/cli.js";
import { countRows, execSql, queryAll, runVariableRows, withRunsDb, withSqliteFile } from "./helpers/db.js";
import { copyFixture, FIXTURES } from "./helpers/tmp.js";

const sha256 = (path: string) => createHash("sha256").update(readFileSync(path)).digest("hex");
const legacy = JSON.parse(readFileSync(join(FIXTURES, "v0/expected-v4.json"), "utf8"));
// The same synthetic runs processed by the v1-era code: the values a conversion should arrive at.
const v1Expected = JSON.parse(readFileSync(join(FIXTURES, "v1/expected-v4.json"), "utf8"));

describe("migrate v0-to-v1", () => {
  it("converts every cell, comment and time comment, and registers the variables", async () => {
    const dir = copyFixture("v0");
    const original = readFileSync(join(dir, "runs.sqlite"));
    const out = damnit(["migrate", "v0-to-v1", dir]);
    expect(out.stderr).toBe("");
    expect(out.stdout).toBe(
      `Converted 2 runs, 20 values, 10 variables and 1 time comments into ${dir}/runs.sqlite (old file kept as ${dir}/runs.v0-backup.sqlite)\n`,
    );
    // The original is kept byte for byte; HDF5 files are not touched.
    expect(readFileSync(join(dir, "runs.v0-backup.sqlite")).equals(original)).toBe(true);
    for (const [file, hash] of Object.entries(legacy.h5_sha256)) expect(sha256(join(dir, "extracted_data", file))).toBe(hash);

    const db = await RunDatabase.open(dir);
    expect(db.upgrade).toBeNull(); // already v4
    const settings = db.allSettings();
    expect(settings.data_format_version).toBe(4);
    expect(settings.db_id).toBe(legacy.legacy_tables.metameta.rows[0][1]);
    expect(settings.proposal).toBe(700000);

    // Every non-NULL legacy cell is a row; scalars and text unchanged.
    const { columns, rows } = legacy.legacy_tables.runs;
    const table = db.readRunTable();
    let cells = 0;
    for (const legacyRow of rows as unknown[][]) {
      const run = legacyRow[1] as number;
      const ours = table.rows.find((r) => r.run === run)!;
      expect(ours.startTime).toBe(legacyRow[2]);
      expect(ours.addedAt).toBe(legacyRow[3]);
      columns.forEach((column: string, i: number) => {
        if (i < 4 || legacyRow[i] === null) return;
        cells++;
        const value = ours.cells.get(column)?.value;
        if (typeof legacyRow[i] === "object") {
          // The pickled image summary became a PNG thumbnail of the (64, 32) frame.
          expect(value, column).toMatchObject({ kind: "png", width: 150, height: 300 });
        } else {
          expect(value, `${column} r${run}`).toBe(legacyRow[i]);
        }
      });
    }
    expect(cells).toBe(20);
    // SQLite types survive: a REAL stays REAL even when whole, INTEGER stays INTEGER, run numbers are INTEGER.
    const types = Object.fromEntries(
      (db.sqlite.prepare("SELECT name, typeof(value) AS t, typeof(proposal) AS tp, typeof(run) AS tr FROM run_variables WHERE run = 1").all() as any[]).map((r) => [r.name, [r.t, r.tp, r.tr]]),
    );
    expect(types).toMatchObject({
      n_trains: ["integer", "integer", "integer"],
      flagged: ["integer", "integer", "integer"],
      camera_total: ["real", "integer", "integer"],
      laser_power: ["real", "integer", "integer"],
      run_type: ["text", "integer", "integer"],
    });
    expect(countRows(db.sqlite, "run_variables")).toBe(20);

    // max_diff from the HDF5 data matches what DAMNIT computed for the same data.
    for (const [key, want] of Object.entries(v1Expected.db.run_variables) as [string, any][]) {
      const [, run, name] = /^p700000_r(\d)\/(\w+)\/v1$/.exec(key)!;
      if (want.max_diff === null) continue;
      const got = table.rows.find((r) => r.run === Number(run))!.cells.get(name!)!.maxDiff;
      expect(got, key).toBeCloseTo(want.max_diff, 6);
    }
    // User edits are marked as such; the rest came from the context file.
    const provenance = Object.fromEntries(
      runVariableRows(db.sqlite, { run: 1 }).map((r) => [r.name, r.provenance]),
    );
    expect(provenance).toMatchObject({ comment: "manual-input", laser_power: "manual-input", n_trains: "context.py" });
    expect(db.sqlite.prepare("SELECT summary_method FROM run_variables WHERE name = 'camera_total' AND run = 1").get()).toEqual({ summary_method: "mean" });

    // Variables: the user variable as it was, computed ones titled from context.py.
    const variables = Object.fromEntries(db.listVariables().map((v) => [v.name, v]));
    expect(variables.laser_power).toMatchObject({ type: "number", title: "Laser power", description: "Laser power set by hand (fixture user variable)" });
    for (const name of ["agipd_mean_frame", "camera_total", "flagged", "n_trains", "run_type", "sample_x", "xgm_intensity", "xgm_mean", "xgm_pulses"]) {
      expect(variables[name], name).toMatchObject({ type: null, title: v1Expected.db.variables[name].title });
    }
    expect(variables.sample_x!.description).toBe("Mean position of the sample X motor");
    expect(db.listTimeComments()).toEqual([{ id: 1, timestamp: 1735690500, comment: "Beam lost for 5 minutes (fixture standalone comment)" }]);
    db.close();
  });

  it("--dry-run writes runs.v1.sqlite and leaves runs.sqlite alone", () => {
    const dir = copyFixture("v0");
    const original = readFileSync(join(dir, "runs.sqlite"));
    const out = damnit(["migrate", "v0-to-v1", dir, "--dry-run"]);
    expect(out.stdout).toMatch(/into .*runs\.v1\.sqlite \(dry run: .*runs\.sqlite unchanged\)/);
    expect(readFileSync(join(dir, "runs.sqlite")).equals(original)).toBe(true);
    expect(withSqliteFile(join(dir, "runs.v1.sqlite"), (converted) => countRows(converted, "run_variables"))).toBe(20);
    expect(existsSync(join(dir, "runs.v0-backup.sqlite"))).toBe(false);
  });

  it("refuses databases that are not v0, and leaves no partial output", async () => {
    const v4 = copyFixture("v4");
    await expect(convertV0ToV1(v4)).rejects.toThrow(/already format v4; only v0 databases need/);
    const dir = copyFixture("v0");
    execSql(dir, "DROP TABLE runs");
    await expect(convertV0ToV1(dir)).rejects.toThrow(/no v0 'runs' table/);
    expect(readdirSync(dir).filter((f) => f.includes("v1"))).toEqual([]);
  });

  it("keeps a whole-number REAL a REAL (13.0 stays 13.0)", async () => {
    const dir = copyFixture("v0");
    execSql(dir, "UPDATE runs SET laser_power = 13.0, camera_total = 2345686.0 WHERE runnr = 2");
    await convertV0ToV1(dir);
    expect(queryAll(dir, "SELECT name, typeof(value) AS t FROM run_variables WHERE run = 2 AND name IN ('laser_power', 'camera_total') ORDER BY name")).toEqual([
      { name: "camera_total", t: "real" },
      { name: "laser_power", t: "real" },
    ]);
  });

  it("keeps an undecodable pickled value as raw bytes, with a warning", async () => {
    const dir = copyFixture("v0");
    withRunsDb(dir, (raw) => raw.prepare("UPDATE runs SET agipd_mean_frame = ? WHERE runnr = 2").run(Buffer.from([0x80, 0x04, 0x95, 0x01])), { writable: true });
    const result = await convertV0ToV1(dir);
    expect(result.warnings).toEqual([expect.stringMatching(/run 2 agipd_mean_frame: kept an undecodable pickled value as raw bytes/)]);
    const db = await RunDatabase.open(dir);
    const cell = db.readRunTable().rows.find((r) => r.run === 2)!.cells.get("agipd_mean_frame")!;
    expect(Buffer.from(cell.value as Uint8Array)).toEqual(Buffer.from([0x80, 0x04, 0x95, 0x01]));
    db.close();
  });
});
