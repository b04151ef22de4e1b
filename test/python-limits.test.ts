/**
 * Python context files at their limits and with bad input (issue 12): a Python process that crashes, is killed,
 * hangs (variable_timeout) or runs out of memory (runner_memory_limit_mb as RLIMIT_AS) is that variable's error and
 * the other variables still run, in a fresh runner; a context that hangs while loading is stopped; an interpreter
 * without numpy or extra_data is named with the module and the Debian package. Debian's /usr/bin/python3; fails
 * rather than skips with REQUIRE_PYTHON_CONTEXT=1.
 */
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readFileSync, readlinkSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { damnit } from "./helpers/cli.js";
import { runVariableRows } from "./helpers/db.js";
import { tempDir } from "./helpers/tmp.js";

const PYTHON = "/usr/bin/python3";
const PROPOSAL = 4321;
const RUN = 3;

function pythonReady(): boolean {
  const probe = spawnSync(PYTHON, ["-c", "import numpy, extra_data"], { timeout: 60_000 });
  if (probe.status === 0) return true;
  if (process.env.REQUIRE_PYTHON_CONTEXT === "1") throw new Error("REQUIRE_PYTHON_CONTEXT=1 but /usr/bin/python3 cannot import numpy and extra_data");
  console.warn("skipping Python context tests: /usr/bin/python3 lacks numpy or extra_data");
  return false;
}

const ready = pythonReady();

function readlinkOr(path: string): string {
  try {
    return readlinkSync(path);
  } catch {
    return "";
  }
}

function setup(context: string, settings: Array<[string, string]> = [], python = PYTHON): string {
  const dir = tempDir("damnit-pylim-");
  expect(damnit(["proposal", String(PROPOSAL), dir]).status).toBe(0);
  for (const [key, value] of [["context_python", python], ...settings] as Array<[string, string]>) {
    const r = damnit(["db-config", key, value], { cwd: dir });
    expect(r.status, r.stderr).toBe(0);
  }
  writeFileSync(join(dir, "context.py"), context);
  return dir;
}

function extract(dir: string) {
  const started = performance.now();
  const result = damnit(["extract", String(PROPOSAL), String(RUN), "raw", "--mock"], { cwd: dir });
  const seconds = (performance.now() - started) / 1000;
  const rows = runVariableRows(dir, { run: RUN });
  const values = new Map(rows.filter((r) => r.value !== null).map((r) => [r.name, r.value]));
  const errors = new Map(
    rows.filter((r) => r.attributes?.includes('"error"')).map((r) => [r.name, JSON.parse(r.attributes!) as { error: string; error_cls: string }]),
  );
  return { result, values, errors, seconds };
}

/** A context whose `bad` variable does `body`; `before` and `after` are computed around it, `needs_bad` depends on it. */
function around(body: string, imports = ""): string {
  return `import os, signal, time
${imports}
from damnit_ctx import Variable

@Variable()
def before(run): return 1.5

@Variable()
def bad(run):
${body
  .split("\n")
  .map((l) => `    ${l}`)
  .join("\n")}

@Variable()
def after(run): return 7

@Variable()
def needs_bad(run, b: "var#bad"): return b
`;
}

