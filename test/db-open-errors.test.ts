/** Bad input on open: each case gets one clear error naming the file, and the file is left exactly as it was. */
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { RunDatabase, type DamnitErrorCode } from "../src/db/index.js";
import { execSql, metametaValue } from "./helpers/db.js";
import { copyFixture, tempDir } from "./helpers/tmp.js";

function snapshot(path: string) {
  return { bytes: readFileSync(path), mtimeMs: statSync(path).mtimeMs, mode: statSync(path).mode };
}

async function expectRefusal(dir: string, code: DamnitErrorCode, message: RegExp) {
  const path = join(dir, "runs.sqlite");
  const before = snapshot(path);
  await expect(RunDatabase.open(dir)).rejects.toMatchObject({ code, message: expect.stringMatching(message) });
  expect(snapshot(path)).toEqual(before);
}

describe("refusals on open", () => {
  it("a missing directory", async () => {
    const dir = join(tempDir(), "nope");
    await expect(RunDatabase.open(dir)).rejects.toMatchObject({ code: "NO_DIRECTORY", message: `${dir}: no such directory` });
  });

  it("a directory without a database points to 'damnit proposal'", async () => {
    const dir = tempDir();
    await expect(RunDatabase.open(dir)).rejects.toMatchObject({
      code: "NO_DATABASE",
      message: expect.stringMatching(/no DAMNIT database in .* \(runs\.sqlite missing\); create one with 'damnit proposal <number>/),
    });
  });

  it("a file that is not SQLite", async () => {
    const dir = tempDir();
    writeFileSync(join(dir, "runs.sqlite"), "this is a text file, not a database\n".repeat(100));
    await expectRefusal(dir, "NOT_SQLITE", /runs\.sqlite is not an SQLite database .*it was not changed/);
  });

  it("an SQLite file that is not a DAMNIT database", async () => {
    const dir = tempDir();
    execSql(dir, "CREATE TABLE photos(id, path)");
    await expectRefusal(dir, "NOT_DAMNIT", /SQLite database but not a DAMNIT one \(no metameta table\)/);
  });

  it("a database from a newer version", async () => {
    const dir = copyFixture("v4");
    execSql(dir, "UPDATE metameta SET value = 7 WHERE key = 'data_format_version'");
    await expectRefusal(dir, "TOO_NEW", /is format v7, newer than this damnit understands \(v4\); update damnit/);
  });

  it("a legacy v0 database, pointing to migrate v0-to-v1", async () => {
    const dir = copyFixture("v0");
    await expectRefusal(dir, "LEGACY_V0", /legacy v0 format .*convert it with 'damnit migrate v0-to-v1/);
  });
});

describe("a failing upgrade step", () => {
  it("rolls back every step and leaves the file byte-identical", async () => {
    const dir = copyFixture("v1");
    // A damaged v1 database: variable_tags is a view, so the v4 trigger cannot be created on it.
    execSql(dir, "CREATE VIEW variable_tags AS SELECT 'x' AS variable_name, 1 AS tag_id");
    const before = readFileSync(join(dir, "runs.sqlite"));
    await expect(RunDatabase.open(dir)).rejects.toMatchObject({
      code: "MIGRATION_FAILED",
      message: expect.stringMatching(/from v1 failed at step v4-orphan-tag-trigger: .*view.*; nothing was changed \(a copy is at .*runs\.sqlite\.v1\.bak\)/),
    });
    expect(readFileSync(join(dir, "runs.sqlite")).equals(before)).toBe(true);
    expect(metametaValue(dir, "data_format_version")).toBe(1);
  });

  it("a v1 database missing its run_variables table fails at the first step", async () => {
    const dir = copyFixture("v1");
    execSql(dir, "DROP VIEW runs; DROP VIEW max_diffs; DROP TABLE run_variables");
    const before = readFileSync(join(dir, "runs.sqlite"));
    await expect(RunDatabase.open(dir)).rejects.toMatchObject({
      code: "MIGRATION_FAILED",
      message: expect.stringMatching(/failed at step v2-attributes: table run_variables is missing/),
    });
    expect(readFileSync(join(dir, "runs.sqlite")).equals(before)).toBe(true);
  });
});

describe("concurrent openers of an old database", () => {
  it("upgrade it once", async () => {
    const dir = copyFixture("v1");
    const dbs = await Promise.all([RunDatabase.open(dir), RunDatabase.open(dir), RunDatabase.open(dir)]);
    expect(dbs.filter((d) => d.upgrade !== null)).toHaveLength(1);
    for (const d of dbs) d.close();
  });
});
