/** DAMNIT-written databases (fixtures v1 and v4) open, upgrade to v4 and keep every row. */
import { createHash } from "node:crypto";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { RunDatabase } from "../src/db/index.js";
import { canonicalDump } from "./helpers/canonical-dump.js";
import { execSql } from "./helpers/db.js";
import { copyFixture } from "./helpers/tmp.js";

function expected(version: string): any {
  return JSON.parse(readFileSync(join(copyFixture(version as "v1"), "expected-v4.json"), "utf8"));
}

function sha256(path: string): string {
  return createHash("sha256").update(readFileSync(path)).digest("hex");
}

describe.each(["v1", "v4"] as const)("fixture %s", (version) => {
  it("opens at v4 with exactly the expected content", async () => {
    const dir = copyFixture(version);
    const want = expected(version);
    const before = readFileSync(join(dir, "runs.sqlite"));
    const db = await RunDatabase.open(dir);
    const upgrade = db.upgrade;
    db.close();
    if (version === "v4") {
      expect(upgrade).toBeNull();
      expect(existsSync(join(dir, "runs.sqlite.v4.bak"))).toBe(false);
    } else {
      expect(upgrade).toMatchObject({ from: 1, to: 4, applied: ["v2-attributes", "v3-tags", "v4-orphan-tag-trigger"] });
      // The pre-upgrade copy is byte-identical to the file as DAMNIT left it.
      expect(readFileSync(join(dir, "runs.sqlite.v1.bak")).equals(before)).toBe(true);
    }
    const got = canonicalDump(join(dir, "runs.sqlite"));
    expect(got.metameta).toEqual(want.db.metameta);
    expect(got.run_info).toEqual(want.db.run_info);
    expect(got.variables).toEqual(want.db.variables);
    expect(got.time_comments).toEqual(want.db.time_comments);
    expect(got.variable_tags).toEqual(want.db.variable_tags);
    expect(got.schema).toEqual(want.db.schema);
    expect(Object.keys(got.run_variables as object).sort()).toEqual(Object.keys(want.db.run_variables).sort());
    for (const [key, row] of Object.entries(want.db.run_variables)) {
      expect((got.run_variables as any)[key], key).toEqual(row);
    }
  });

  it("leaves the HDF5 files untouched", async () => {
    const dir = copyFixture(version);
    const want = expected(version);
    (await RunDatabase.open(dir)).close();
    const files = readdirSync(join(dir, "extracted_data")).sort();
    expect(files).toEqual(Object.keys(want.h5_sha256).sort());
    for (const f of files) expect(sha256(join(dir, "extracted_data", f))).toBe(want.h5_sha256[f]);
  });

  it("reads the run table through the API", async () => {
    const dir = copyFixture(version);
    const db = await RunDatabase.open(dir);
    const table = db.readRunTable();
    db.close();
    const run1 = table.rows.find((r) => r.run === 1)!;
    expect(run1.startTime).toBe(1735689600);
    expect(run1.cells.get("comment")?.value).toBe("Alignment run, fixture comment");
    expect(run1.cells.get("laser_power")?.value).toBe(12.5);
    expect(run1.cells.get("agipd_mean_frame")?.value).toMatchObject({ kind: "png", width: 300, height: 300 });
    if (version === "v4") {
      expect(run1.cells.get("xgm_intensity")?.value).toMatchObject({ kind: "ndarray", dtype: "float64", shape: [2, 40] });
      expect(run1.cells.get("sample_x")?.attributes).toEqual({ units: "mm" });
      expect(run1.cells.get("broken")?.attributes?.error_cls).toBe("SourceNameError");
      expect(table.rows.map((r) => r.run)).toEqual([1, 2, 3]);
    }
  });
});

describe("after the upgrade", () => {
  it("a v1 database accepts new writes, tags and the orphan-tag trigger", async () => {
    const dir = copyFixture("v1");
    const db = await RunDatabase.open(dir);
    db.tagVariable("sample_x", "motors");
    expect(db.getVariablesByTag("motors")).toEqual(["sample_x"]);
    db.untagVariable("sample_x", "motors");
    expect(db.getAllTags()).toEqual([]);
    db.setVariables(700000, 3, { n_trains: { value: 41 } }, { provenance: "context.py" });
    const table = db.readRunTable();
    expect(table.rows.find((r) => r.run === 3)?.cells.get("n_trains")?.value).toBe(41);
    // The first write regenerated the views, which now group by proposal and run.
    const sql = (db.sqlite.prepare("SELECT sql FROM sqlite_master WHERE name = 'runs'").get() as { sql: string }).sql;
    expect(sql).toContain("GROUP BY run_info.proposal, run_info.run");
    db.close();
  });

  it("opening twice does not upgrade or back up twice", async () => {
    const dir = copyFixture("v1");
    (await RunDatabase.open(dir)).close();
    const again = await RunDatabase.open(dir);
    expect(again.upgrade).toBeNull();
    again.close();
    expect(readdirSync(dir).filter((f) => f.endsWith(".bak"))).toEqual(["runs.sqlite.v1.bak"]);
  });
});

describe("a v2 database that already has the tag tables", () => {
  it("upgrades to v4 keeping its tags and their ids", async () => {
    const dir = copyFixture("v1");
    // What some real v2 databases look like: attributes column, tag tables, version 2, no trigger.
    execSql(dir, `ALTER TABLE run_variables ADD COLUMN attributes;
      CREATE TABLE tags(id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT UNIQUE NOT NULL);
      CREATE TABLE variable_tags(variable_name TEXT NOT NULL, tag_id INTEGER NOT NULL,
        FOREIGN KEY (variable_name) REFERENCES variables(name) ON DELETE CASCADE,
        FOREIGN KEY (tag_id) REFERENCES tags(id) ON DELETE CASCADE, PRIMARY KEY (variable_name, tag_id));
      INSERT INTO tags (id, name) VALUES (7, 'motors'), (9, 'xgm');
      INSERT INTO variable_tags VALUES ('sample_x', 7), ('xgm_intensity', 9);
      UPDATE metameta SET value = 2 WHERE key = 'data_format_version';`);
    const db = await RunDatabase.open(dir);
    expect(db.upgrade).toMatchObject({ from: 2, to: 4, applied: ["v3-tags", "v4-orphan-tag-trigger"] });
    expect(db.sqlite.prepare("SELECT id, name FROM tags ORDER BY id").all()).toEqual([{ id: 7, name: "motors" }, { id: 9, name: "xgm" }]);
    db.untagVariable("xgm_intensity", "xgm");
    expect(db.getAllTags()).toEqual(["motors"]); // the v4 trigger works on the old tables
    db.close();
    expect(readdirSync(dir)).toContain("runs.sqlite.v2.bak");
  });
});
