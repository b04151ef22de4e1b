/** A writer killed mid-transaction (kill -9) loses only its own unfinished write; the database stays intact. */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { RunDatabase } from "../src/db/index.js";
import { REPO_ROOT, tempDir } from "./helpers/tmp.js";

describe("kill -9 during a write", () => {
  it("keeps every committed value and none of the interrupted write", async () => {
    const dir = tempDir();
    const db = await RunDatabase.open(dir, { create: true, initialSettings: { proposal: 1234 } });
    db.setVariables(1234, 1, { early: { value: 1.5 }, comment: { value: "before the crash" } }, { provenance: "context.py" });
    db.close();

    const child = spawn(process.execPath, [join(REPO_ROOT, "test/helpers/kill-worker.mjs"), dir], { stdio: ["ignore", "pipe", "inherit"] });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("worker did not start writing within 30 s")), 30_000);
      child.stdout.on("data", (d: Buffer) => {
        if (d.toString().includes("writing")) {
          clearTimeout(timer);
          // Let it get well into writing (its journal is on disk, however loaded the machine), then kill it without
          // warning: polled every 20 ms for at most 20 s.
          let polls = 0;
          const poll = setInterval(() => {
            if (existsSync(join(dir, "runs.sqlite-journal")) || ++polls > 1000) {
              clearInterval(poll);
              setTimeout(() => {
                child.kill("SIGKILL");
                resolve();
              }, 100);
            }
          }, 20);
        }
      });
    });
    await new Promise((r) => child.on("close", r));
    // The kill landed inside a transaction: SQLite left a hot journal, which the next open rolls back.
    expect(existsSync(join(dir, "runs.sqlite-journal"))).toBe(true);

    const after = await RunDatabase.open(dir);
    expect(after.sqlite.pragma("integrity_check", { simple: true })).toBe("ok");
    const table = after.readRunTable();
    expect(table.rows.find((r) => r.run === 1)?.cells.get("comment")?.value).toBe("before the crash");
    // The committed batch is all there; of the interrupted transaction nothing is.
    const late = after.sqlite.prepare("SELECT count(*) AS n, max(run) AS last FROM run_variables WHERE name LIKE 'late_%'").get();
    expect(late).toEqual({ n: 2000 * 50, last: 2999 });
    after.close();
  });
});