describe.skipIf(!ready)("a Python variable that crashes, hangs or runs out of memory", () => {
  it("a native crash (SIGSEGV) is that variable's RunnerCrash; the others are stored, its dependent is skipped", () => {
    const dir = setup(around("os.kill(os.getpid(), signal.SIGSEGV)"));
    const { result, values, errors } = extract(dir);
    expect(result.status, result.stderr).toBe(0);
    expect(values.get("before")).toBe(1.5);
    expect(values.get("after")).toBe(7);
    expect(errors.get("bad")?.error_cls).toBe("RunnerCrash");
    expect(errors.get("bad")?.error).toBe("the Python process crashed (SIGSEGV) while computing bad");
    expect(errors.get("needs_bad")?.error_cls).toBe("DependencyError");
    expect(errors.get("needs_bad")?.error).toContain("(bad) failed: RunnerCrash");
  });

  it("a killed Python process and os._exit are the variable's error too, and earlier values of the others stay", () => {
    const dir = setup(around("os.kill(os.getpid(), signal.SIGKILL)"));
    const first = extract(dir);
    expect(first.result.status, first.result.stderr).toBe(0);
    expect(first.errors.get("bad")).toEqual({
      error_cls: "RunnerCrash",
      error: "the Python process was killed (SIGKILL: out of memory, or killed from outside) while computing bad",
    });
    expect(first.values.get("after")).toBe(7);
    writeFileSync(join(dir, "context.py"), around("os._exit(3)"));
    const second = extract(dir);
    expect(second.result.status, second.result.stderr).toBe(0);
    expect(second.errors.get("bad")).toEqual({ error_cls: "RunnerCrash", error: "the Python process exited (code 3) while computing bad" });
    expect(second.values.get("before")).toBe(1.5);
    expect(second.values.get("after")).toBe(7);
  });

  it("a variable running past variable_timeout is stopped as a TimeoutError and the job goes on", () => {
    // `bad` leaves its process id behind, so that the check below looks at the stopped process itself (the job's
    // fresh runner for the remaining variables exits on its own, just after the job).
    const dir = setup(around('open("bad.pid", "w").write(str(os.getpid()))\ntime.sleep(600)'), [["variable_timeout", "4"]]);
    const { result, values, errors, seconds } = extract(dir);
    expect(result.status, result.stderr).toBe(0);
    expect(errors.get("bad")).toEqual({ error_cls: "TimeoutError", error: "bad did not finish within 4 s and was stopped" });
    expect(values.get("before")).toBe(1.5);
    expect(values.get("after")).toBe(7);
    expect(seconds).toBeLessThan(50);
    // The stopped Python process did not outlive its runner: gone, or a zombie waiting to be reaped.
    const pid = readFileSync(join(dir, "bad.pid"), "utf8").trim();
    expect(pid).toMatch(/^\d+$/);
    const status = existsSync(`/proc/${pid}/status`) ? readFileSync(`/proc/${pid}/status`, "utf8") : "";
    const alive = status !== "" && !/^State:\s+[ZX]/m.test(status) && readlinkOr(`/proc/${pid}/cwd`) === dir;
    expect(alive, `process ${pid} still runs: ${status.split("\n").slice(0, 3).join(" ")}`).toBe(false);
  });

  it("a hang in native code (holding the interpreter lock) is stopped as well", () => {
    const dir = setup(around("ctypes.CDLL(None).sleep(600)", "import ctypes"), [["variable_timeout", "4"]]);
    const { result, values, errors } = extract(dir);
    expect(result.status, result.stderr).toBe(0);
    expect(errors.get("bad")?.error_cls).toBe("TimeoutError");
    expect(values.get("after")).toBe(7);
  });

  it("more memory than runner_memory_limit_mb is the variable's MemoryError; the Python process lives on", () => {
    const dir = setup(around("return np.ones(2**31).sum()", "import numpy as np"), [["runner_memory_limit_mb", "2000"]]);
    const { result, values, errors } = extract(dir);
    expect(result.status, result.stderr).toBe(0);
    expect(errors.get("bad")?.error_cls).toBe("MemoryError");
    expect(errors.get("bad")?.error).toContain("Unable to allocate 16.0 GiB");
    expect(values.get("before")).toBe(1.5);
    expect(values.get("after")).toBe(7);
  });
});

describe.skipIf(!ready)("bad Python environments and context files", () => {
  it("a context that hangs while loading is stopped after variable_timeout, and the job fails naming it", () => {
    const dir = setup("import time\ntime.sleep(600)\n", [["variable_timeout", "4"]]);
    const started = performance.now();
    const r = damnit(["extract", String(PROPOSAL), String(RUN), "raw", "--mock"], { cwd: dir });
    expect((performance.now() - started) / 1000).toBeLessThan(50);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain("loading the context file and opening the run did not finish within 4 s and was stopped");
    expect(runVariableRows(dir, { run: RUN })).toEqual([]);
  });

  it("an interpreter without numpy is named with the module and the Debian package", () => {
    // Debian's python3 without its site packages (-S): no numpy, no extra_data.
    const bin = join(tempDir("damnit-pybin-"), "python3-bare");
    writeFileSync(bin, `#!/bin/sh\nexec ${PYTHON} -S "$@"\n`);
    chmodSync(bin, 0o755);
    const dir = setup("from damnit_ctx import Variable\n\n@Variable()\ndef a(run): return 1\n", [], bin);
    const r = damnit(["read-context"], { cwd: dir });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`the Python interpreter '${bin}' has no module 'numpy' (install the Debian package python3-numpy)`);
  });

  it("an interpreter with numpy but without extra_data: each variable's error names extra_data and python3-extra-data", () => {
    // Only numpy on the path of a site-less Debian python3.
    const root = tempDir("damnit-pybin-");
    const lib = join(root, "lib");
    mkdirSync(lib);
    symlinkSync("/usr/lib/python3/dist-packages/numpy", join(lib, "numpy"));
    const bin = join(root, "python3-numpy-only");
    writeFileSync(bin, `#!/bin/sh\nPYTHONPATH="$PYTHONPATH:${lib}" exec ${PYTHON} -S "$@"\n`);
    chmodSync(bin, 0o755);
    const dir = setup("from damnit_ctx import Variable\n\n@Variable()\ndef a(run): return 1\n", [], bin);
    const { errors } = extract(dir);
    expect(errors.get("a")).toEqual({
      error_cls: "ModuleNotFoundError",
      error: `the Python interpreter '${bin}' has no module 'extra_data' (install the Debian package python3-extra-data, or pip install extra_data)`,
    });
  });

  it("an import error names the file and line; a NameError at load names the line too", () => {
    const dir = setup("from damnit_ctx import Variable\nimport numpy as np\n\nfrom numpy import no_such_name\n");
    const r = damnit(["read-context"], { cwd: dir });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/context\.py:4: .*ImportError: cannot import name 'no_such_name'/);
    writeFileSync(join(dir, "context.py"), "from damnit_ctx import Variable\n\nx = undefined_thing + 1\n");
    const n = damnit(["read-context"], { cwd: dir });
    expect(n.status).toBe(1);
    expect(n.stderr).toMatch(/context\.py:3: .*NameError: name 'undefined_thing' is not defined/);
  });
});
