/** What people and other programs do to databases: read while a job writes, odd cells, reserved names. */
import { spawn } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { encodeNpy, ndarray, RunDatabase } from "../src/db/index.js";
import { damnit, expectOneLineError } from "./helpers/cli.js";
import { queryOne, withRunsDb } from "./helpers/db.js";
import { copyFixture, REPO_ROOT, tempDir } from "./helpers/tmp.js";

describe("reading while another process writes", () => {
  it("`damnit show` does not wait for a writer's lock", async () => {
    const dir = copyFixture("v4");
    const marker = join(tempDir(), "released");
    const holder = spawn(process.execPath, [join(REPO_ROOT, "test/helpers/lock-holder.mjs"), join(dir, "runs.sqlite"), marker], {
      stdio: ["pipe", "pipe", "inherit"],
    });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("lock holder did not start")), 30_000);
      holder.stdout.on("data", (d: Buffer) => d.toString().includes("locked") && (clearTimeout(timer), resolve()));
    });
    try {
      const out = damnit(["show", dir, "--json"]);
      expect(out.stderr).toBe("");
      expect(JSON.parse(out.stdout)).toHaveLength(3);
      // It returned while the writer still held the lock: readers never queue behind writers.
      expect(existsSync(marker)).toBe(false);
    } finally {
      holder.stdin.end("go\n");
      await new Promise((r) => holder.on("close", r));
    }
    expect(existsSync(marker)).toBe(true);
  });
});

describe("cells other tools wrote", () => {
  it("are shown, not fatal: unknown array dtypes, short PNGs, broken attributes", async () => {
    const dir = tempDir();
    const db = await RunDatabase.open(dir, { create: true, initialSettings: { proposal: 1 } });
    db.setVariables(1, 1, { ok: { value: 1 } }, { provenance: "context.py" });
    const header = "{'descr': '<U3', 'fortran_order': False, 'shape': (1,), }".padEnd(53, " ") + "\n";
    const unicode = Buffer.concat([Buffer.from("\x93NUMPY\x01\x00", "latin1"), Buffer.from([header.length, 0]), Buffer.from(header, "latin1"), Buffer.alloc(12)]);
    const insert = db.sqlite.prepare(
      "INSERT INTO run_variables (proposal, run, name, version, value, summary_type, attributes) VALUES (1, 1, ?, 1, ?, ?, ?)",
    );
    insert.run("strings", unicode, "numpy", null);
    insert.run("tiny_png", Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0]), null, null);
    insert.run("odd_attrs", 3, null, "{not json");
    insert.run("nan_attrs", 4, null, '{"error": "got NaN here", "max": NaN}');
    db.sqlite.prepare("UPDATE metameta SET value = value").run();
    db.close();
    const { rebuildViews } = await import("../src/db/views.js");
    withRunsDb(dir, rebuildViews, { writable: true });

    const out = damnit(["show", dir]);
    expect(out.status).toBe(0);
    expect(out.stdout).toContain("<unreadable blob: unsupported");
    expect(out.stdout).toContain("<unreadable blob: PNG too sh");
    const json = JSON.parse(damnit(["show", dir, "--json"]).stdout);
    expect(json[0].values.strings).toEqual({ type: "unreadable", bytes: unicode.length, reason: "unsupported .npy dtype '<U3'" });
    expect(json[0].values.tiny_png).toMatchObject({ type: "unreadable", reason: "PNG too short to hold its size" });
    expect(json[0].values.odd_attrs).toBe(3);
    expect(json[0].attributes.nan_attrs).toEqual({ error: "got NaN here", max: null });
    expect(json[0].attributes.odd_attrs).toBeUndefined();
  });
});

describe("names and data that would corrupt the table", () => {
  it("refuses reserved names (the view's own columns) in any case", async () => {
    const db = await RunDatabase.open(tempDir(), { create: true });
    for (const name of ["run", "Proposal", "start_time", "ADDED_AT"]) {
      expect(() => db.setVariables(1, 1, { [name]: { value: 1 } }, { provenance: "x" })).toThrow(/reserved for the run table/);
    }
    db.close();
  });

  it("names differing only in case do not make every write rebuild the views", async () => {
    const db = await RunDatabase.open(tempDir(), { create: true });
    db.setVariables(1, 1, { a: { value: 1 }, A: { value: 2 } }, { provenance: "x" });
    const version = () => db.sqlite.pragma("schema_version", { simple: true });
    const before = version();
    db.setVariables(1, 2, { a: { value: 3 }, A: { value: 4 } }, { provenance: "x" });
    expect(version()).toBe(before);
    expect(db.readRunTable().names).toEqual(["A", "a"]);
    db.close();
  });

  it("refuses array data whose element type is not the dtype's", () => {
    expect(() => ndarray("int32", [3], Float64Array.of(1, 2, 3))).toThrow(/int32 data must be a Int32Array, got a Float64Array/);
    expect(encodeNpy(ndarray("int32", [3], Int32Array.of(1, 2, 3))).length).toBe(128 + 12);
  });
});

describe("integers are INTEGER, as DAMNIT's tools expect", () => {
  it("proposal, run, version and whole-number settings", async () => {
    const dir = tempDir();
    const db = await RunDatabase.open(dir, { create: true, initialSettings: { proposal: 1234 } });
    db.setVariables(1234, 5, { x: { value: 1.5 } }, { provenance: "context.py", startTime: 1735689600 });
    db.setSetting("concurrent_jobs", 30);
    const types = (sql: string) => db.sqlite.prepare(sql).raw(true).all().flat();
    expect(types("SELECT typeof(proposal), typeof(run), typeof(start_time), typeof(added_at) FROM run_info")).toEqual(["integer", "integer", "real", "real"]);
    expect(types("SELECT typeof(proposal), typeof(run), typeof(version), typeof(timestamp) FROM run_variables")).toEqual(["integer", "integer", "integer", "real"]);
    expect(types("SELECT typeof(value) FROM metameta WHERE key IN ('proposal', 'concurrent_jobs', 'data_format_version')")).toEqual(["integer", "integer", "integer"]);
    db.close();
    const upgraded = copyFixture("v1");
    (await RunDatabase.open(upgraded)).close();
    expect(queryOne(upgraded, "SELECT typeof(value) AS t FROM metameta WHERE key = 'data_format_version'")).toEqual({ t: "integer" });
  });
});

describe("CLI argument checks", () => {
  it("refuses what would be stored wrong", () => {
    const dir = tempDir();
    damnit(["proposal", "1234", dir]);
    expect(expectOneLineError(damnit(["proposal", "99999999999999999999", dir]))).toBe("damnit: '99999999999999999999' is not a proposal number");
    expect(expectOneLineError(damnit(["db-config", "x", "1e999", "--num", "--any", "-C", dir]))).toBe("damnit: '1e999' is not a number");
    expect(expectOneLineError(damnit(["db-config", "-d", "data_format_version", "-C", dir]))).toMatch(/managed by migrations/);
    expect(expectOneLineError(damnit(["show", dir, "--proposal", "abc"]))).toBe("damnit: --proposal takes a proposal number");
    const notAFile = tempDir();
    mkdirSync(join(notAFile, "runs.sqlite"));
    expect(expectOneLineError(damnit(["show", notAFile]))).toBe(`damnit: ${notAFile}/runs.sqlite is not a file`);
  });
});
