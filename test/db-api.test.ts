/** The typed API: runs, comments, time comments, user variables, computed variables, tags. */
import { describe, expect, it } from "vitest";
import { RunDatabase } from "../src/db/index.js";
import { tempDir } from "./helpers/tmp.js";

async function newDb() {
  return RunDatabase.open(tempDir(), { create: true, initialSettings: { proposal: 1234 } });
}

describe("runs", () => {
  it("keeps the first added_at and updates start_time", async () => {
    const db = await newDb();
    db.ensureRun(1234, 1, { addedAt: 100 });
    db.ensureRun(1234, 1, { addedAt: 200, startTime: 50 });
    expect(db.sqlite.prepare("SELECT start_time, added_at FROM run_info").get()).toEqual({ start_time: 50, added_at: 100 });
    db.close();
  });

  it("overwrites a variable's earlier value in place (one row per name)", async () => {
    const db = await newDb();
    db.setVariables(1234, 1, { x: { value: 1, maxDiff: 2 } }, { provenance: "context.py" });
    db.setVariables(1234, 1, { x: { value: 2 } }, { provenance: "context.py" });
    expect(db.sqlite.prepare("SELECT value, max_diff, version FROM run_variables").all()).toEqual([{ value: 2, max_diff: null, version: 1 }]);
    db.close();
  });
});

describe("comments", () => {
  it("stores the run comment as the comment variable and shows it in the runs view", async () => {
    const db = await newDb();
    db.setRunComment(1234, 7, "Alignment run");
    expect(db.sqlite.prepare("SELECT run, comment FROM runs").all()).toEqual([{ run: 7, comment: "Alignment run" }]);
    expect(db.sqlite.prepare("SELECT provenance FROM run_variables").get()).toEqual({ provenance: "manual-input" });
    db.close();
  });

  it("adds, changes, lists (newest first) and deletes time comments", async () => {
    const db = await newDb();
    const a = db.addTimeComment("first", 100);
    const b = db.addTimeComment("second", 200);
    db.changeTimeComment(a, "first, edited");
    expect(db.listTimeComments()).toEqual([
      { id: b, timestamp: 200, comment: "second" },
      { id: a, timestamp: 100, comment: "first, edited" },
    ]);
    db.deleteTimeComment(b);
    expect(() => db.changeTimeComment(b, "x")).toThrow(/no time comment with id/);
    db.close();
  });
});

describe("user variables", () => {
  it("parses typed input with DAMNIT's rules and marks it manual-input", async () => {
    const db = await newDb();
    db.addUserVariable({ name: "laser_power", type: "number", title: "Laser power", description: "by hand" });
    db.addUserVariable({ name: "good", type: "boolean", title: "Good" });
    db.addUserVariable({ name: "shots", type: "integer", title: "Shots" });
    db.setUserValue(1234, 1, "laser_power", "12.5");
    db.setUserValue(1234, 1, "good", "Yes");
    db.setUserValue(1234, 1, "shots", " 17 ");
    db.setUserValue(1234, 2, "good", "no");
    db.setUserValue(1234, 2, "shots", "");
    expect(() => db.setUserValue(1234, 1, "good", "maybe")).toThrow(/not a boolean/);
    expect(() => db.setUserValue(1234, 1, "shots", "1.5")).toThrow(/not an integer/);
    expect(() => db.addUserVariable({ name: "laser_power", type: "string", title: "Other" })).toThrow(/already has this name or title/);
    const rows = db.sqlite.prepare("SELECT run, laser_power, good, shots FROM runs ORDER BY run").all();
    expect(rows).toEqual([
      { run: 1, laser_power: 12.5, good: 1, shots: 17 },
      { run: 2, laser_power: null, good: 0, shots: null },
    ]);
    db.close();
  });

  it("deletes a variable with its values and tags", async () => {
    const db = await newDb();
    db.updateComputedVariables([{ name: "x", title: "X", description: null, tags: ["a"] }]);
    db.setVariables(1234, 1, { x: { value: 1 }, y: { value: 2 } }, { provenance: "context.py" });
    db.deleteVariable("x");
    expect(db.getAllTags()).toEqual([]);
    expect(db.sqlite.prepare("SELECT * FROM runs").all()).toEqual([expect.not.objectContaining({ x: expect.anything() })]);
    expect(Object.keys(db.sqlite.prepare("SELECT * FROM runs").get() as object)).not.toContain("x");
    db.close();
  });
});

