/** A new database has exactly DAMNIT's v4 schema and metameta defaults. */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { RunDatabase } from "../src/db/index.js";
import { REPO_ROOT, tempDir } from "./helpers/tmp.js";

const REFERENCE = join(REPO_ROOT, "../shared/reference/damnit-v4-schema.sql");

/** Split `.schema` output into statements (a statement starts with CREATE at the start of a line). */
function statements(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const chunk of text.split(/^(?=CREATE )/m)) {
    const sql = chunk.replace(/\/\*[^*]*\*\/\s*;?\s*$/, "").trim().replace(/;$/, "");
    if (!sql) continue;
    const name = /^CREATE (?:UNIQUE )?(?:TABLE|INDEX|TRIGGER|VIEW) (\w+)/.exec(sql)![1]!;
    out.set(name, sql);
  }
  return out;
}

const normalise = (sql: string) => sql.replace(/\s+/g, " ").replace(/\( /g, "(").replace(/ \)/g, ")").trim();

/** A view's pivot columns as a set (DAMNIT's order comes from a Python set), and the statement without them. */
function splitView(sql: string): { columns: string[]; rest: string } {
  const columns = [...sql.matchAll(/max\(CASE WHEN name='[^']+' THEN \w+ END\) AS '[^']+'/g)].map((m) => m[0]).sort();
  const rest = normalise(sql.replace(/, max\(CASE WHEN name='[^']+' THEN \w+ END\) AS '[^']+'/g, ""));
  return { columns, rest };
}

describe("new database", () => {
  it("has DAMNIT's v4 schema, statement for statement", async () => {
    const reference = statements(readFileSync(REFERENCE, "utf8"));
    const dir = tempDir();
    const db = await RunDatabase.open(dir, { create: true, initialSettings: { proposal: 700000 } });
    // The reference was dumped from a database holding these variables; give ours the same ones.
    const referenceNames = [...reference.get("runs")!.matchAll(/AS '([^']+)'/g)].map((m) => m[1]!);
    db.updateComputedVariables(referenceNames.map((name) => ({ name, title: name, description: null, tags: [] })));
    const rows = db.sqlite.prepare("SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL").all() as { name: string; sql: string }[];
    db.close();
    const ours = new Map(rows.map((r) => [r.name, r.sql]));

    expect([...ours.keys()].sort()).toEqual([...reference.keys()].sort());
    for (const [name, sql] of reference) {
      if (name === "runs" || name === "max_diffs") continue;
      expect(normalise(ours.get(name)!), name).toBe(normalise(sql));
    }
    // Views: same columns and text, except the one deliberate change: grouping by proposal and run.
    for (const [name, fix] of [
      ["runs", (s: string) => s.replace("GROUP BY run_info.run", "GROUP BY run_info.proposal, run_info.run")],
      ["max_diffs", (s: string) => s.replace("GROUP BY run", "GROUP BY proposal, run")],
    ] as const) {
      const want = splitView(fix(reference.get(name)!));
      const got = splitView(ours.get(name)!);
      expect(got.columns, name).toEqual(want.columns);
      expect(got.rest, name).toBe(want.rest);
    }
  });

  it("has the metameta defaults", async () => {
    const dir = tempDir();
    const db = await RunDatabase.open(dir, { create: true, initialSettings: { proposal: 1234 } });
    const settings = db.allSettings();
    expect(db.created).toBe(true);
    expect(db.upgrade).toBeNull(); // creating is not upgrading
    db.close();
    expect(Object.keys(settings).sort()).toEqual(["concurrent_jobs", "data_format_version", "db_id", "proposal"]);
    expect(settings.data_format_version).toBe(4);
    expect(settings.concurrent_jobs).toBe(15);
    expect(settings.proposal).toBe(1234);
    expect(settings.db_id).toMatch(/^[0-9a-f]{40}$/);
  });

  it("uses the rollback journal and a 30 s busy timeout unless WAL is asked for", async () => {
    const dir = tempDir();
    const db = await RunDatabase.open(dir, { create: true });
    expect(db.sqlite.pragma("journal_mode", { simple: true })).toBe("delete");
    expect(db.sqlite.pragma("busy_timeout", { simple: true })).toBe(30000);
    expect(db.sqlite.pragma("foreign_keys", { simple: true })).toBe(1);
    db.setSetting("journal_mode", "wal");
    db.close();
    const again = await RunDatabase.open(dir);
    expect(again.sqlite.pragma("journal_mode", { simple: true })).toBe("wal");
    again.close();
  });

  it("gives each database its own id and makes the file group-writable like DAMNIT's", async () => {
    const a = await RunDatabase.open(tempDir(), { create: true });
    const b = await RunDatabase.open(tempDir(), { create: true });
    expect(a.dbId).not.toBe(b.dbId);
    const { statSync } = await import("node:fs");
    expect(statSync(a.path).mode & 0o777).toBe(0o666);
    a.close();
    b.close();
  });

  it("shows runs of two proposals with the same run number as two rows", async () => {
    const db = await RunDatabase.open(tempDir(), { create: true });
    db.setVariables(1, 5, { x: { value: 1 } }, { provenance: "context.py" });
    db.setVariables(2, 5, { x: { value: 2 } }, { provenance: "context.py" });
    const rows = db.sqlite.prepare("SELECT proposal, run, x FROM runs ORDER BY proposal").all();
    const diffs = db.sqlite.prepare("SELECT proposal, run FROM max_diffs ORDER BY proposal").all();
    db.close();
    expect(rows).toEqual([{ proposal: 1, run: 5, x: 1 }, { proposal: 2, run: 5, x: 2 }]);
    expect(diffs).toHaveLength(2);
  });
});
