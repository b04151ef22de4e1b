/**
 * `calibration.get` / `calibration.add` from a Python context file (python/damnit_ctx/calibration.py), end to end on
 * synthetic runs through the real CLI with Debian's /usr/bin/python3: a dark run's variable adds pedestals (float32
 * with a NaN, exact), later runs' variables subtract them and the usage record and the run file's `calibration`
 * attribute (read with h5py) credit each variable with the version; a newer version changes only runs processed
 * after it; `reprocess --pin-calibration` gives the old values back; no constants is a CalibrationNotFoundError
 * naming detector, ctype and time; a value of the wrong kind is a CalibrationError and changes nothing.
 */
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { CalibUsageStore } from "../src/calibration/usage.js";
import { trainTimestampNs } from "../src/synth/layout.js";
import { damnit, expectOk as ok } from "./helpers/cli.js";
import { runValues as values, runVariableError as errorOf } from "./helpers/db.js";
import { h5pyAvailable, runH5py } from "./helpers/h5py.js";
import { tempDir } from "./helpers/tmp.js";

function pythonReady(): boolean {
  if (spawnSync("/usr/bin/python3", ["-c", "import numpy, extra_data"], { timeout: 60_000 }).status === 0) return true;
  if (process.env.REQUIRE_PYTHON_CONTEXT === "1") throw new Error("REQUIRE_PYTHON_CONTEXT=1 but /usr/bin/python3 cannot import numpy and extra_data");
  return false;
}

const PROPOSAL = 1234;
const DET = "jungfrau-0042";
const DARK_RUN = 1;

const CONTEXT = `import numpy as np
from damnit_ctx import Variable, Skip, calibration, CalibrationNotFoundError

DET = ${JSON.stringify(DET)}


@Variable()
def dark_pedestals(run, number: "meta#run_number", offset: "param#offset" = 0):
    """The dark run's pedestals [trains + offset, 0.1, NaN] (float32) into the local store."""
    if number != ${DARK_RUN}:
        raise Skip("not a dark run")
    n = len(run.train_ids)
    added = calibration.add(detector=DET, ctype="pedestals", data=np.array([n + offset, 0.1, np.nan], dtype=np.float32),
                            message="dark")
    assert added.detname == DET and added.range.endswith("-end"), added
    return added.version


@Variable()
def corrected(run, number: "meta#run_number"):
    if number == ${DARK_RUN}:
        raise Skip("dark run")
    ped = calibration.get(detector=DET, ctype="pedestals")
    assert ped.dtype == "float32" and ped.data.shape == (3,) and ped.level == "local", ped
    assert ped.data[1] == np.float32(0.1) and np.isnan(ped.data[2]), ped.data
    return len(run.train_ids) * 100 - float(ped.data[0])


@Variable()
def ped_version(run, number: "meta#run_number"):
    if number == ${DARK_RUN}:
        raise Skip("dark run")
    return calibration.get(detector=DET, ctype="pedestals").version


@Variable()
def mask(run):
    return calibration.get(detector=DET, ctype="pixel_mask").version


@Variable()
def caught(run):
    try:
        calibration.get(detector=DET, ctype="pixel_gain", at=100)
    except CalibrationNotFoundError as exc:
        return "caught: " + str(exc)


@Variable()
def text_pedestals(run, number: "meta#run_number"):
    if number != ${DARK_RUN}:
        raise Skip("not a dark run")
    return calibration.add(detector=DET, ctype="pedestals", data="not numbers").version
`;

