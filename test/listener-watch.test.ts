/**
 * The embedded default: no broker configured and no Slurm installed. The listener watches the registered
 * proposal's run directories and processes new complete runs here, with its runners kept alive.
 */
import { mkdirSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { damnit } from "./helpers/cli.js";
import { ListenerProcess, demoDatabase, listenerDir } from "./helpers/listener.js";
import { tempDir } from "./helpers/tmp.js";

/** A PATH with node and nothing else: no sbatch, as on a machine without Slurm. */
function pathWithoutSlurm(parent: string): string {
  const bin = join(parent, "bin");
  mkdirSync(bin);
  symlinkSync(process.execPath, join(bin, "node"));
  return bin;
}

function rows(dbDir: string, run: number): Map<string, { value: unknown; timestamp: number }> {
  const db = new Database(join(dbDir, "runs.sqlite"), { readonly: true });
  try {
    const list = db.prepare("SELECT name, value, timestamp FROM run_variables WHERE run = ?").all(run) as Array<{ name: string; value: unknown; timestamp: number }>;
    return new Map(list.map((r) => [r.name, r]));
  } finally {
    db.close();
  }
}

function startTime(dbDir: string, run: number): number | null {
  const db = new Database(join(dbDir, "runs.sqlite"), { readonly: true });
  try {
    return (db.prepare("SELECT start_time FROM run_info WHERE run = ?").get(run) as { start_time: number | null }).start_time;
  } finally {
    db.close();
  }
}

describe("listener without Kafka or Slurm", () => {
  it("processes new runs appearing in raw/ and proc/, leaves known runs alone, and stops cleanly on SIGTERM", async () => {
    const tmp = tempDir();
    const db = demoDatabase(tmp, 1);
    const before = rows(db, 1);
    const dir = listenerDir(tmp, 1234, db, { watch_interval_seconds: "0.3", watch_settle_seconds: "0.5" });
    const listener = new ListenerProcess(dir, { PATH: pathWithoutSlurm(tmp), DAMNIT_KAFKA_BROKERS: undefined });
    try {
      await listener.waitFor(/watching the raw\/ and proc\/ directories/);
      expect(listener.output).toMatch(/jobs: here \(no Slurm installed\)/);
      const synth = damnit(["synth", join(db, "data"), "--proposal", "1234", "--runs", "1", "--first-run", "2"]);
      expect(synth.status, synth.stderr).toBe(0);
      await listener.waitFor(/Processed p1234 r2 \(raw\)/, 60_000);
      await listener.waitFor(/Processed p1234 r2 \(proc\)/, 60_000);

      const run2 = rows(db, 2);
      expect(run2.get("n_trains")?.value).toBe(40);
      expect(run2.has("agipd_corrected_mean")).toBe(true);
      expect(startTime(db, 2)).toBeGreaterThan(1e9);
      // Run 1 was in the database before the listener first looked: not processed again.
      expect(rows(db, 1).get("n_trains")?.timestamp).toBe(before.get("n_trains")?.timestamp);
      expect(listener.output).not.toMatch(/r1 \(/);

      const requests = damnit(["listener", "requests", "-C", dir]);
      expect(requests.stdout).toMatch(/p1234 r2 raw\s+finished\s+local/);
      expect(requests.stdout).toMatch(/p1234 r2 proc\s+finished\s+local/);
    } finally {
      const exit = await listener.stop();
      expect(exit.code).toBe(0);
    }
  }, 120_000);
});
