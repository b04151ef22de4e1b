/**
 * What issue 13 changed in how a job runs, checked on real jobs (`damnit extract` processes, real SQLite, HDF5 files
 * read back with h5py):
 * - a context compiled before is imported straight from the compile cache (no loader thread): its variables load
 *   the same, its stack traces still point into the .ts file, and anything but `damnit…`/built-in imports keeps
 *   going through the hooks;
 * - JS numbers are stored as float64 / REAL whether whole or not, bigints and `integer()` as int64 / INTEGER, so a
 *   column keeps its type from run to run;
 * - a job records where its time went (`DAMNIT_TIMINGS_FILE`) and its runner and job memory.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { withOwnSpecifiers } from "../src/context/direct-import.js";
import { writeSyntheticRun } from "../src/synth/write-run.js";
import { damnit } from "./helpers/cli.js";
import { runVariableRows } from "./helpers/db.js";
import { h5pyAvailable, runH5py } from "./helpers/h5py.js";

const PROPOSAL = 1234;
let root: string;
let dataRoot: string;
let counter = 0;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), "damnit-speed-"));
  dataRoot = join(root, "data");
  await writeSyntheticRun({ root: dataRoot, proposal: PROPOSAL, run: 1, proc: false });
}, 120_000);

afterAll(() => rmSync(root, { recursive: true, force: true }));

function database(context: string, files: Record<string, string> = {}): string {
  const dir = join(root, `db${++counter}`);
  expect(damnit(["proposal", String(PROPOSAL), dir]).status).toBe(0);
  expect(damnit(["db-config", "data_root", dataRoot], { cwd: dir }).status).toBe(0);
  writeFileSync(join(dir, "context.ts"), context);
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

const extract = (dir: string, env: Record<string, string> = {}) => damnit(["extract", String(PROPOSAL), "1", "raw"], { cwd: dir, env });
const directDir = (dir: string) => join(dir, ".damnit-cache", `direct-${process.getuid!()}`);
const directEntries = (dir: string) => (existsSync(directDir(dir)) ? readdirSync(directDir(dir)) : []);

describe("importing compiled contexts directly", () => {
  it("rewrites only damnit specifiers, and refuses code it cannot import without the hooks", () => {
    const code = 'import { Variable } from "damnit/context";\nimport { np } from "damnit/array";\nimport { join } from "node:path";\nimport fs from "fs";\nexport const v = 1;\n';
    const rewritten = withOwnSpecifiers(code)!;
    const lines = rewritten.split("\n");
    expect(lines).toHaveLength(code.split("\n").length);
    expect(lines[0]).toMatch(/^import \{ Variable \} from "file:\/\/\/.*\/dist\/src\/context\/api\.js";$/);
    expect(lines[1]).toMatch(/^import \{ np \} from "file:\/\/\/.*\/dist\/src\/array\/index\.js";$/);
    expect(lines.slice(2)).toEqual(code.split("\n").slice(2));
    // A re-export printed over several lines is rewritten on its last line.
    expect(withOwnSpecifiers('export {\n  Skip\n} from "damnit/context";\n')).toMatch(/^export \{\n {2}Skip\n\} from "file:\/\/\/.*\/context\/api\.js";\n$/);
    for (const other of [
      'import { helper } from "./helpers.ts";',
      'import lodash from "lodash";',
      'const m = await import("damnit/context");',
      "const here = import.meta.url;",
      'import {\n  Variable\n} from "damnit/context";',
      'export {\n  helper\n} from "./helpers.ts";',
    ]) {
      expect(withOwnSpecifiers(`${other}\nexport const v = 1;\n`), other).toBeUndefined();
    }
  });

  it("loads a compiled context from the cache, with stack traces in the .ts file", () => {
    const dir = database(
      `import { Variable } from "damnit/context";
type Count = number;
export const fine = Variable((run) => run.trainIds.length as Count);

export const broken = Variable(() => {
  throw new RangeError("out of range here");
});
`,
    );
    const first = extract(dir);
    expect(first.status).toBe(0);
    expect(directEntries(dir)).toHaveLength(0); // compiled through the hooks, which fill the compile cache
    const second = extract(dir);
    expect(second.status).toBe(0);
    const entries = directEntries(dir);
    expect(entries).toHaveLength(1);
    expect(statSync(directDir(dir)).mode & 0o777).toBe(0o700);
    expect(statSync(join(directDir(dir), entries[0]!)).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(directDir(dir), entries[0]!), "utf8")).toMatch(/from "file:\/\/\/[^"]*\/context\/api\.js"/);
    // Both jobs: the error's traceback names line 6 of context.ts, whichever way the module was imported.
    for (const job of [first, second]) expect(job.stderr).toMatch(/RangeError: out of range here\n\s+at .*context\.ts:6:/);
    const rows = new Map(runVariableRows(dir, { proposal: PROPOSAL, run: 1 }).map((r) => [r.name, r]));
    expect(rows.get("fine")!.value).toBeGreaterThan(0);
    expect(JSON.parse(rows.get("broken")!.attributes!)).toMatchObject({ error_cls: "RangeError", error: "out of range here" });
    // A third job uses the same entry; editing the context makes a new one only once it is compiled again.
    expect(extract(dir).status).toBe(0);
    expect(directEntries(dir)).toEqual(entries);
  }, 120_000);

  it("keeps contexts with helper modules on the hooks", () => {
    const dir = database(`import { Variable } from "damnit/context";\nimport { twice } from "./helpers.ts";\nexport const n = Variable((run) => twice(run.trainIds.length));\n`, {
      "helpers.ts": "export const twice = (x: number): number => 2 * x;\n",
    });
    for (let i = 0; i < 2; i++) expect(extract(dir).status).toBe(0);
    expect(directEntries(dir)).toHaveLength(0);
    const rows = runVariableRows(dir, { proposal: PROPOSAL, run: 1 });
    const trains = runVariableRows(dir, { proposal: PROPOSAL, run: 1 }).find((r) => r.name === "n")!.value as number;
    expect(rows.filter((r) => r.name === "n")).toHaveLength(1);
    expect(trains % 2).toBe(0);
  }, 120_000);
});

describe("number types", () => {
  it("stores JS numbers as float64 whole or not, bigints and integer() as int64, the same in runs.sqlite and HDF5", () => {
    const dir = database(`import { integer, Variable } from "damnit/context";
export const whole = Variable(() => 3);
export const fraction = Variable(() => 2.5);
export const count = Variable((run) => integer(run.trainIds.length));
export const big = Variable(() => 7n);
export const list = Variable(() => [1, 2, 3]);
export const from_count = Variable({ deps: { n: "var#count" } }, (_run, { n }) => n + 0.5);
`);
    const job = extract(dir);
    expect(job.status, job.stderr).toBe(0);
    const rows = new Map(runVariableRows(dir, { proposal: PROPOSAL, run: 1 }).map((r) => [r.name, r]));
    expect(rows.get("whole")).toMatchObject({ type: "real", value: 3 });
    expect(rows.get("fraction")).toMatchObject({ type: "real", value: 2.5 });
    expect(rows.get("count")!.type).toBe("integer");
    expect(rows.get("big")).toMatchObject({ type: "integer", value: 7 });
    expect(rows.get("from_count")!.value).toBe((rows.get("count")!.value as number) + 0.5);
    if (!h5pyAvailable()) return;
    const dtypes = runH5py(
      `f = h5py.File(sys.argv[1], "r")
print(json.dumps({n: [f[n + "/data"].dtype.str, f[".reduced/" + n].dtype.str] for n in ["whole", "fraction", "count", "big", "list"]}))`,
      [join(dir, "extracted_data", `p${PROPOSAL}_r1.h5`)],
    );
    expect(dtypes).toEqual({ whole: ["<f8", "<f8"], fraction: ["<f8", "<f8"], count: ["<i8", "<i8"], big: ["<i8", "<i8"], list: ["<f8", "<f8"] });
  }, 120_000);

  it("refuses integer() of what is not a whole number", () => {
    const dir = database(`import { integer, Variable } from "damnit/context";\nexport const half = Variable(() => integer(0.5));\n`);
    expect(extract(dir).status).toBe(0);
    const row = runVariableRows(dir, { proposal: PROPOSAL, run: 1 }).find((r) => r.name === "half")!;
    expect(JSON.parse(row.attributes!)).toMatchObject({ error_cls: "RangeError" });
  }, 120_000);
});

describe("the runner started before the job's options are parsed", () => {
  it("runs the job with the database's limits, in a runner started with them when they are not the defaults", () => {
    const context = `import { Variable } from "damnit/context";\nexport const heap = Variable(() => process.execArgv.find((a) => a.startsWith("--max-old-space-size=")) ?? "none");\n`;
    const dir = database(context);
    expect(extract(dir).status).toBe(0);
    const heapOf = () => runVariableRows(dir, { proposal: PROPOSAL, run: 1 }).filter((r) => r.name === "heap").at(-1)!.value;
    const defaultHeap = heapOf();
    expect(defaultHeap).toMatch(/^--max-old-space-size=\d+$/);
    expect(damnit(["db-config", "runner_memory_limit_mb", "777"], { cwd: dir }).status).toBe(0);
    expect(extract(dir).status).toBe(0);
    expect(heapOf()).toBe("--max-old-space-size=777");
  }, 120_000);

  it("does not keep a job that fails early from exiting", () => {
    const empty = join(root, `empty${++counter}`);
    const started = Date.now();
    const r = damnit(["extract", String(PROPOSAL), "1", "raw", "--dir", empty]);
    expect(r.status).toBe(1);
    expect(Date.now() - started).toBeLessThan(30_000);
  }, 60_000);
});

describe("phase timings", () => {
  it("records where a job's time went, and the peak memory of the job and its runner", () => {
    const dir = database(`import { Variable } from "damnit/context";\nexport const s = Variable((run) => run.key("SPB_XTD9_XGM/DOOCS/MAIN", "pulseEnergy.photonFlux").perTrain());\n`);
    const file = join(root, `timings-${counter}.jsonl`);
    for (let i = 0; i < 2; i++) expect(extract(dir, { DAMNIT_TIMINGS_FILE: file }).status).toBe(0);
    const records = readFileSync(file, "utf8").trim().split("\n").map((l) => JSON.parse(l) as Record<string, number>);
    expect(records).toHaveLength(2);
    for (const r of records) {
      expect(r).toMatchObject({ proposal: PROPOSAL, run: 1 });
      for (const phase of ["sinceProcessStart", "runner", "context", "open", "read", "variables", "store", "total"]) expect(r[phase], phase).toBeGreaterThanOrEqual(0);
      expect(r.read!).toBeGreaterThan(0);
      expect(r.runner! + r.context! + r.open! + r.read! + r.variables! + r.store!).toBeLessThanOrEqual(r.total! + 1e-6);
      expect(r.jobPeakMb!).toBeGreaterThan(20);
      expect(r.runnerPeakMb!).toBeGreaterThan(20);
    }
    expect(statSync(file).mode & 0o777).toBe(0o600);
  }, 120_000);
});
