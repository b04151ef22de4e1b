/**
 * Calibration constants end to end on synthetic runs through the real CLI (`damnit synth`, `extract`, `reprocess
 * --local`, `calib`): a dark run's context variable adds pedestals, later runs' variables subtract them and record
 * the version (runs.sqlite values, `<db_dir>/calibration_usage.sqlite`, the run file's `calibration` attribute read
 * with h5py); a newer version changes newly processed runs only; `reprocess --pin-calibration` gives the old values
 * back, and a pinned version since deleted fails the variable naming it.
 */
import { spawnSync } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { CalibUsageStore } from "../src/calibration/usage.js";
import { trainTimestampNs } from "../src/synth/layout.js";
import { damnit, expectOk as ok } from "./helpers/cli.js";
import { runValues as values, runVariableError as errorOf } from "./helpers/db.js";
import { h5pyAvailable, runH5py } from "./helpers/h5py.js";
import { tempDir } from "./helpers/tmp.js";
import { encodeNpy } from "../src/db/npy.js";
import { ndarray } from "../src/core/ndarray.js";

function pythonReady(): boolean {
  if (spawnSync("/usr/bin/python3", ["-c", "import numpy, extra_data"], { timeout: 60_000 }).status === 0) return true;
  if (process.env.REQUIRE_PYTHON_CONTEXT === "1") throw new Error("REQUIRE_PYTHON_CONTEXT=1 but /usr/bin/python3 cannot import numpy and extra_data");
  return false;
}

const PROPOSAL = 1234;
const DET = "jungfrau-0042";
const DARK_RUN = 1;

const CONTEXT = `import { Variable, Skip, calibration } from "damnit/context";
import { np } from "damnit/array";
const DET = ${JSON.stringify(DET)};
/** The dark run's pedestals: [trains + offset, 2 × trains + offset], stored in the local calibration store. */
export const dark_pedestals = Variable({ deps: { run: "meta#run_number", offset: { from: "param#offset", default: 0 } } }, (data, { run, offset }) => {
  if (run !== ${DARK_RUN}) throw new Skip("not a dark run");
  const n = data.trainIds.length;
  return calibration.add({ detector: DET, ctype: "pedestals", value: np.asArray([n + offset, 2 * n + offset]), message: "dark" }).version;
});
/** Trains minus the first pedestal of the constants that apply at the run's start. */
export const corrected = Variable({ deps: { run: "meta#run_number" } }, (data, { run }) => {
  if (run === ${DARK_RUN}) throw new Skip("dark run");
  const ped = calibration.get({ detector: DET, ctype: "pedestals" });
  return data.trainIds.length * 100 - ped.data.data[0];
});
export const ped_version = Variable({ deps: { run: "meta#run_number", ped: { from: "cal#${DET}/pedestals", default: null } } }, (_data, { run, ped }) => {
  if (run === ${DARK_RUN}) throw new Skip("dark run");
  return ped.version;
});
/** No gains were ever added: the default of the dependency. */
export const has_gain = Variable({ deps: { gain: { from: "cal#${DET}/pixel_gain", default: null } } }, (_data, { gain }) => (gain === null ? 0 : 1));
`;

