/**
 * HDF5 export/import of a detector's constants in PSCalib's DCS layout (spec §D.2), through the real CLI: h5py
 * reads an export group for group as the layout says (check 1 of §D.5 included), an import of an export holds
 * exactly what was exported, a file h5py writes in PSCalib's layout imports and answers gets, and a damaged file is
 * refused whole with the damaged path named and the store unchanged.
 */
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ndarray, type NdArray } from "../src/core/ndarray.js";
import { CalibStore } from "../src/calibration/store.js";
import { damnit, expectOneLineError } from "./helpers/cli.js";
import { h5pyAvailable, runH5py } from "./helpers/h5py.js";
import { tempDir } from "./helpers/tmp.js";

const DET = "epix100a-0001";
const T1 = 1474587520.7;
const GEOMETRY = "# geometry\nQUAD:V1 0 CSPAD:V1 0 0 0 0 0 0 0 0 0\nü ∞\n";
const REQUIRE = h5pyAvailable();

/** A store with two pedestal ranges (one with two versions and a changed default), a closed range, text and status. */
function filledStore(root: string): void {
  const s = CalibStore.open(root);
  s.add({ detector: DET, ctype: "pedestals", at: T1, value: ndarray("float32", [2, 2], [1, 2, 3, 4]), run: 12, experiment: "p1234", message: "dark", predecessor: "epix100a-0000" });
  s.add({ detector: DET, ctype: "pedestals", at: T1 + 0.2, value: ndarray("float32", [2, 2], [5, 6, 7, 8]) });
  s.setDefault(DET, "pedestals", "1474587520-end", 1);
  s.add({ detector: DET, ctype: "pedestals", at: T1 + 1000, value: ndarray("float64", [3], [0.5, 1.5, 2.5]) });
  s.add({ detector: DET, ctype: "pixel_mask", at: 100, end: 200.5, value: ndarray("uint8", [4], [0, 1, 1, 0]) });
  s.add({ detector: DET, ctype: "geometry", at: T1, value: GEOMETRY });
  s.add({ detector: DET, ctype: "pixel_status", at: T1, value: ndarray("uint16", [2], [1, 65535]), version: 10000 });
  s.close();
}

/** Every group, dataset (dtype, shape, value) and its place, as h5py sees the file. */
const H5_DUMP = `
f = h5py.File(sys.argv[1], "r")
out = {}
def visit(name, obj):
    if isinstance(obj, h5py.Dataset):
        v = obj[()]
        if hasattr(v, "tolist"): v = v.tolist()
        if isinstance(v, bytes): v = v.decode()
        if isinstance(v, list): v = [x.decode() if isinstance(x, bytes) else x for x in v]
        out[name] = [str(obj.dtype), list(obj.shape), v]
    else:
        out[name + "/"] = "group"
f.visititems(visit)
print(json.dumps(out))
`;