describe("computed variables and tags", () => {
  it("refreshes titles, descriptions and tags, reporting only what changed", async () => {
    const db = await newDb();
    const vars = [
      { name: "xgm", title: "XGM", description: "pulse energy", tags: ["xgm", "beam"] },
      { name: "motor", title: "Motor", description: null, tags: ["motors"] },
    ];
    expect(db.updateComputedVariables(vars)).toEqual(["xgm", "motor"]);
    expect(db.updateComputedVariables(vars)).toEqual([]);
    expect(db.updateComputedVariables([{ ...vars[0]!, tags: ["xgm"] }])).toEqual(["xgm"]);
    expect(db.getVariableTags("xgm")).toEqual(["xgm"]);
    // The orphaned 'beam' tag was removed by the trigger.
    expect(db.getAllTags()).toEqual(["motors", "xgm"]);
    expect(db.getVariablesByTag("motors")).toEqual(["motor"]);
    // New variables appear as view columns even before they have values.
    expect(Object.keys(db.sqlite.prepare("SELECT * FROM runs LIMIT 0").columns().reduce((a, c) => ({ ...a, [c.name]: 1 }), {}))).toEqual(
      ["proposal", "run", "start_time", "added_at", "motor", "xgm"],
    );
    db.close();
  });

  it("tag helpers tolerate unknown tags and variables", async () => {
    const db = await newDb();
    db.untagVariable("nope", "nothing");
    expect(() => db.tagVariable("nope", "t1")).toThrow(/no such variable/);
    db.updateComputedVariables(["a", "b"].map((name) => ({ name, title: name, description: null, tags: [] })));
    db.tagVariable("a", "t1");
    db.tagVariable("b", "t1");
    db.untagVariable("a", "t1");
    expect(db.getAllTags()).toEqual(["t1"]);
    db.untagVariable("b", "t1");
    expect(db.getAllTags()).toEqual([]);
    db.close();
  });
});

describe("settings", () => {
  it("set, setdefault, delete and bulk update behave like DAMNIT's mapping", async () => {
    const db = await newDb();
    db.setSetting("slurm_time", "01:00:00");
    expect(db.setDefaultSetting("slurm_time", "05:00:00")).toBe("01:00:00");
    expect(db.setDefaultSetting("noncluster_mem", "30G")).toBe("30G");
    db.updateSettings({ a: 1, b: "two" });
    expect(db.getSetting("b")).toBe("two");
    db.deleteSetting("a");
    expect(() => db.deleteSetting("a")).toThrow(/no setting named 'a'/);
    const old = db.dbId;
    expect(db.newId()).not.toBe(old);
    db.close();
  });
});

describe("reading the table", () => {
  it("readRunsPivot and readRunTable agree, restore blobs and take the highest version", async () => {
    const { complex, ndarray } = await import("../src/db/index.js");
    const db = await newDb();
    const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, 73, 72, 68, 82, 0, 0, 0, 4, 0, 0, 0, 2]);
    db.setVariables(1234, 1, {
      n: { value: 40 },
      s: { value: "it's \"quoted\" ✓" },
      img: { value: png },
      c: { value: complex(1, 2) },
      arr: { value: ndarray("int16", [3], [1, -2, 3]) },
      gone: { value: null, attributes: { error: "no data", error_cls: "Skip" } },
      inf: { value: -Infinity },
    }, { provenance: "context.py", startTime: 100 });
    db.setVariables(1234, 2, { n: { value: 41 } }, { provenance: "context.py" });
    // A later version of a value (DAMNIT's readers take max(version)).
    db.sqlite.prepare("INSERT INTO run_variables (proposal, run, name, version, value) VALUES (1234, 2, 'n', 2, 99)").run();
    // Re-insert version 1 so that table order has it after version 2: only version order can pick the right one.
    db.sqlite.exec("DELETE FROM run_variables WHERE run = 2 AND version = 1");
    db.sqlite.prepare("INSERT INTO run_variables (proposal, run, name, version, value) VALUES (1234, 2, 'n', 1, 41)").run();
    db.ensureRun(1234, 3); // no values yet: not in the table, as in the runs view

    const pivot = db.readRunsPivot();
    expect(pivot.names).toEqual(["arr", "c", "gone", "img", "inf", "n", "s"]);
    expect(pivot.rows.map((r) => r.run)).toEqual([1, 2]);
    const r1 = pivot.rows[0]!.values;
    expect(r1.n).toBe(40);
    expect(r1.s).toBe("it's \"quoted\" ✓");
    expect(r1.img).toMatchObject({ kind: "png", width: 4, height: 2 });
    expect(r1.c).toEqual(complex(1, 2));
    expect(Array.from((r1.arr as { data: Int16Array }).data)).toEqual([1, -2, 3]);
    expect(r1.gone).toBeNull();
    expect(r1.inf).toBe(-Infinity);
    expect(pivot.rows[0]!.start_time).toBe(100);
    expect(pivot.rows[1]!.values.n).toBe(99);

    const table = db.readRunTable({ runs: (run) => run >= 1 });
    expect(table.rows[1]!.cells.get("n")!.value).toBe(99);
    expect(table.rows[0]!.cells.get("gone")!.attributes).toEqual({ error: "no data", error_cls: "Skip" });
    expect(table.rows[0]!.cells.get("c")!.summaryType).toBe("complex");
    expect(table.rows[0]!.cells.get("img")!.value).toEqual(r1.img);
    // The SQL view says the same about the plain values.
    expect(db.sqlite.prepare("SELECT n, s FROM runs WHERE run = 1").get()).toEqual({ n: 40, s: "it's \"quoted\" ✓" });
    // Without the unique index (a damaged database) the highest version still wins.
    db.sqlite.exec("DROP INDEX variable_version");
    expect(db.readRunsPivot().rows[1]!.values.n).toBe(99);
    expect(db.readRunTable().rows[1]!.cells.get("n")!.value).toBe(99);
    db.close();
  });
});
