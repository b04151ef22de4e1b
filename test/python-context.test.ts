/**
 * Python context files (context.py) through the CLI: DAMNIT's API (damnit_ctx) in Debian's /usr/bin/python3, the
 * same semantics as TS contexts (deps, globs, meta, params, defaults, Skip, transient, --var), values crossing as
 * .npy (complex too), one clear error each for bad input, and one warm Python process for runs processed one
 * after the other. Skips without numpy/extra_data unless
 * REQUIRE_PYTHON_CONTEXT=1.
 */
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { damnit } from "./helpers/cli.js";
import { runVariableRows } from "./helpers/db.js";
import { h5pyAvailable } from "./helpers/h5py.js";
import { tempDir } from "./helpers/tmp.js";

const PYTHON = "/usr/bin/python3";
const PROPOSAL = 4321;
const RUN = 7;

function pythonReady(): boolean {
  const probe = spawnSync(PYTHON, ["-c", "import numpy, extra_data"], { timeout: 60_000 });
  if (probe.status === 0) return true;
  if (process.env.REQUIRE_PYTHON_CONTEXT === "1") throw new Error("REQUIRE_PYTHON_CONTEXT=1 but /usr/bin/python3 cannot import numpy and extra_data");
  console.warn("skipping Python context tests: /usr/bin/python3 lacks numpy or extra_data");
  return false;
}

const ready = pythonReady();

function setup(context: string, python = PYTHON): string {
  const dir = tempDir("damnit-py-");
  expect(damnit(["proposal", String(PROPOSAL), dir]).status).toBe(0);
  expect(damnit(["db-config", "context_python", python], { cwd: dir }).status).toBe(0);
  writeFileSync(join(dir, "context.py"), context);
  return dir;
}

function extractWith(context: string, ...extra: string[]) {
  const dir = setup(context);
  const result = damnit(["extract", String(PROPOSAL), String(RUN), "raw", "--mock", ...extra], { cwd: dir });
  const rows = runVariableRows(dir, { run: RUN });
  const values = new Map(rows.map((r) => [r.name, r.value]));
  const errors = new Map(rows.filter((r) => r.attributes?.includes('"error"')).map((r) => [r.name, JSON.parse(r.attributes!) as { error: string; error_cls: string }]));
  return { dir, result, values, errors, names: rows.map((r) => r.name) };
}