describe.runIf(REQUIRE)("calibration HDF5 export/import (PSCalib layout)", () => {
  it("h5py reads an export group for group; import of an export is identical; exporting the import gives the same file content", () => {
    const dir = tempDir("calib-h5-");
    filledStore(join(dir, "a"));
    const out = damnit(["calib", "export", DET, join(dir, "out") + "/", "--store", "a"], { cwd: dir });
    expect(out.status, out.stderr).toBe(0);
    const file = join(dir, "out", "epix100a", `${DET}.h5`);
    expect(existsSync(file)).toBe(true);

    const h5 = runH5py(H5_DUMP, [file]) as Record<string, [string, number[], unknown] | "group">;
    // Check 1 of §D.5: /pedestals/1474587520-end/v0001/data equals A, begin T1, end "end", versdef (here set to 1).
    expect(h5["pedestals/1474587520-end/v0001/data"]).toEqual(["float32", [2, 2], [[1, 2], [3, 4]]]);
    expect(h5["pedestals/1474587520-end/v0002/data"]).toEqual(["float32", [2, 2], [[5, 6], [7, 8]]]);
    expect(h5["pedestals/1474587520-end/begin"]).toEqual(["float64", [1], [T1]]);
    expect(h5["pedestals/1474587520-end/end"]).toEqual(["|S3", [1], ["end"]]);
    expect(h5["pedestals/1474587520-end/range"]).toEqual(["|S14", [1], ["1474587520-end"]]);
    expect(h5["pedestals/1474587520-end/versdef"]).toEqual(["int64", [1], [1]]);
    expect(h5["pedestals/1474587520-end/v0001/version"]).toEqual(["int64", [1], [1]]);
    expect((h5["pedestals/1474587520-end/v0001/tsprod"] as [string, number[], number[]])[0]).toBe("float64");
    expect(h5["pedestals/1474587520-end/_parameters/run"]).toEqual(["int64", [1], [12]]);
    expect(h5["pedestals/1474587520-end/_parameters/experiment"]).toEqual(["|S5", [1], ["p1234"]]);
    expect(h5["pedestals/1474588520-end/v0001/data"]).toEqual(["float32", [3], [0.5, 1.5, 2.5]]);
    expect(h5["pedestals/1474588520-end/versdef"]).toEqual(["int64", [1], [0]]);
    expect(h5["pixel_mask/100-201/end"]).toEqual(["float64", [1], [200.5]]);
    expect(h5["pixel_mask/100-201/v0001/data"]).toEqual(["uint8", [4], [0, 1, 1, 0]]);
    expect((h5["geometry/1474587520-end/v0001/data"] as unknown[])[2]).toBe(GEOMETRY);
    expect(h5["pixel_status/1474587520-end/v10000/data"]).toEqual(["uint16", [2], [1, 65535]]);
    expect(h5["pedestals/ctype"]).toEqual(["|S9", [1], ["pedestals"]]);
    for (const [k, v] of [["dettype", "epix100a"], ["detid", "0001"], ["detname", DET], ["predecessor", "epix100a-0000"]]) {
      expect((h5[k!] as unknown[])[2]).toEqual([v]);
    }
    expect(h5["successor"]).toBeUndefined();
    expect((h5["tscfile"] as unknown[])[0]).toBe("float64");
    const history = Object.keys(h5).filter((k) => k.startsWith("pedestals/1474587520-end/_history/") && !k.endsWith("/"));
    expect(history).toHaveLength(3);
    for (const k of history) expect(k).toMatch(/\/_history\/\d+\.\d{6}$/);
    expect(history.map((k) => ((h5[k] as unknown[])[2] as string[])[0]!.replace(/ \(.*\)$/, ""))).toEqual(["add version 1: dark", "add version 2", "set default version 1"]);
    expect(Object.keys(h5).filter((k) => k.endsWith("/") && !k.startsWith("_") && !k.includes("/_")).sort()).toEqual(
      [
        "geometry/", "geometry/1474587520-end/", "geometry/1474587520-end/v0001/",
        "pedestals/", "pedestals/1474587520-end/", "pedestals/1474587520-end/v0001/", "pedestals/1474587520-end/v0002/",
        "pedestals/1474588520-end/", "pedestals/1474588520-end/v0001/",
        "pixel_mask/", "pixel_mask/100-201/", "pixel_mask/100-201/v0001/",
        "pixel_status/", "pixel_status/1474587520-end/", "pixel_status/1474587520-end/v10000/",
      ].sort(),
    );

    // Import into an empty store: the same content, level for level; gets answer the same.
    const imp = damnit(["calib", "import", file, "--store", "b"], { cwd: dir });
    expect(imp.status, imp.stderr).toBe(0);
    expect(imp.stdout).toContain(`imported ${DET}: 4 constant types, 6 versions`);
    const a = CalibStore.open(join(dir, "a"), { readonly: true });
    const b = CalibStore.open(join(dir, "b"), { readonly: true });
    expect(b.dumpDetector(DET)).toEqual(a.dumpDetector(DET));
    expect(b.get({ detector: DET, ctype: "pedestals", at: T1 + 10 }).version).toBe(1);
    expect(b.get({ detector: DET, ctype: "geometry", at: T1 }).value).toBe(GEOMETRY);
    a.close();
    b.close();
    const again = damnit(["calib", "export", "-d", DET, join(dir, "again.h5"), "--store", "b"], { cwd: dir });
    expect(again.status, again.stderr).toBe(0);
    expect(runH5py(H5_DUMP, [join(dir, "again.h5")])).toEqual(h5);

    // A second import of the same detector is refused; the store keeps what it had.
    expect(expectOneLineError(damnit(["calib", "import", file, "--store", "b"], { cwd: dir }))).toMatch(/already has detector epix100a-0001/);
  });

  it("a file h5py writes in PSCalib's layout imports (float64 pedestals cast to float32, versdef 0 = last)", () => {
    const dir = tempDir("calib-h5-");
    const file = join(dir, "cspad-0042.h5");
    runH5py(
      `import numpy as np
f = h5py.File(sys.argv[1], "w")
for k, v in [("dettype", "cspad"), ("detid", "0042"), ("detname", "cspad-0042")]: f[k] = np.array([v.encode()])
f["tscfile"] = np.array([1.5e9])
g = f.create_group("pedestals"); g["ctype"] = np.array([b"pedestals"])
r = g.create_group("1500000000-end"); r["begin"] = np.array([1.5e9]); r["end"] = np.array([b"end"]); r["range"] = np.array([b"1500000000-end"]); r["versdef"] = np.array([0])
for n, val in [(1, 1.0), (2, 2.0)]:
    v = r.create_group("v%04d" % n); v["version"] = np.array([n]); v["tsprod"] = np.array([1.5e9 + n]); v["data"] = np.full((2, 3), val)
f["_history/1500000000.000000"] = np.array([b"add ctype pedestals: "])
f.close()
print("{}")`,
      [file],
    );
    const imp = damnit(["calib", "import", file, "--store", "s"], { cwd: dir });
    expect(imp.status, imp.stderr).toBe(0);
    const s = CalibStore.open(join(dir, "s"), { readonly: true });
    const hit = s.get({ detector: "cspad-0042", ctype: "pedestals", at: 1.6e9 });
    expect([hit.version, hit.dtype, hit.shape, Array.from((hit.value as NdArray).data as Float32Array)]).toEqual([2, "float32", [2, 3], [2, 2, 2, 2, 2, 2]]);
    expect(s.historyOf("det:cspad-0042")).toEqual([{ tsec: 1.5e9, record: "add ctype pedestals: " }]);
    s.close();
  });

  it("a damaged file is refused whole, naming the damaged group; the store is unchanged; a non-HDF5 file is one clear line", () => {
    const dir = tempDir("calib-h5-");
    filledStore(join(dir, "a"));
    const file = join(dir, "x.h5");
    expect(damnit(["calib", "export", DET, file, "--store", "a"], { cwd: dir }).status).toBe(0);
    runH5py(`f = h5py.File(sys.argv[1], "a")\ndel f["pixel_mask/100-201/begin"]\nf.close()\nprint("{}")`, [file]);
    const s = CalibStore.open(join(dir, "b"));
    s.add({ detector: "other-1", ctype: "pedestals", at: 1, value: ndarray("float32", [1], [1]) });
    s.close();
    const before = CalibStore.open(join(dir, "b"), { readonly: true });
    const dumpBefore = before.detectors();
    before.close();
    expect(expectOneLineError(damnit(["calib", "import", file, "--store", "b"], { cwd: dir }))).toMatch(/x\.h5: \/pixel_mask\/100-201\/begin is missing; nothing imported/);
    const after = CalibStore.open(join(dir, "b"), { readonly: true });
    expect(after.detectors()).toEqual(dumpBefore);
    after.close();
    writeFileSync(join(dir, "junk.h5"), "not hdf5");
    expect(expectOneLineError(damnit(["calib", "import", "junk.h5", "--store", "b"], { cwd: dir }))).toMatch(/not an HDF5 file/);
  });
});