describe("calibration.get / calibration.add from a Python context", () => {
  it.runIf(pythonReady())("dark run adds, later runs subtract and record; newer versions change new runs only; --pin-calibration replays; errors are clear", () => {
    const root = tempDir("calib-pyapi-");
    const data = join(root, "data");
    const dir = join(root, "db");
    ok(damnit(["synth", data, "--proposal", String(PROPOSAL), "--runs", "3"]));
    ok(damnit(["proposal", String(PROPOSAL), dir]));
    ok(damnit(["db-config", "data_root", data], { cwd: dir }));
    ok(damnit(["db-config", "context_python", "/usr/bin/python3"], { cwd: dir }));
    writeFileSync(join(dir, "context.py"), CONTEXT);
    const extract = (run: number, ...more: string[]) => ok(damnit(["extract", String(PROPOSAL), String(run), "raw", ...more], { cwd: dir }));

    extract(DARK_RUN);
    expect(values(dir, DARK_RUN).get("dark_pedestals")).toBe(1);
    const start1 = Number(trainTimestampNs(DARK_RUN, 0) / 1_000_000n) / 1000;
    const range = `${Math.floor(start1)}-end`;
    const shown = ok(damnit(["calib", "print", "--store", join(dir, "calib")]));
    expect(shown.stdout).toContain(`${range}  begin=${start1} end=end versdef=0`);
    // Text for an array ctype: the store's own error, as a CalibrationError, and no version was added.
    const bad = errorOf(dir, DARK_RUN, "text_pedestals");
    expect(bad.error_cls).toBe("CalibrationError");
    expect(bad.error).toBe("pedestals constants are float32 arrays, not text");
    extract(2);
    extract(3);
    // Exactly what Python gave: float32 0.1 and NaN, bit for bit.
    const got = ok(damnit(["calib", "get", "-d", DET, "-t", "pedestals", "--run", "2", "--store", "calib", "--file", join(root, "ped.npy")], { cwd: dir }));
    expect(got.stdout).toContain(`range ${range} version 1`);
    const bits = spawnSync("/usr/bin/python3", ["-c", "import numpy, sys; a = numpy.load(sys.argv[1]); print(a.dtype, a.view('u4').tolist())", join(root, "ped.npy")], { encoding: "utf8" });
    const f32 = (x: number) => new Uint32Array(Float32Array.of(x).buffer)[0];
    expect(bits.stdout.trim()).toMatch(new RegExp(`^float32 \\[\\d+, ${f32(0.1)}, ${f32(NaN)}\\]$`));

    const v2 = values(dir, 2);
    expect(v2.get("ped_version")).toBe(1);
    const n = (v2.get("corrected") as number) / 99; // corrected = 100 n − n
    expect(Number.isInteger(n) && n > 0).toBe(true);
    expect(values(dir, 3).get("corrected")).toBe(99 * n);

    // Not found: the variable's error names detector, ctype and time; caught, it is an ordinary exception.
    const mask = errorOf(dir, 2, "mask");
    expect(mask.error_cls).toBe("CalibrationNotFoundError");
    expect(mask.error).toMatch(/^no pixel_mask constants for detector jungfrau-0042 at \d/);
    expect(v2.get("caught")).toMatch(/^caught: no pixel_gain constants for detector jungfrau-0042 at 100\b/);

    // Each lookup credited to its variable, with the version.
    const usage = CalibUsageStore.open(dir, { readonly: true })!;
    expect(usage.list({ runs: [2] }).map((u) => [u.variable, u.detname, u.ctype, u.range, u.version, u.level])).toEqual([
      ["corrected", DET, "pedestals", range, 1, "local"],
      ["ped_version", DET, "pedestals", range, 1, "local"],
    ]);
    usage.close();
    if (h5pyAvailable()) {
      const attr = runH5py(`print(json.dumps(json.loads(h5py.File(sys.argv[1], "r")[".reduced/corrected"].attrs["calibration"])))`, [
        join(dir, "extracted_data", `p${PROPOSAL}_r2.h5`),
      ]);
      expect(attr).toEqual([{ detector: DET, detname: DET, ctype: "pedestals", range, version: 1, level: "local" }]);
    }

    // A corrected dark: version 2 of the same range. Only runs processed from now on see it.
    extract(DARK_RUN, "--param", "offset=5");
    expect(values(dir, DARK_RUN).get("dark_pedestals")).toBe(2);
    expect([values(dir, 2).get("ped_version"), values(dir, 2).get("corrected")]).toEqual([1, 99 * n]);
    ok(damnit(["reprocess", "3", "--local"], { cwd: dir }));
    expect([values(dir, 3).get("ped_version"), values(dir, 3).get("corrected")]).toEqual([2, 99 * n - 5]);
    ok(damnit(["reprocess", "2", "--local", "--pin-calibration"], { cwd: dir }));
    expect([values(dir, 2).get("ped_version"), values(dir, 2).get("corrected")]).toEqual([1, 99 * n]);
  }, 300_000);

  it.runIf(pythonReady())("get's at (epoch or aware datetime) and version, add's begin; bad arguments are CalibrationErrors; no calls outside a variable", () => {
    const dir = tempDir("calib-pyargs-");
    ok(damnit(["proposal", String(PROPOSAL), dir]));
    ok(damnit(["db-config", "context_python", "/usr/bin/python3"], { cwd: dir }));
    const context = (body: string) => writeFileSync(join(dir, "context.py"), `import datetime\nimport numpy as np\nfrom damnit_ctx import Variable, calibration, CalibrationError\nDET = ${JSON.stringify(DET)}\n${body}`);
    context(`
@Variable()
def added(run):
    a = calibration.add(detector=DET, ctype="pixel_status", data=np.arange(6, dtype=np.int64).reshape(2, 3), begin=1000)
    b = calibration.add(detector=DET, ctype="pixel_status", data=[[9, 9, 9], [9, 9, 9]], begin=datetime.datetime.fromtimestamp(2000, datetime.timezone.utc))
    g = calibration.add(detector=DET, ctype="geometry", data="QUAD:V2 1\\n", begin=1000)
    return f"{a.range} v{a.version} {b.range} v{b.version} {g.range}"

@Variable()
def looked(run, a: "var#added"):
    at = calibration.get(detector=DET, ctype="pixel_status", at=1500)
    later = calibration.get(detector=DET, ctype="pixel_status", at=datetime.datetime.fromtimestamp(2500, datetime.timezone.utc))
    v1 = calibration.get(detector=DET, ctype="pixel_status", at=2500, version=1)
    geo = calibration.get(detector=DET, ctype="geometry", at=1000)
    return f"{at.data.dtype}{at.data.shape} {at.data.tolist()} {later.data[0, 0]} {v1.version} {v1.range} {geo.text!r}"

def refused(f):
    try:
        f()
    except CalibrationError as exc:
        return type(exc).__name__ + ": " + str(exc)
    return "accepted"

@Variable()
def bad(run, a: "var#added"):
    return " | ".join([
        refused(lambda: calibration.add(detector=DET, ctype="pedestals", data=["a", "b"])),
        refused(lambda: calibration.get(detector=DET, ctype="pedestals", at=datetime.datetime(2020, 1, 1))),
        refused(lambda: calibration.get(detector=DET, ctype="pedestals", at="yesterday")),
        refused(lambda: calibration.get(detector=DET, ctype="no_such_type", at=1)),
        refused(lambda: calibration.get(detector=DET, ctype="pixel_status", at=1500, version=7)),
        refused(lambda: calibration.get(detector=DET, ctype="pixel_status", at=float("nan"))),
        refused(lambda: calibration.add(detector=None, ctype="pixel_status", data=[1])),
    ])
`);
    ok(damnit(["extract", String(PROPOSAL), "5", "raw", "--mock"], { cwd: dir }));
    const v = values(dir, 5);
    expect(v.get("added")).toBe("1000-end v1 2000-end v1 1000-end");
    expect(v.get("looked")).toBe("uint16(2, 3) [[0, 1, 2], [3, 4, 5]] 9 1 2000-end 'QUAD:V2 1\\n'");
    const bad = String(v.get("bad")).split(" | ");
    expect(bad).toHaveLength(7);
    expect(bad[0]).toMatch(/^CalibrationError: calibration constants must be a numeric array \(or str for geometry\), not list of dtype <U1$/);
    expect(bad[1]).toBe("CalibrationError: at must be an epoch time in seconds or a datetime with a time zone, not the naive datetime 2020-01-01T00:00:00");
    expect(bad[2]).toBe("CalibrationError: at must be an epoch time in seconds or a datetime, not str");
    expect(bad[3]).toMatch(/^CalibrationError: .*no_such_type/);
    expect(bad[4]).toMatch(/^CalibrationNotFoundError: no pixel_status constants for detector jungfrau-0042 at 1500\b.*version 7/);
    expect(bad.slice(5)).toEqual(["CalibrationError: at must be a finite epoch time in seconds, not nan", "CalibrationError: detector must be a str, not NoneType"]);

    // At module level there is no variable, hence no run: the context file fails to load, saying why.
    context(`calibration.get(detector=DET, ctype="pedestals")\n`);
    const failed = damnit(["extract", String(PROPOSAL), "5", "raw", "--mock"], { cwd: dir });
    expect(`${failed.stdout}${failed.stderr}`).toContain("CalibrationError: calibration constants are only available inside a variable while damnit processes a run");
  }, 120_000);
});