describe.skipIf(!ready)("Python context files", () => {
  it("passes dependencies, globs, meta values, parameters and defaults, in DAMNIT's order", () => {
    const { result, values, errors } = extractWith(
      `import json
from damnit_ctx import Variable, Skip

@Variable()
def xgm_a(run): return 1

@Variable()
def xgm_b(run): return 2

@Variable()
def xgm_none(run): return None

@Variable()
def xgm_sum(run, all: "var#xgm_[a-z]*"): return json.dumps(all, sort_keys=True)

@Variable()
def who(run, r: "meta#run_number", p: "meta#proposal"): return f"{p}/{r}"

@Variable()
def scaled(run, k: "param#k", a: "var#xgm_a"): return k * a

@Variable()
def fallback(run, x: "var#xgm_none" = 40): return x + 2

@Variable()
def skipped(run): raise Skip("not today")

@Variable()
def after_skip(run, s: "var#skipped"): return 1

@Variable(transient=True)
def hidden(run): return 5

@Variable()
def uses_hidden(run, h: "var#hidden"): return h * 2
`,
      "--param",
      "k=21",
    );
    expect(result.status, result.stderr).toBe(0);
    expect(values.get("xgm_sum")).toBe('{"xgm_a": 1, "xgm_b": 2}');
    expect(values.get("who")).toBe(`${PROPOSAL}/${RUN}`);
    expect(values.get("scaled")).toBe(21);
    expect(values.get("fallback")).toBe(42);
    expect(values.has("xgm_none")).toBe(false);
    expect(errors.get("skipped")).toEqual({ error: "not today", error_cls: "Skip" });
    expect(errors.get("after_skip")?.error_cls).toBe("Skip");
    expect(values.has("hidden")).toBe(false);
    expect(values.get("uses_hidden")).toBe(10);
  });

  it("stores numpy arrays of any dtype, complex too, and an unsupported value as that variable's error", () => {
    const { dir, result, errors, values } = extractWith(`import numpy as np
from damnit_ctx import Variable, Cell

@Variable()
def ints(run): return np.arange(6, dtype=np.uint16).reshape(2, 3)

@Variable()
def cplx(run): return np.array([1 + 2j, 3 - 4j], dtype=np.complex64)

@Variable()
def odd(run): return object()

@Variable()
def cell(run): return Cell(np.arange(3.0), summary="max", bold=True)

@Variable()
def after(run, c: "var#cell"): return float(c.sum())
`);
    expect(result.status, result.stderr).toBe(0);
    // complex arrays are stored (python-results.test.ts checks them against numpy)
    expect(errors.has("cplx")).toBe(false);
    expect(errors.get("odd")?.error_cls).toBe("TypeError");
    expect(errors.get("odd")?.error).toContain("builtins.object cannot be saved");
    expect(values.get("cell")).toBe(2);
    expect(values.get("after")).toBe(3);
    const h5 = spawnSync(
      PYTHON,
      ["-c", "import h5py,sys,json; f=h5py.File(sys.argv[1]); print(json.dumps([f['ints/data'][()].tolist(), str(f['ints/data'].dtype)]))", join(dir, "extracted_data", `p${PROPOSAL}_r${RUN}.h5`)],
      { encoding: "utf8", timeout: 60_000 },
    );
    if (h5pyAvailable()) {
      expect(h5.status, h5.stderr).toBe(0);
      expect(JSON.parse(h5.stdout)).toEqual([[[0, 1, 2], [3, 4, 5]], "uint16"]);
    }
  });

  it("lists the variables with read-context and selects with --var", () => {
    const dir = setup(`from damnit_ctx import Variable

@Variable(title="A/first", units="mm")
def a(run):
    """The first"""
    return 1

@Variable()
def b(run, x: "var#a"): return x + 1

@Variable()
def c(run): return 3
`);
    const read = damnit(["read-context"], { cwd: dir });
    expect(read.status, read.stderr).toBe(0);
    expect(read.stdout).toContain("A/first");
    const ex = damnit(["extract", String(PROPOSAL), String(RUN), "raw", "--mock", "--var", "b"], { cwd: dir });
    expect(ex.status, ex.stderr).toBe(0);
    const names = runVariableRows(dir, { run: RUN }).map((r) => r.name).filter((n) => n !== "start_time").sort();
    expect(names).toEqual(["a", "b"]);
  });

  it("reports a syntax error with file, line and column, and a missing module by name", () => {
    const dir = setup("from damnit_ctx import Variable\n\n@Variable()\ndef a(run):\n    return (1 +\n");
    const read = damnit(["read-context"], { cwd: dir });
    expect(read.status).toBe(1);
    expect(read.stderr).toMatch(/context\.py:5: syntax error: .*\(line 5, column \d+\)/);
    writeFileSync(join(dir, "context.py"), "import no_such_module_here\n");
    const missing = damnit(["read-context"], { cwd: dir });
    expect(missing.status).toBe(1);
    expect(missing.stderr).toContain("context.py:1: cannot import 'no_such_module_here'");
  });

  it("names a missing interpreter, and both context.py and context.ts", () => {
    const dir = setup("from damnit_ctx import Variable\n", "/nonexistent/python3");
    const read = damnit(["read-context"], { cwd: dir });
    expect(read.status).toBe(1);
    expect(read.stderr).toContain("'/nonexistent/python3' (context_python) was not found");
    writeFileSync(join(dir, "context.ts"), "export {};\n");
    const both = damnit(["read-context"], { cwd: dir });
    expect(both.status).toBe(1);
    expect(both.stderr).toContain("has both context.py and context.ts");
  });
});

describe.skipIf(!ready)("a Python context's runner kept warm", () => {
  it("reprocessing runs one after the other uses one Python process while context.py is unchanged, and a new one after an edit", () => {
    const dir = setup("import os\nfrom damnit_ctx import Variable\n\n@Variable()\ndef pid(run): return os.getpid()\n");
    const first = damnit(["reprocess", "1-3", "--local", "--mock", "--concurrency", "1"], { cwd: dir });
    expect(first.status, first.stderr).toBe(0);
    const pids = [1, 2, 3].map((run) => runVariableRows(dir, { run }).find((r) => r.name === "pid")?.value);
    expect(pids.every((p) => typeof p === "number")).toBe(true);
    expect(new Set(pids).size).toBe(1);
    writeFileSync(join(dir, "context.py"), "import os\nfrom damnit_ctx import Variable\n\n@Variable()\ndef pid(run): return os.getpid()\n\n@Variable()\ndef other(run): return 1\n");
    const second = damnit(["reprocess", "1-2", "--local", "--mock", "--concurrency", "1"], { cwd: dir });
    expect(second.status, second.stderr).toBe(0);
    const after = [1, 2].map((run) => runVariableRows(dir, { run }).find((r) => r.name === "pid")?.value);
    expect(after[0]).toBe(after[1]);
    expect(after[0]).not.toBe(pids[0]);
    expect(runVariableRows(dir, { run: 2 }).find((r) => r.name === "other")?.value).toBe(1);
  });
});
