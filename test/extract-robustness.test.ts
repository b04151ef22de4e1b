/**
 * Extraction when things go wrong: hanging, crashing and memory-hungry variables, values that cannot be stored,
 * broken context files, a job killed mid-write and two jobs for one run at once. Through the real CLI.
 */
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readRunOutput } from "../src/extract/h5-output.js";
import { writeSyntheticRun } from "../src/synth/write-run.js";
import { damnit } from "./helpers/cli.js";
import { integrityCheck, runVariableRows } from "./helpers/db.js";
import { DAMNIT_BIN } from "./helpers/paths.js";

const PROPOSAL = 1234;
let root: string;
let dataRoot: string;
let counter = 0;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), "damnit-robust-"));
  dataRoot = join(root, "data");
  await writeSyntheticRun({ root: dataRoot, proposal: PROPOSAL, run: 1, proc: false });
}, 120_000);

afterAll(() => rmSync(root, { recursive: true, force: true }));

function database(context: string, settings: Record<string, string> = {}): string {
  const dir = join(root, `db${++counter}`);
  expect(damnit(["proposal", String(PROPOSAL), dir]).status).toBe(0);
  for (const [key, value] of Object.entries({ data_root: dataRoot, ...settings })) {
    expect(damnit(["db-config", key, value], { cwd: dir }).status).toBe(0);
  }
  writeFileSync(join(dir, "context.ts"), context);
  return dir;
}

type Stored = { value: unknown; attributes: Record<string, unknown> | null };

function stored(dir: string, run = 1): Map<string, Stored> {
  const rows = runVariableRows(dir, { proposal: PROPOSAL, run });
  return new Map(rows.map((r) => [r.name, { value: r.value, attributes: r.attributes === null ? null : (JSON.parse(r.attributes) as Record<string, unknown>) }]));
}

const errorOf = (row: Stored | undefined) => row?.attributes as { error: string; error_cls: string } | undefined;
const h5File = (dir: string, run = 1) => join(dir, "extracted_data", `p${PROPOSAL}_r${run}.h5`);
const sha = (file: string) => createHash("sha256").update(readFileSync(file)).digest("hex");
const extract = (dir: string, ...extra: string[]) => damnit(["extract", String(PROPOSAL), "1", "raw", ...extra], { cwd: dir });

