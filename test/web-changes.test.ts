// The web table's change feed: after another connection commits, only the rows that changed are handed on.
import { describe, expect, it } from "vitest";
import { RunDatabase } from "../src/db/run-database.js";
import { ndarray, type NdArray } from "../src/core/ndarray.js";
import { DatabaseState, type TableChange } from "../src/web/database-state.js";
import { tempDir } from "./helpers/tmp.js";

describe("web change feed", () => {
  it("sends exactly the changed run, with its new value, and nothing when nothing changed", async () => {
    const dir = tempDir();
    const writer = await RunDatabase.open(dir, { create: true, initialSettings: { proposal: 1 } });
    writer.setVariablesForRuns([1, 2, 3].map((run) => ({ proposal: 1, run, values: { x: { value: run } } })), { provenance: "context" });
    const state = await DatabaseState.open(0, dir);
    expect(state.problem).toBeUndefined();
    expect(state.snapshot().rows.map((r) => r.key)).toEqual(["1/1", "1/2", "1/3"]);
    const changes: TableChange[] = [];
    state.subscribe((c) => changes.push(c));
    state.refresh();
    expect(changes).toHaveLength(0);
    writer.setVariables(1, 2, { x: { value: 42 } }, { provenance: "context" });
    state.refresh();
    expect(changes).toHaveLength(1);
    // Run 2 only, and of it only the changed cell (a plain number travels bare).
    expect(changes[0]!.rows).toEqual([]);
    expect(changes[0]!.patches).toEqual([{ key: "1/2", start: null, cells: { x: 42 }, cleared: [] }]);
    expect(changes[0]!.columns).toBeUndefined();
    // A new run arrives whole; a new variable brings the new columns.
    writer.setVariables(1, 4, { x: { value: 4 }, y: { value: "text" } }, { provenance: "context" });
    state.refresh();
    expect(changes).toHaveLength(2);
    expect(changes[1]!.rows.map((r) => r.key)).toEqual(["1/4"]);
    expect(changes[1]!.rows[0]!.cells).toEqual({ x: 4, y: { t: "text" } });
    expect(changes[1]!.patches).toEqual([]);
    expect(changes[1]!.columns?.map((c) => c.name)).toEqual(["x", "y", "comment"]);
    expect(state.snapshot().rows.map((r) => r.key)).toEqual(["1/1", "1/2", "1/3", "1/4"]);
    state.close();
    writer.close();
  });

  it("reads a range of runs through the indexes, blobs included (what a refresh reads again)", async () => {
    const dir = tempDir();
    const db = await RunDatabase.open(dir, { create: true, initialSettings: { proposal: 5 } });
    db.setVariablesForRuns([1, 2, 3, 4].map((run) => ({ proposal: 5, run, values: { x: { value: run }, a: { value: ndarray("float64", [2], [run, -run]) } } })), { provenance: "context" });
    db.setVariables(6, 3, { x: { value: 99 } }, { provenance: "context" });
    const part = db.readRunTable({ proposal: 5, range: { from: 2, to: 3 } });
    expect(part.rows.map((r) => [r.proposal, r.run])).toEqual([[5, 2], [5, 3]]);
    expect(part.rows.map((r) => Array.from((r.cells.get("a")!.value as NdArray).data as Float64Array))).toEqual([[2, -2], [3, -3]]);
    expect(part.names).toEqual(["a", "x"]);
    db.close();
  });

  it("keeps a database that cannot be opened, with the reason", async () => {
    const state = await DatabaseState.open(0, "/nonexistent/damnit-web");
    expect(state.db).toBeUndefined();
    expect(state.problem).toMatch(/no such directory/);
  });
});
