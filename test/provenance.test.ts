/**
 * Provenance per processing attempt and `reprocess --check-reproducible`, end to end through the CLI on synthetic
 * runs with a TS context that calls `lookup.get` on a real local upstream (and imports a helper module): the
 * record in provenance.sqlite (`damnit provenance --json`) and in the run file's `damnit_provenance` attribute (read
 * with h5py) against the files themselves; attempts numbered per run and the file's records merged as variables
 * are replaced; reproducing with the upstream stopped gives zero differences and touches none of the real files,
 * and an altered recorded response is reported value by value with exit status 1.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { createHash } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import Database from "better-sqlite3";
import { execa } from "execa";
import { describe, expect, it } from "vitest";
import { h5pyAvailable, runH5py } from "./helpers/h5py.js";
import { runVariableRows } from "./helpers/db.js";
import { DAMNIT_BIN, REPO_ROOT, tempDir } from "./helpers/tmp.js";

const PROPOSAL = 4321;
const withH5py = h5pyAvailable();

async function damnitAsync(args: string[], cwd: string) {
  const r = await execa(process.execPath, [DAMNIT_BIN, ...args], { cwd, reject: false, timeout: 120_000, env: { DAMNIT_LOG_FORMAT: "json" } });
  return { status: r.exitCode, stdout: String(r.stdout), stderr: String(r.stderr) };
}

const CONTEXT = `import { Variable, lookup } from "damnit/context";
import { ramp } from "./helpers/ramp.ts";
export const n_trains = Variable((run) => run.trainIds.length);
export const gain = Variable({ deps: { run: "meta#run_number" } }, async (_r, { run }) =>
  ((await lookup.get("cal", "/gain", { run, detector: "LPD1M" })).json() as { gain: number }).gain);
export const corrected = Variable({ summary: "mean", data: "proc", deps: { gain: "var#gain", n: "var#n_trains" } }, (_r, { gain, n }) => ramp(gain, n));
`;
const HELPER = `export function ramp(g: number, n: number): Float64Array { return Float64Array.from({ length: n }, (_, i) => g * (i + 1)); }\n`;

/** An upstream answering /gain?run=R with gain R × 1.5, counting its calls. */
async function gainUpstream(): Promise<{ url: string; calls: () => number; close(): Promise<void> }> {
  let n = 0;
  const server: Server = createServer((req, res) => {
    n++;
    const url = new URL(req.url ?? "/", "http://x");
    res.setHeader("content-type", "application/json");
    res.end(JSON.stringify({ gain: Number(url.searchParams.get("run")) * 1.5 }));
  });
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    calls: () => n,
    close: () =>
      new Promise<void>((done) => {
        server.closeAllConnections();
        server.close(() => done());
      }),
  };
}

/** A database directory with synthetic runs 1 and 2, the context and its helper, lookups going to `upstream`. */
async function setup(upstream: string): Promise<{ dir: string; data: string }> {
  const root = tempDir("damnit-prov-");
  const data = join(root, "data");
  const dir = join(root, "db");
  mkdirSync(dir);
  expect((await damnitAsync(["synth", data, "--proposal", String(PROPOSAL), "--runs", "2"], root)).status).toBe(0);
  expect((await damnitAsync(["proposal", String(PROPOSAL), dir], root)).status).toBe(0);
  writeFileSync(join(dir, "context.ts"), CONTEXT);
  mkdirSync(join(dir, "helpers"));
  writeFileSync(join(dir, "helpers", "ramp.ts"), HELPER);
  for (const [k, v] of [["data_root", data], ["lookup_upstreams", JSON.stringify({ cal: upstream })]]) {
    expect((await damnitAsync(["db-config", k!, v!], dir)).status).toBe(0);
  }
  return { dir, data };
}

const sha256 = (file: string) => createHash("sha256").update(readFileSync(file)).digest("hex");