describe("calibration constants in context runs", () => {
  it("dark run adds, later runs subtract and record; newer versions change new runs only; --pin-calibration replays; deleted pins fail clearly", () => {
    const root = tempDir("calib-e2e-");
    const data = join(root, "data");
    const dir = join(root, "db");
    ok(damnit(["synth", data, "--proposal", String(PROPOSAL), "--runs", "4"]));
    ok(damnit(["proposal", String(PROPOSAL), dir]));
    ok(damnit(["db-config", "data_root", data], { cwd: dir }));
    writeFileSync(join(dir, "context.ts"), CONTEXT);
    const extract = (run: number, ...more: string[]) => ok(damnit(["extract", String(PROPOSAL), String(run), "raw", ...more], { cwd: dir }));

    extract(DARK_RUN);
    const trains = values(dir, DARK_RUN);
    expect(trains.get("dark_pedestals")).toBe(1);
    const start1 = Number(trainTimestampNs(DARK_RUN, 0) / 1_000_000n) / 1000;
    const range = `${Math.floor(start1)}-end`;
    const shown = ok(damnit(["calib", "print", "--store", join(dir, "calib")]));
    expect(shown.stdout).toContain(`${range}  begin=${start1} end=end versdef=0`);

    extract(2);
    extract(3);
    const got = ok(damnit(["calib", "get", "-d", DET, "-t", "pedestals", "--run", "2", "--store", "calib"], { cwd: dir }));
    expect(got.stdout).toContain(`range ${range} version 1`);
    const v2 = values(dir, 2);
    expect(v2.get("ped_version")).toBe(1);
    const n = (v2.get("corrected") as number) / 99; // corrected = 100 n − n
    expect(Number.isInteger(n) && n > 0).toBe(true);
    expect(values(dir, 3).get("corrected")).toBe(99 * n);
    expect(values(dir, 3).get("has_gain")).toBe(0);

    // What each run used: the usage record and `damnit calib used`.
    const usage = CalibUsageStore.open(dir, { readonly: true })!;
    expect(usage.list({ runs: [2] }).map((u) => [u.variable, u.detname, u.ctype, u.range, u.version, u.level])).toEqual([
      ["corrected", DET, "pedestals", range, 1, "local"],
      ["ped_version", DET, "pedestals", range, 1, "local"],
    ]);
    usage.close();
    const used = ok(damnit(["calib", "used", "--run", "2", "--json"], { cwd: dir }));
    expect((JSON.parse(used.stdout) as Array<{ run: number; variable: string; version: number }>).map((u) => [u.run, u.variable, u.version])).toEqual([
      [2, "corrected", 1],
      [2, "ped_version", 1],
    ]);

    // A corrected dark: version 2 of the same range. Only newly processed runs see it.
    extract(DARK_RUN, "--param", "offset=5");
    expect(values(dir, DARK_RUN).get("dark_pedestals")).toBe(2);
    extract(4);
    expect([values(dir, 4).get("ped_version"), values(dir, 4).get("corrected")]).toEqual([2, 99 * n - 5]);
    expect([values(dir, 2).get("ped_version"), values(dir, 2).get("corrected")]).toEqual([1, 99 * n]);

    // Reprocessing without pinning picks up version 2; with pinning, runs get exactly what they used before.
    ok(damnit(["reprocess", "3", "--local"], { cwd: dir }));
    expect([values(dir, 3).get("ped_version"), values(dir, 3).get("corrected")]).toEqual([2, 99 * n - 5]);
    ok(damnit(["reprocess", "2", "--local", "--pin-calibration"], { cwd: dir }));
    expect([values(dir, 2).get("ped_version"), values(dir, 2).get("corrected")]).toEqual([1, 99 * n]);

    // The run file says which constants each variable used (DAMNIT's readers ignore the attribute).
    if (h5pyAvailable()) {
      const attrs = runH5py(
        `f = h5py.File(sys.argv[1], "r")
print(json.dumps({k: json.loads(f[p].attrs["calibration"]) for k, p in [("reduced", ".reduced/corrected"), ("data", "corrected")]}))`,
        [join(dir, "extracted_data", `p${PROPOSAL}_r2.h5`)],
      ) as Record<string, unknown>;
      const expected = [{ detector: DET, detname: DET, ctype: "pedestals", range, version: 1, level: "local" }];
      expect(attrs).toEqual({ reduced: expected, data: expected });
    }

    // The pinned version is deleted: the pinned variable's error names the range and version; others are untouched.
    ok(damnit(["calib", "delversion", "-d", DET, "-t", "pedestals", "-g", range, "-v", "1", "--store", "calib"], { cwd: dir }));
    const pinned = damnit(["reprocess", "2", "--local", "--pin-calibration"], { cwd: dir });
    expect(pinned.status).toBe(0);
    const err = errorOf(dir, 2, "corrected");
    expect(err.error_cls).toBe("CalibrationNotFoundError");
    expect(err.error).toContain(`range ${range} version 1`);
    expect(existsSync(join(dir, "calibration_usage.sqlite"))).toBe(true);
  }, 240_000);

  it.runIf(pythonReady())("a Python context gets cal# dependencies as numpy arrays (or text, or the default), recorded like TS ones", () => {
    const dir = tempDir("calib-py-");
    ok(damnit(["proposal", String(PROPOSAL), dir]));
    ok(damnit(["db-config", "context_python", "/usr/bin/python3"], { cwd: dir }));
    writeFileSync(join(dir, "ped.npy"), encodeNpy(ndarray("float64", [3], [1.5, 2.5, 4])));
    writeFileSync(join(dir, "geo.txt"), "QUAD:V1 0\n");
    ok(damnit(["calib", "add", "-d", DET, "-t", "pedestals", "--at", "0", "-f", "ped.npy"], { cwd: dir }));
    ok(damnit(["calib", "add", "-d", DET, "-t", "geometry", "--at", "0", "-f", "geo.txt"], { cwd: dir }));
    writeFileSync(
      join(dir, "context.py"),
      `from damnit_ctx import Variable

@Variable()
def ped_sum(run, ped: "cal#${DET}/pedestals"):
    assert str(ped.data.dtype) == "float32" and ped.data.shape == (3,)
    return float(ped.data.sum()) + 1000 * ped.version

@Variable()
def no_gain(run, gain: "cal#${DET}/pixel_gain" = None):
    return 1 if gain is None else 0

@Variable()
def geo(run, g: "cal#${DET}/geometry"):
    return g.text.strip() + " " + g.level
`,
    );
    ok(damnit(["extract", String(PROPOSAL), "7", "raw", "--mock"], { cwd: dir }));
    const v = values(dir, 7);
    expect([v.get("ped_sum"), v.get("no_gain"), v.get("geo")]).toEqual([1008, 1, "QUAD:V1 0 local"]);
    const usage = CalibUsageStore.open(dir, { readonly: true })!;
    expect(usage.list({ runs: [7] }).map((u) => [u.variable, u.ctype, u.range, u.version])).toEqual([
      ["geo", "geometry", "0-end", 1],
      ["ped_sum", "pedestals", "0-end", 1],
    ]);
    usage.close();
  }, 120_000);

  it("the levels come from the database settings calib_proposal_dir and calib_repository; the first hit names its level", () => {
    const root = tempDir("calib-levels-");
    const dir = join(root, "db");
    ok(damnit(["proposal", String(PROPOSAL), dir]));
    writeFileSync(join(root, "a.npy"), encodeNpy(ndarray("float32", [1], [1])));
    writeFileSync(join(root, "b.npy"), encodeNpy(ndarray("float32", [1], [2])));
    ok(damnit(["calib", "add", "-d", DET, "-t", "pedestals", "--at", "0", "-f", "a.npy", "--store", "facility"], { cwd: root }));
    ok(damnit(["calib", "add", "-d", DET, "-t", "pixel_gain", "--at", "0", "-f", "a.npy", "--store", "facility"], { cwd: root }));
    ok(damnit(["calib", "add", "-d", DET, "-t", "pedestals", "--at", "0", "-f", "b.npy", "--store", "prop"], { cwd: root }));
    ok(damnit(["db-config", "calib_repository", join(root, "facility")], { cwd: dir }));
    ok(damnit(["db-config", "calib_proposal_dir", join(root, "prop")], { cwd: dir }));
    writeFileSync(
      join(dir, "context.ts"),
      `import { Variable, calibration } from "damnit/context";
const where = (ctype: string) => { const c = calibration.get({ detector: ${JSON.stringify(DET)}, ctype }); return c.level + " " + c.data.data[0]; };
export const ped_level = Variable(() => where("pedestals"));
export const gain_level = Variable(() => where("pixel_gain"));
export const mask_level = Variable(() => where("pixel_mask"));
`,
    );
    ok(damnit(["extract", String(PROPOSAL), "3", "raw", "--mock"], { cwd: dir }));
    const v = values(dir, 3);
    expect([v.get("ped_level"), v.get("gain_level")]).toEqual(["proposal 2", "repository 1"]);
    const err = errorOf(dir, 3, "mask_level");
    expect(err.error_cls).toBe("CalibrationNotFoundError");
    expect(err.error).toMatch(/^no pixel_mask constants for detector jungfrau-0042 at \d/);
  }, 120_000);
});
