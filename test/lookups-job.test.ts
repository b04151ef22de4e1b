/**
 * The lookup recorder in extraction jobs, end to end through `damnit extract --mock` with a TS context calling
 * `lookup.get`: recorded on first processing, replayed with `--replay-lookups` with the upstream stopped (same
 * values), an unrecorded lookup failing its variable, and no recorder at all when no upstreams are configured.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { execa } from "execa";
import { describe, expect, it } from "vitest";
import { runVariableRows } from "./helpers/db.js";
import { DAMNIT_BIN, tempDir } from "./helpers/tmp.js";
import { LookupStore } from "../src/lookups/store.js";

const PROPOSAL = 4321;

/** `damnit …` without blocking this process (the upstream lives here). */
async function damnitAsync(args: string[], cwd: string) {
  const r = await execa(process.execPath, [DAMNIT_BIN, ...args], { cwd, reject: false, timeout: 60_000, env: { DAMNIT_LOG_FORMAT: "json" } });
  return { status: r.exitCode, stdout: String(r.stdout), stderr: String(r.stderr) };
}

const CONTEXT = `import { Variable, lookup } from "damnit/context";
export const gain = Variable({ deps: { run: "meta#run_number" } }, async (_r, { run }) => {
  const res = await lookup.get("cal", "/gain", { run, detector: "LPD1M" });
  return (res.json() as { gain: number }).gain;
});
export const calls = Variable(async () => ((await lookup.get("cal", "/counter")).json() as { n: number }).n);
`;

describe("lookups in extraction jobs", () => {
  it("records on first processing, replays with the upstream stopped, fails a variable on an unrecorded lookup", async () => {
    let n = 0;
    const server: Server = createServer((req, res) => {
      n++;
      const url = new URL(req.url ?? "/", "http://x");
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify(url.pathname === "/gain" ? { gain: Number(url.searchParams.get("run")) * 1.5 } : { n }));
    });
    await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
    const port = (server.address() as AddressInfo).port;
    const dir = tempDir("damnit-lookups-");
    try {
      expect((await damnitAsync(["proposal", String(PROPOSAL), dir], dir)).status).toBe(0);
      writeFileSync(join(dir, "context.ts"), CONTEXT);
      expect((await damnitAsync(["db-config", "lookup_upstreams", JSON.stringify({ cal: `http://127.0.0.1:${port}` })], dir)).status).toBe(0);

      const first = await damnitAsync(["extract", String(PROPOSAL), "7", "raw", "--mock", "--processing-id", "first-pass"], dir);
      expect(first.status, first.stderr).toBe(0);
      const values = (run: number) => new Map(runVariableRows(dir, { run }).map((r) => [r.name, r.value]));
      expect(values(7).get("gain")).toBe(10.5);
      expect(values(7).get("calls")).toBeGreaterThanOrEqual(1);
      expect(n).toBe(2);
    } finally {
      await new Promise<void>((done) => {
        server.closeAllConnections();
        server.close(() => done());
      });
    }
    // The upstream is gone: replay gives the same values.
    const before = new Map(runVariableRows(dir, { run: 7 }).map((r) => [r.name, r.value]));
    const replayed = await damnitAsync(["extract", String(PROPOSAL), "7", "raw", "--mock", "--replay-lookups", "--processing-id", "replay-pass"], dir);
    expect(replayed.status, replayed.stderr).toBe(0);
    expect(new Map(runVariableRows(dir, { run: 7 }).map((r) => [r.name, r.value]))).toEqual(before);

    // Run 8 was never processed: its gain lookup is not recorded, and the variable says so.
    const missing = await damnitAsync(["extract", String(PROPOSAL), "8", "raw", "--mock", "--replay-lookups"], dir);
    const row = runVariableRows(dir, { run: 8 }).find((r) => r.name === "gain");
    const attrs = JSON.parse(row!.attributes!) as { error: string; error_cls: string };
    expect(attrs.error_cls).toBe("LookupNotRecordedError");
    expect(attrs.error).toContain("GET cal/gain?run=8&detector=LPD1M");
    expect(missing.status).toBe(0);

    const store = LookupStore.open(join(dir, "lookups.sqlite"));
    try {
      const usage = store.usageOf({ run: 7 });
      expect(usage.filter((u) => u.processingId === "first-pass").map((u) => u.servedFrom)).toEqual(["upstream", "upstream"]);
      expect(usage.filter((u) => u.processingId === "replay-pass").map((u) => u.servedFrom)).toEqual(["cache", "cache"]);
      expect(usage.every((u) => u.proposal === PROPOSAL)).toBe(true);
    } finally {
      store.close();
    }
  }, 240_000);

  it("starts no recorder without upstreams: lookup.get fails its variable, no lookups.sqlite appears", async () => {
    const dir = tempDir("damnit-nolookups-");
    expect((await damnitAsync(["proposal", String(PROPOSAL), dir], dir)).status).toBe(0);
    writeFileSync(join(dir, "context.ts"), CONTEXT);
    const result = await damnitAsync(["extract", String(PROPOSAL), "7", "raw", "--mock"], dir);
    expect(result.status).toBe(0);
    const row = runVariableRows(dir, { run: 7 }).find((r) => r.name === "gain");
    expect((JSON.parse(row!.attributes!) as { error_cls: string }).error_cls).toBe("LookupError");
    expect(existsSync(join(dir, "lookups.sqlite"))).toBe(false);
  }, 120_000);
});