/** SHA-256 of every file below `dir` (what must stay untouched). */
function fingerprint(dir: string, names: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(d, e.name));
      else out[relative(dir, join(d, e.name))] = sha256(join(d, e.name));
    }
  };
  for (const name of names) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p);
    else out[name] = sha256(p);
  }
  return out;
}

interface AttemptJson {
  attempt: number;
  status: string;
  processingId: string;
  record: {
    attempt: number;
    processingId: string;
    variables: string[];
    sections: {
      damnit: { version: string };
      context: { file: string; sha256: string; helpers: Array<{ path: string; size: number; sha256: string }> };
      inputs: { proposalDir: string; files: Array<{ path: string; size: number; mtime: number }> };
      lookups: { mode: string; served: Array<{ key: string; service: string; path: string; query: string; status: number; servedFrom: Record<string, number> }> };
      job: { data: string };
    };
  };
}

describe("provenance and --check-reproducible", () => {
  it("records what went into each attempt; reproduces with zero differences; reports an altered recorded response", async () => {
    const up = await gainUpstream();
    let dir: string;
    let data: string;
    try {
      ({ dir, data } = await setup(up.url));
      const first = await damnitAsync(["reprocess", "1-2", "--local"], dir);
      expect(first.status, first.stderr).toBe(0);
      expect(up.calls()).toBe(2);
    } finally {
      await up.close();
    }
    const values = (run: number) => new Map(runVariableRows(dir, { run }).map((r) => [r.name, r.value]));
    expect(values(1).get("gain")).toBe(1.5);
    expect(values(2).get("gain")).toBe(3);

    // The record of run 1's one attempt, against the files themselves.
    const shown = await damnitAsync(["provenance", "1", "--json"], dir);
    expect(shown.status, shown.stderr).toBe(0);
    const a = JSON.parse(shown.stdout) as AttemptJson;
    expect(a.attempt).toBe(1);
    expect(a.status).toBe("ok");
    const s = a.record.sections;
    expect(s.damnit.version).toBe((JSON.parse(readFileSync(join(REPO_ROOT, "package.json"), "utf8")) as { version: string }).version);
    expect(s.context.file).toBe("context.ts");
    expect(s.context.sha256).toBe(sha256(join(dir, "context.ts")));
    expect(s.context.helpers.filter((h) => h.path === join("helpers", "ramp.ts"))).toEqual([
      { path: join("helpers", "ramp.ts"), size: HELPER.length, sha256: sha256(join(dir, "helpers", "ramp.ts")) },
    ]);
    expect(s.job.data).toBe("all");
    const expectedFiles = ["raw", "proc"].flatMap((kind) => {
      const runDir = join(s.inputs.proposalDir, kind, "r0001");
      return readdirSync(runDir)
        .sort()
        .map((name) => {
          const st = statSync(join(runDir, name));
          return { path: join(kind, "r0001", name), size: st.size, mtime: st.mtimeMs / 1000 };
        });
    });
    expect(s.inputs.proposalDir.startsWith(data)).toBe(true);
    expect(expectedFiles.length).toBeGreaterThan(2);
    expect(s.inputs.files).toEqual(expectedFiles);
    expect(s.lookups.mode).toBe("record");
    expect(s.lookups.served.map((l) => [l.service, l.path, l.query, l.status, l.servedFrom])).toEqual([["cal", "/gain", "detector=LPD1M&run=1", 200, { upstream: 1 }]]);
    const usage = new Database(join(dir, "lookups.sqlite"), { readonly: true });
    try {
      const keys = usage.prepare("SELECT key FROM lookup_usage WHERE processing_id = ?").all(a.processingId) as Array<{ key: string }>;
      expect(keys.map((k) => k.key)).toEqual(s.lookups.served.map((l) => l.key));
    } finally {
      usage.close();
    }
    expect(a.record.variables).toEqual(["corrected", "gain", "n_trains", "start_time"]);

    // The same record travels in the run file, where h5py reads it.
    if (withH5py) {
      const inFile = runH5py(`f = h5py.File(sys.argv[1], "r"); print(f.attrs["damnit_provenance"])`, [join(dir, "extracted_data", `p${PROPOSAL}_r1.h5`)]) as {
        attempts: Array<AttemptJson["record"]>;
      };
      expect(inFile.attempts).toHaveLength(1);
      expect(inFile.attempts[0]!.processingId).toBe(a.processingId);
      expect(inFile.attempts[0]!.sections.context.sha256).toBe(s.context.sha256);
      expect(inFile.attempts[0]!.sections.lookups.served.map((l) => l.key)).toEqual(s.lookups.served.map((l) => l.key));
      expect(inFile.attempts[0]!.variables).toEqual(a.record.variables);
    }

    // Reproducing, with the upstream gone: same values, nothing real touched, no attempt added to the real record.
    const kept = ["runs.sqlite", "lookups.sqlite", "provenance.sqlite", "extracted_data"];
    const before = fingerprint(dir, kept);
    const same = await damnitAsync(["reprocess", "1-2", "--check-reproducible"], dir);
    expect(same.status, same.stdout + same.stderr).toBe(0);
    expect(same.stdout).toContain("Reproducible: 0 differences in 8 values of 2 runs");
    expect(fingerprint(dir, kept)).toEqual(before);
    expect(JSON.parse((await damnitAsync(["provenance", "1", "--json"], dir)).stdout).attempt).toBe(1);

    // A recorded answer altered: run 1's gain and the array computed from it differ, run 2 does not.
    const db = new Database(join(dir, "lookups.sqlite"));
    try {
      const changed = db.prepare("UPDATE responses SET resp_body = ? WHERE path = '/gain' AND query = 'detector=LPD1M&run=1'").run(Buffer.from('{"gain": 2.5}'));
      expect(changed.changes).toBe(1);
    } finally {
      db.close();
    }
    const differs = await damnitAsync(["reprocess", "1-2", "--check-reproducible"], dir);
    expect(differs.status, differs.stderr).toBe(1);
    const lines = differs.stdout.trimEnd().split("\n");
    expect(lines).toContain("r2: 4 values compared, same");
    expect(lines).toContain("  gain: runs.sqlite value: stored 1.5, reproduced 2.5");
    const n = Number(values(1).get("n_trains"));
    expect(values(1).get("corrected")).toBeCloseTo((1.5 * (n + 1)) / 2, 12);
    expect(lines).toContain(`  corrected: runs.sqlite value: stored ${values(1).get("corrected")}, reproduced ${(2.5 * (n + 1)) / 2}`);
    expect(lines).toContain("  gain: HDF5 summary data[0]: stored 1.5, reproduced 2.5");
    expect(lines).toContain("  corrected: HDF5 data data[0]: stored 1.5, reproduced 2.5");
    expect(lines.at(-1)).toMatch(/^NOT reproducible: \d+ differences in 8 values of 2 runs$/);
    expect(lines.filter((l) => l.startsWith("  ")).every((l) => /^ {2}(gain|corrected): /.test(l))).toBe(true);
  }, 300_000);

  it("numbers attempts per run; the run file keeps the records of the attempts whose variables it holds", async () => {
    const up = await gainUpstream();
    let dir: string;
    try {
      ({ dir } = await setup(up.url));
      for (const v of ["gain", "n_trains", "gain"]) {
        const r = await damnitAsync(["extract", String(PROPOSAL), "1", "raw", "--var", v, "--processing-id", `p-${v}-${Math.random()}`], dir);
        expect(r.status, r.stderr).toBe(0);
      }
    } finally {
      await up.close();
    }
    const text = await damnitAsync(["provenance", "1"], dir);
    expect(text.status, text.stderr).toBe(0);
    expect(text.stdout.split("\n").filter((l) => /^ {2}#\d+ {2}ok /.test(l))).toHaveLength(3);
    const second = JSON.parse((await damnitAsync(["provenance", "1", "--attempt", "2", "--json"], dir)).stdout) as AttemptJson;
    expect(second.record.variables).toContain("n_trains");
    expect(second.record.variables).not.toContain("gain");
    expect(second.record.sections.lookups.served).toEqual([]);
    if (withH5py) {
      const inFile = runH5py(`f = h5py.File(sys.argv[1], "r"); print(f.attrs["damnit_provenance"])`, [join(dir, "extracted_data", `p${PROPOSAL}_r1.h5`)]) as {
        attempts: Array<{ attempt: number; variables: string[] }>;
      };
      // attempt 1's gain was replaced by attempt 3's: only 2 and 3 are left
      expect(inFile.attempts.map((r) => r.attempt)).toEqual([2, 3]);
      expect(inFile.attempts[1]!.variables).toContain("gain");
      expect(inFile.attempts[0]!.variables).not.toContain("gain");
    }
    // Variables from raw jobs and one from a proc job: reproduced with the kind each was stored from.
    const proc = await damnitAsync(["extract", String(PROPOSAL), "1", "proc"], dir);
    expect(proc.status, proc.stderr).toBe(0);
    const procAttempt = JSON.parse((await damnitAsync(["provenance", "1", "--json"], dir)).stdout) as AttemptJson;
    expect(procAttempt.record.sections.job.data).toBe("proc");
    expect(procAttempt.record.variables).toContain("corrected");
    const check = await damnitAsync(["reprocess", "1", "--check-reproducible"], dir);
    expect(check.status, check.stdout + check.stderr).toBe(0);
    expect(check.stdout).toMatch(/^Reproducible: 0 differences in [3-9] values of 1 runs$/m);
    const missing = await damnitAsync(["provenance", "1", "--attempt", "9"], dir);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toContain("has attempts 1–4, not 9");
    const none = await damnitAsync(["provenance", "2"], dir);
    expect(none.status).toBe(1);
    expect(none.stderr).toContain("no processing attempt of run 2");
  }, 300_000);

  it("a damaged provenance.sqlite costs the job nothing but a warning; the run file still gets the record", async () => {
    const dir = tempDir("damnit-prov-bad-");
    expect((await damnitAsync(["proposal", String(PROPOSAL), dir], dir)).status).toBe(0);
    writeFileSync(join(dir, "context.ts"), `import { Variable } from "damnit/context";\nexport const one = Variable(() => 1);\n`);
    const none = await damnitAsync(["provenance", "3"], dir);
    expect(none.status).toBe(1);
    expect(none.stderr.trim().split("\n")).toHaveLength(1);
    expect(none.stderr).toContain("provenance.sqlite does not exist");
    writeFileSync(join(dir, "provenance.sqlite"), "this is not a database, it is a text file of more than a few bytes".repeat(20));
    const r = await damnitAsync(["extract", String(PROPOSAL), "3", "raw", "--mock"], dir);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toContain("No provenance record for this attempt in provenance.sqlite");
    expect(runVariableRows(dir, { run: 3 }).find((row) => row.name === "one")?.value).toBe(1);
    if (withH5py) {
      const inFile = runH5py(`f = h5py.File(sys.argv[1], "r"); print(f.attrs["damnit_provenance"])`, [join(dir, "extracted_data", `p${PROPOSAL}_r3.h5`)]) as {
        attempts: Array<{ attempt: number | null; variables: string[]; sections: { context: { sha256: string } } }>;
      };
      expect(inFile.attempts.map((a) => [a.attempt, a.variables])).toEqual([[null, ["one", "start_time"]]]);
      expect(inFile.attempts[0]!.sections.context.sha256).toBe(sha256(join(dir, "context.ts")));
    }
    const shown = await damnitAsync(["provenance", "3"], dir);
    expect(shown.status).toBe(1);
    expect(shown.stderr.trim().split("\n")).toHaveLength(1);
    expect(shown.stderr).toContain(join(dir, "provenance.sqlite"));
  }, 120_000);
});