describe("extraction robustness", () => {
  it("stops a hanging variable at the time limit and keeps the others", () => {
    const dir = database(
      `import { Variable } from "damnit/context";
export const quick = Variable(() => 1);
export const hang = Variable(() => { for (;;) {} });
export const after = Variable({ deps: { h: "var#hang" } }, (_run, { h }) => h);
export const other = Variable(() => 2);
`,
      { variable_timeout: "2" },
    );
    const started = Date.now();
    const result = extract(dir);
    expect(result.status).toBe(0);
    expect(Date.now() - started).toBeLessThan(30_000);
    const rows = stored(dir);
    expect(rows.get("quick")!.value).toBe(1);
    expect(rows.get("other")!.value).toBe(2);
    expect(errorOf(rows.get("hang"))).toEqual({ error: "hang did not finish within 2 s and was stopped", error_cls: "TimeoutError" });
    expect(errorOf(rows.get("after"))).toEqual({
      error: "Skipped due to missing dependency:\n└ (hang) failed: TimeoutError: hang did not finish within 2 s and was stopped",
      error_cls: "DependencyError",
    });
    expect(result.stderr).toMatch(/hang: TimeoutError: hang did not finish within 2 s and was stopped/);
  });

  it("survives a variable that exits or kills the process, or eats memory", () => {
    const dir = database(
      `import { Variable } from "damnit/context";
export const exits = Variable(() => { process.exit(3); });
export const crashes = Variable(() => { process.kill(process.pid, "SIGKILL"); });
export const hog = Variable(() => { const kept: Float64Array[] = []; for (;;) kept.push(new Float64Array(1 << 20).fill(1)); });
export const fine = Variable(() => 5);
`,
      { runner_memory_limit_mb: "400" },
    );
    const result = extract(dir);
    expect(result.status).toBe(0);
    const rows = stored(dir);
    expect(rows.get("fine")!.value).toBe(5);
    expect(errorOf(rows.get("exits"))).toEqual({
      error: "process.exit(3) was called by context code; a variable should return or throw instead",
      error_cls: "Error",
    });
    expect(errorOf(rows.get("crashes"))).toEqual({ error: "the context runner stopped (signal SIGKILL) while computing crashes", error_cls: "RunnerCrash" });
    expect(errorOf(rows.get("hog"))).toEqual({ error: "hog used more than 400 MiB of memory and was stopped", error_cls: "MemoryError" });
  });

  it("records values that cannot be stored as per-variable errors and routes printed output to the log", async () => {
    const dir = database(
      `import { Variable, Skip } from "damnit/context";
export const bad_type = Variable(() => new Map());
export const not_a_number = Variable(() => NaN);
export const infinite = Variable(() => -Infinity);
export const huge = Variable(() => new Float64Array(512 * 1024));
export const throws = Variable(() => { throw new RangeError("bad range"); });
export const skipped = Variable(() => { throw new Skip("nothing to do"); });
export const strings = Variable(() => ["a", "b"]);
export const ragged = Variable(() => [[1, 2], [3]]);
export const a_date = Variable(() => new Date());
export const later = Variable(async () => { await new Promise((r) => setTimeout(r, 10)); return 7; });
export const missing_source = Variable((run) => run.key("NOPE/NOPE/NOPE", "x").ndarray());
export const missing_key = Variable((run) => run.key("SPB_XTD9_XGM/DOOCS/MAIN", "pulseEnergy.photonFlx").ndarray());
export const prints = Variable(() => { console.log("hello from the context"); console.error("and from stderr"); return 1; });
export const nothing = Variable(() => null);
export const summary_only = Variable(() => new Cell(null, { summaryValue: "just a cell" }));
import { Cell } from "damnit/context";
`,
      { result_size_limit_mb: "1" },
    );
    const result = extract(dir);
    expect(result.status).toBe(0);
    const rows = stored(dir);
    const errors = Object.fromEntries([...rows].filter(([, r]) => r.attributes?.error !== undefined).map(([n, r]) => [n, errorOf(r)]));
    expect(errors).toEqual({
      bad_type: { error_cls: "TypeError", error: "returned data of type Map cannot be saved (return a number, string, boolean, array or Cell)" },
      not_a_number: { error_cls: "TypeError", error: "returned data is NaN; return null to store nothing, or a finite number" },
      infinite: { error_cls: "TypeError", error: "returned data is -Infinity; return null to store nothing, or a finite number" },
      huge: {
        error_cls: "RangeError",
        error: "returned 4.0 MiB of data, more than the 1 MiB a result may have (reduce it, or raise the database setting result_size_limit_mb)",
      },
      throws: { error_cls: "RangeError", error: "bad range" },
      skipped: { error_cls: "Skip", error: "nothing to do" },
      strings: { error_cls: "TypeError", error: "returned data is an array holding strings, which cannot be saved; arrays must be numeric or boolean" },
      ragged: { error_cls: "TypeError", error: "returned data is a ragged nested array (not rectangular)" },
      a_date: { error_cls: "TypeError", error: "returned data is a Date, which cannot be saved; return its time in seconds (getTime() / 1000)" },
      missing_source: { error_cls: "SourceNameError", error: expect.stringMatching(/no source 'NOPE\/NOPE\/NOPE'/) },
      missing_key: { error_cls: "PropertyNameError", error: expect.stringMatching(/pulseEnergy\.photonFlx.*did you mean pulseEnergy\.photonFlux/) },
    });
    expect(rows.get("later")!.value).toBe(7);
    expect(rows.get("prints")!.value).toBe(1);
    expect(rows.get("summary_only")!.value).toBe("just a cell");
    expect(rows.has("nothing")).toBe(false);
    expect(result.stderr).toContain("hello from the context\n");
    expect(result.stderr).toContain("and from stderr\n");
    expect(result.stderr).toMatch(/Could not get data for throws\nRangeError: bad range\n\s+at .*context\.ts:6/);

    // The HDF5 file agrees: errors in .errors with their class, nothing for `nothing`.
    const h5 = await readRunOutput(h5File(dir));
    expect(h5.get("throws")!.error).toEqual({ cls: "RangeError", message: "bad range" });
    expect(h5.has("nothing")).toBe(false);
    expect(h5.get("summary_only")!.summary).toBe("just a cell");
  });

  it("keeps earlier values when a variable returns nothing or the context file breaks", async () => {
    const dir = database(`import { Variable } from "damnit/context";\nexport const kept = Variable(() => 1);\nexport const other = Variable(() => 10);\n`);
    expect(extract(dir).status).toBe(0);
    writeFileSync(join(dir, "context.ts"), `import { Variable } from "damnit/context";\nexport const kept = Variable(() => null);\nexport const other = Variable(() => 11);\n`);
    expect(extract(dir).status).toBe(0);
    let rows = stored(dir);
    expect(rows.get("kept")!.value).toBe(1);
    expect(rows.get("other")!.value).toBe(11);
    const h5 = await readRunOutput(h5File(dir));
    // A JS number is a double, whole or not (README: "Numbers from context files").
    expect(h5.get("kept")!.summary).toMatchObject({ dtype: "float64", data: Float64Array.of(1) });

    // A broken context fails the job, names the problem, and stores nothing.
    const before = sha(h5File(dir));
    writeFileSync(join(dir, "context.ts"), `import { Variable } from "damnit/context";\nexport const kept = Variable(() => {\n  return 2 +;\n});\n`);
    const broken = extract(dir);
    expect(broken.status).toBe(1);
    expect(broken.stderr).toMatch(/Error loading context file:\n.*context\.ts:3: syntax error/);
    expect(sha(h5File(dir))).toBe(before);
    rows = stored(dir);
    expect(rows.get("kept")!.value).toBe(1);

    // So does a context importing something that is not installed.
    writeFileSync(join(dir, "context.ts"), `import { Variable } from "damnit/context";\nimport { lowpass } from "signal-filters";\nexport const kept = Variable(() => lowpass());\n`);
    const missing = extract(dir);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/context\.ts:2: cannot import 'signal-filters'/);
    expect(sha(h5File(dir))).toBe(before);
  });

  it("leaves the previous results intact when a job is killed mid-write", async () => {
    const context = (value: string) => `import { Variable } from "damnit/context";
export const label = Variable(() => "${value}");
// about 160 MB to write, so the write takes long enough to be caught
export const big = Variable(() => new Float64Array(20_000_000).fill(${value === "old" ? 1 : 2}));
`;
    const dir = database(context("old"));
    expect(extract(dir).status).toBe(0);
    const oldSha = sha(h5File(dir));
    writeFileSync(join(dir, "context.ts"), context("new"));

    const child = spawn(process.execPath, [DAMNIT_BIN, "extract", String(PROPOSAL), "1", "raw"], {
      cwd: dir,
      detached: true,
      stdio: "ignore",
      env: { ...process.env, DAMNIT_LOG_FORMAT: "json" },
    });
    const extracted = join(dir, "extracted_data");
    const deadline = Date.now() + 60_000;
    while (!readdirSync(extracted).some((f) => f.endsWith(".damnit-writing.h5"))) {
      if (Date.now() > deadline) throw new Error("the job never started writing");
      await new Promise((r) => setTimeout(r, 5));
    }
    // Only the job process: its context runner, busy writing, must notice and stop without touching the run file.
    const runners = childPids(child.pid!);
    process.kill(child.pid!, "SIGKILL");
    await new Promise((r) => child.once("exit", r));
    const gone = Date.now() + 10_000;
    while (runners.some(alive)) {
      if (Date.now() > gone) throw new Error("the runner outlived its job process");
      await new Promise((r) => setTimeout(r, 50));
    }

    expect(sha(h5File(dir))).toBe(oldSha);
    expect(stored(dir).get("label")!.value).toBe("old");
    expect(integrityCheck(dir)).toBe("ok");

    // The next job stores the new values and clears the abandoned temporary file.
    expect(extract(dir).status).toBe(0);
    expect(stored(dir).get("label")!.value).toBe("new");
    expect(readdirSync(extracted).filter((f) => f.endsWith(".damnit-writing.h5"))).toEqual([]);
    const h5 = await readRunOutput(h5File(dir));
    expect(h5.get("label")!.summary).toBe("new");
  }, 120_000);

  it("merges two jobs for the same run that finish at the same time", async () => {
    const dir = database(`import { Variable } from "damnit/context";
const pause = () => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1500);
export const from_a = Variable(() => { pause(); return "a"; });
export const from_b = Variable(() => { pause(); return "b"; });
`);
    const run = (variable: string) =>
      new Promise<number | null>((resolve) => {
        const child = spawn(process.execPath, [DAMNIT_BIN, "extract", String(PROPOSAL), "1", "raw", "--var", variable], { cwd: dir, stdio: "ignore" });
        child.once("exit", resolve);
      });
    expect(await Promise.all([run("from_a"), run("from_b")])).toEqual([0, 0]);
    const rows = stored(dir);
    expect(rows.get("from_a")!.value).toBe("a");
    expect(rows.get("from_b")!.value).toBe("b");
    const h5 = await readRunOutput(h5File(dir));
    expect(h5.get("from_a")!.summary).toBe("a");
    expect(h5.get("from_b")!.summary).toBe("b");
  });

  it("runs a context on a mock run without data", () => {
    const dir = database(`import { Variable } from "damnit/context";
export const trains = Variable((run) => run.trainIds.length);
export const xgm = Variable((run) => run.key("SPB_XTD9_XGM/DOOCS/MAIN", "pulseEnergy.photonFlux").ndarray());
`);
    const result = damnit(["extract", String(PROPOSAL), "99", "raw", "--mock"], { cwd: dir });
    expect(result.status).toBe(0);
    const rows = stored(dir, 99);
    expect(rows.get("trains")!.value).toBe(10);
    expect(errorOf(rows.get("xgm"))!.error_cls).toBe("SourceNameError");
    expect(existsSync(h5File(dir, 99))).toBe(true);
  });

  it("fails a job cleanly when the run has no data", () => {
    const dir = database(`import { Variable } from "damnit/context";\nexport const a = Variable(() => 1);\n`);
    const result = damnit(["extract", String(PROPOSAL), "42", "raw"], { cwd: dir });
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/Cannot open the run's data: run 42 of proposal 1234 has no raw data/);
    expect(existsSync(h5File(dir, 42))).toBe(false);
    expect(spawnSync("true").status).toBe(0);
  });

  it("stops a runner whose job process was killed, even while user code is busy", async () => {
    const dir = database(`import { Variable } from "damnit/context";
export const busy = Variable(() => { const t = Date.now(); while (Date.now() - t < 60_000) {} return 1; });
`);
    const child = spawn(process.execPath, [DAMNIT_BIN, "extract", String(PROPOSAL), "1", "raw", "--mock"], { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr!.on("data", (d) => (stderr += d));
    const deadline = Date.now() + 30_000;
    while (!stderr.includes("Using 1 variables")) {
      if (Date.now() > deadline) throw new Error(`the job never started: ${stderr}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const runners = childPids(child.pid!);
    expect(runners.length).toBe(1);
    child.kill("SIGKILL");
    const gone = Date.now() + 10_000;
    while (runners.some(alive)) {
      if (Date.now() > gone) throw new Error("the runner outlived its job process");
      await new Promise((r) => setTimeout(r, 100));
    }
  });

  it("reloads changed helper modules and ignores a late process.exit()", () => {
    const dir = database(`import { Variable } from "damnit/context";
import { version } from "./helper.ts";
import { writeFileSync } from "node:fs";
export const v = Variable(() => {
  // The next run must see the new helper (a fresh runner evaluates it); a late process.exit() is only logged.
  writeFileSync("helper.ts", \`export const version = \${version + 1};\\n\`);
  setTimeout(() => process.exit(3), 5);
  return version;
});
`);
    writeFileSync(join(dir, "helper.ts"), "export const version = 1;\n");
    const result = damnit(["reprocess", "1-3", "--dir", dir, "--mock", "--concurrency", "1", "--local"]);
    expect(result.stderr).not.toMatch(/EPIPE|unexpected error/);
    expect(result.status).toBe(0);
    expect([1, 2, 3].map((run) => stored(dir, run).get("v")?.value)).toEqual([1, 2, 3]);
  });

  it("records unstorable values as that variable's error and blames a time-out on the right variable", () => {
    const dir = database(
      `import { Cell, Variable, labelled } from "damnit/context";
export const nul = Variable(() => "a\\0b");
export const too_big = Variable(() => 2n ** 64n - 1n);
export const bad_dims = Variable(() => labelled([[1, 2], [3, 4]], { dims: ["x", "x"] }));
export const slash_dim = Variable(() => labelled([1, 2], { dims: ["a/b"] }));
export const big_summary = Variable(() => new Cell(1, { summaryValue: new Float64Array(1 << 21) }));
export const hangs = Variable({ deps: { b: "var#big_summary" } }, () => { for (;;) {} });
export const fine = Variable(() => 3);
`,
      { variable_timeout: "3" },
    );
    const result = extract(dir);
    expect(result.status).toBe(0);
    const rows = stored(dir);
    expect(rows.get("fine")!.value).toBe(3);
    expect(errorOf(rows.get("nul"))).toEqual({ error_cls: "Error", error: "variable nul summary: HDF5 strings cannot contain NUL characters" });
    expect(errorOf(rows.get("too_big"))!.error).toMatch(/does not fit in SQLite's 64-bit INTEGER/);
    expect(errorOf(rows.get("bad_dims"))!.error).toMatch(/repeated dimension names x, x/);
    expect(errorOf(rows.get("slash_dim"))!.error).toMatch(/"a\/b" cannot be an HDF5 name/);
    expect(rows.get("big_summary")!.attributes?.error).toBeUndefined();
    expect(errorOf(rows.get("hangs"))).toEqual({ error_cls: "TimeoutError", error: "hangs did not finish within 3 s and was stopped" });
  });

  it("leaves DAMNIT's own fragments alone and cuts job output at the end marker", () => {
    const dir = database(`import { Variable } from "damnit/context";
export const chatty = Variable(() => { process.stdout.write("x".repeat(65500)); return 1; });
`);
    mkdirSync(join(dir, "extracted_data"), { recursive: true });
    const fragment = join(dir, "extracted_data", `p${PROPOSAL}_r1.5f2a9c1e0b.writing.h5`);
    writeFileSync(fragment, "DAMNIT is writing this");
    const started = Date.now();
    const result = extract(dir);
    expect(result.status).toBe(0);
    expect(Date.now() - started).toBeLessThan(20_000);
    expect(existsSync(fragment)).toBe(true);
    expect(result.stderr).toContain("x".repeat(65500));
    expect(result.stderr).not.toContain("\u0000");
    expect(result.stderr).not.toContain("damnit-job-end");
  });

  it("stops a context that hangs at load in read-context", () => {
    const dir = database(`import { Variable } from "damnit/context";
for (;;) {}
export const a = Variable(() => 1);
`, { variable_timeout: "2" });
    const started = Date.now();
    const result = damnit(["read-context", dir]);
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/loading the context file did not finish within 2 s/);
    expect(Date.now() - started).toBeLessThan(20_000);
  });
});

function childPids(pid: number): number[] {
  const out = spawnSync("ps", ["-o", "pid=", "--ppid", String(pid)], { encoding: "utf8" }).stdout;
  return out.split("\n").map((l) => Number(l.trim())).filter((n) => n > 0);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return !readFileSync(`/proc/${pid}/status`, "utf8").includes("State:\tZ");
  } catch {
    return false;
  }
}
