/**
 * `lookup.get/post` in Python context files (damnit_ctx.lookup) through the job's lookup recorder, end to end with
 * Debian's /usr/bin/python3 and a real local upstream that counts its calls: recorded on the first reprocess, the
 * very same rows and run-file values from `reprocess --replay-lookups` with the upstream stopped, a 4xx answer
 * kept as an answer, an unrecorded request failing its variable with LookupNotRecordedError, and the interpreter in
 * the attempt's provenance. Skips without numpy/extra_data unless REQUIRE_PYTHON_CONTEXT=1.
 */
import { spawnSync } from "node:child_process";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { readFileSync, realpathSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { execa } from "execa";
import { describe, expect, it } from "vitest";
import type { NdArray } from "../src/core/ndarray.js";
import { readRunOutput } from "../src/extract/h5-output.js";
import { runVariableRows } from "./helpers/db.js";
import { DAMNIT_BIN, tempDir } from "./helpers/tmp.js";

const PYTHON = "/usr/bin/python3";
const PROPOSAL = 4321;

function pythonReady(): boolean {
  const probe = spawnSync(PYTHON, ["-c", "import numpy, extra_data"], { timeout: 60_000 });
  if (probe.status === 0) return true;
  if (process.env.REQUIRE_PYTHON_CONTEXT === "1") throw new Error("REQUIRE_PYTHON_CONTEXT=1 but /usr/bin/python3 cannot import numpy and extra_data");
  console.warn("skipping Python lookup tests: /usr/bin/python3 lacks numpy or extra_data");
  return false;
}
const ready = pythonReady();

async function damnitAsync(args: string[], cwd: string) {
  const r = await execa(process.execPath, [DAMNIT_BIN, ...args], { cwd, reject: false, timeout: 120_000, env: { DAMNIT_LOG_FORMAT: "json" } });
  return { status: r.exitCode, stdout: String(r.stdout), stderr: String(r.stderr) };
}

const CONTEXT = `import numpy as np
from damnit_ctx import Variable, lookup

@Variable()
def gain(run, number: "meta#run_number"):
    return lookup.get("cal", "/gain", {"run": number, "detector": "LPD1M", "dark": True}).json()["gain"]

@Variable()
def offsets(run, g: "var#gain"):
    answer = lookup.post("cal", "/offsets", {"gain": g, "modules": [0, 1, 2]})
    return np.array(answer.json()["offsets"], dtype="f8")

@Variable()
def missing_constant(run):
    answer = lookup.get("cal", "/nothing")
    return f"{answer.status} {answer.text()}"
`;

describe.skipIf(!ready)("lookups from Python contexts", () => {
  it("records, then replays with the upstream stopped giving identical rows and run-file values", async () => {
    const seen: string[] = [];
    const server: Server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const url = new URL(req.url ?? "/", "http://x");
        seen.push(`${req.method} ${url.pathname}${url.search}`);
        res.setHeader("content-type", "application/json");
        if (url.pathname === "/gain") res.end(JSON.stringify({ gain: Number(url.searchParams.get("run")) * 1.5 }));
        else if (url.pathname === "/offsets") {
          const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as { gain: number; modules: number[] };
          res.end(JSON.stringify({ offsets: body.modules.map((m) => m + body.gain / 10) }));
        } else {
          res.statusCode = 404;
          res.end('"no such constant"');
        }
      });
    });
    await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
    const dir = tempDir("damnit-pylookups-");
    try {
      expect((await damnitAsync(["proposal", String(PROPOSAL), dir], dir)).status).toBe(0);
      expect((await damnitAsync(["db-config", "context_python", PYTHON], dir)).status).toBe(0);
      const port = (server.address() as AddressInfo).port;
      expect((await damnitAsync(["db-config", "lookup_upstreams", JSON.stringify({ cal: `http://127.0.0.1:${port}` })], dir)).status).toBe(0);
      writeFileSync(join(dir, "context.py"), CONTEXT);
      const first = await damnitAsync(["reprocess", "7", "--local", "--mock"], dir);
      expect(first.status, first.stdout + first.stderr).toBe(0);
    } finally {
      await new Promise<void>((done) => {
        server.closeAllConnections();
        server.close(() => done());
      });
    }
    // the booleans as TypeScript contexts send them; one call each
    expect(seen.sort()).toEqual(["GET /gain?run=7&detector=LPD1M&dark=true", "GET /nothing", "POST /offsets"]);
    const rows = () => runVariableRows(dir, { run: 7 }).map(({ timestamp: _t, ...row }) => row);
    const recorded = rows();
    const byName = new Map(recorded.map((r) => [r.name, r]));
    expect(byName.get("gain")!.value).toBe(10.5);
    expect(byName.get("missing_constant")!.value).toBe('404 "no such constant"');
    const file = join(dir, "extracted_data", `p${PROPOSAL}_r7.h5`);
    const data = await readRunOutput(file);
    const offsets = data.get("offsets")!.data as NdArray;
    expect(offsets.dtype).toBe("float64");
    expect(Array.from(offsets.data as Float64Array)).toEqual([0, 1, 2].map((m) => m + 10.5 / 10));

    const replayed = await damnitAsync(["reprocess", "7", "--local", "--mock", "--replay-lookups"], dir);
    expect(replayed.status, replayed.stdout + replayed.stderr).toBe(0);
    expect(rows()).toEqual(recorded);
    const again = await readRunOutput(file);
    for (const name of ["gain", "offsets", "missing_constant"]) expect(again.get(name)).toEqual(data.get(name));

    // Run 8 was never processed: its gain was never asked for.
    const unrecorded = await damnitAsync(["reprocess", "8", "--local", "--mock", "--replay-lookups"], dir);
    expect(unrecorded.status, unrecorded.stderr).toBe(0);
    const gain8 = runVariableRows(dir, { run: 8 }).find((r) => r.name === "gain")!;
    const attrs = JSON.parse(gain8.attributes!) as { error: string; error_cls: string };
    expect(attrs.error_cls).toBe("LookupNotRecordedError");
    expect(attrs.error).toContain("GET cal/gain?run=8&detector=LPD1M&dark=true was not recorded");

    // The interpreter and the lookups served are in the replay attempt's provenance.
    const shown = await damnitAsync(["provenance", "7", "--json"], dir);
    expect(shown.status, shown.stderr).toBe(0);
    const record = (JSON.parse(shown.stdout) as { attempt: number; record: { sections: Record<string, Record<string, unknown>> } }).record;
    expect(JSON.parse(shown.stdout).attempt).toBe(2);
    const interpreter = record.sections.interpreter!;
    expect(interpreter.contextPython).toBe(PYTHON);
    expect(interpreter.executable).toBe(realpathSync(PYTHON));
    const version = spawnSync(PYTHON, ["--version"], { encoding: "utf8" }).stdout.trim();
    expect(interpreter.version).toBe(version);
    expect(record.sections.context!.sha256).toBeTypeOf("string");
    expect(readFileSync(join(dir, "context.py"), "utf8")).toBe(CONTEXT);
    const served = record.sections.lookups!.served as Array<{ method: string; path: string; servedFrom: Record<string, number> }>;
    expect(served.map((s) => [s.method, s.path, s.servedFrom]).sort()).toEqual([
      ["GET", "/gain", { cache: 1 }],
      ["GET", "/nothing", { cache: 1 }],
      ["POST", "/offsets", { cache: 1 }],
    ]);
  }, 300_000);
});
