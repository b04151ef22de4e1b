/**
 * An independent reader agrees: h5py (libhdf5 1.10 from Debian) opens every synthetic file, and following the EXDF
 * index by hand in Python gives the same values, counts and train IDs as our reader.
 */
import { mkdirSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { openRunDirectory } from "../src/exdf/index.js";
import { CAMERA, XGM_CONTROL, correctedSource, detectorSource } from "../src/synth/layout.js";
import { writeSyntheticRun } from "../src/synth/write-run.js";
import { isDamnitError } from "../src/core/errors.js";
import { damnit } from "./helpers/cli.js";
import { h5pyAvailable, runH5py } from "./helpers/h5py.js";
import { tempDir } from "./helpers/tmp.js";

/** Per file: train IDs (padding dropped) and, for one source/group/key, the rows each train indexes, summed. */
const DUMP = `
path, source, group, key = sys.argv[1:5]
with h5py.File(path, "r") as f:
    tids = [int(t) for t in f["INDEX/trainId"][:] if t != 0]
    base = f"INDEX/{source}/{group}" if group else f"INDEX/{source}"
    first, count = f[base + "/first"][:len(tids)], f[base + "/count"][:len(tids)]
    root = "INSTRUMENT" if group else "CONTROL"
    ds = f[f"{root}/{source}/{key.replace('.', '/')}"]
    sums = [float(ds[int(a):int(a) + int(c)].astype("float64").sum()) if c else None for a, c in zip(first, count)]
    print(json.dumps({"tids": tids, "counts": [int(c) for c in count], "sums": sums, "dtype": ds.dtype.str, "filters": list(ds._filters.keys())}))
`;

describe.runIf(h5pyAvailable())("h5py reads the synthetic runs", () => {
  it("agrees with our reader on every file of a source, raw and corrected", async () => {
    const root = tempDir();
    const { rawDir, procDir } = await writeSyntheticRun({ root, proposal: 11, run: 2 });
    const cases: Array<[string, string, string, string]> = [
      [rawDir, XGM_CONTROL, "", "pulseEnergy.photonFlux.value"],
      [rawDir, CAMERA, "data", "data.image.pixels"],
      [rawDir, detectorSource(3), "image", "image.data"],
      [procDir!, correctedSource(1), "image", "image.data"],
    ];
    for (const [dir, source, group, key] of cases) {
      const run = await openRunDirectory(dir);
      try {
        const ours = run.key(source, key).ndarray();
        const entrySize = ours.data.length / Math.max(1, ours.shape[0]!);
        const oursByTrain = new Map<number, number>();
        for (let e = 0; e < ours.shape[0]!; e++) {
          let s = 0;
          for (let k = 0; k < entrySize; k++) s += Number(ours.data[e * entrySize + k]!);
          const t = ours.entryTrainIds[e]!;
          oursByTrain.set(t, (oursByTrain.get(t) ?? 0) + s);
        }
        const files = readdirSync(dir).filter((n) => run.source(source).files.some((f) => f.name === n));
        const theirsByTrain = new Map<number, number>();
        const theirCounts = new Map<number, number>();
        for (const name of files) {
          const dump = runH5py(DUMP, [join(dir, name), source, group, key]) as { tids: number[]; counts: number[]; sums: Array<number | null>; filters: string[] };
          dump.tids.forEach((t, i) => {
            theirCounts.set(t, dump.counts[i]!);
            if (dump.sums[i] !== null) theirsByTrain.set(t, dump.sums[i]!);
          });
          if (source === CAMERA || dir === procDir) expect(dump.filters).toContain("gzip");
        }
        const trainIds = run.key(source, key).trainIds;
        expect([...theirCounts.keys()].sort()).toEqual([...trainIds]);
        expect(trainIds.map((t) => theirCounts.get(t))).toEqual(Array.from(run.key(source, key).dataCounts()));
        expect(new Map([...oursByTrain].sort())).toEqual(new Map([...theirsByTrain].sort()));
      } finally {
        run.close();
      }
    }
  });
});

/** One-file runs with odd but legal (or broken) content, written by h5py: big-endian, bool, int64, float16, records. */
const ODD_FILE = `
import numpy as np
path, case = sys.argv[1], sys.argv[2]
with h5py.File(path, "w") as f:
    def index(src, tids, first, count, legacy=None):
        f["INDEX/trainId"] = np.array(tids, dtype="u8")
        if legacy:
            for k, v in legacy.items(): f[f"INDEX/{src}/" + k] = np.array(v, dtype="u8")
        else:
            f[f"INDEX/{src}/first"] = np.array(first, dtype="u8")
            f[f"INDEX/{src}/count"] = np.array(count, dtype="u8")
    f["METADATA/dataFormatVersion"] = np.array([b"1.2"])
    if case == "types":
        f["METADATA/dataSources/dataSourceId"] = np.array([b"CONTROL/DEV/A", b"INSTRUMENT/DEV/A:out/data", b"INSTRUMENT/DEV/B:out/data", b""])
        index("DEV/A", [1001, 1002, 1003, 1004, 0, 0], [0, 1, 2, 3], [1, 1, 1, 1])
        f["INDEX/DEV/A:out/data/first"] = np.array([0, 1, 1, 3], dtype="u8")
        f["INDEX/DEV/A:out/data/count"] = np.array([1, 0, 2, 1], dtype="u8")
        for name, values in [("x", np.array([1.5, 2.5, 3.5, 4.5], dtype=">f8")), ("i", np.array([1, 2, 3, 4], dtype=">i4")),
                             ("b", np.array([True, False, True, True])), ("big", np.array([2**60, 1, 2, -3], dtype="i8")),
                             ("h", np.array([1, 2, 3, 4], dtype="f2")),
                             ("rec", np.array([(2**60 + 1, 1.5), (3, 2.5), (4, 3.5), (5, 4.5)], dtype=[("a", "<i8"), ("b", "<f4")]))]:
            f[f"CONTROL/DEV/A/{name}/value"] = values
            f[f"CONTROL/DEV/A/{name}/timestamp"] = np.zeros(4, dtype="u8")
        f["INSTRUMENT/DEV/A:out/data/be"] = np.arange(4 * 40000, dtype=">f4").reshape(4, 40000)
        f["INSTRUMENT/DEV/B:out"] = h5py.SoftLink("/INSTRUMENT/DEV/MISSING:out")
    else:
        f["METADATA/dataSources/dataSourceId"] = np.array([b"INSTRUMENT/DEV/A:out/data"])
        src = "DEV/A:out/data"
        if case == "midzero": index(src, [1001, 0, 1003, 1004], [0, 1, 2, 3], [1, 1, 1, 1])
        if case == "legacy-negative": index(src, [1001, 1002, 1003], None, None, {"first": [0, 3, 1], "last": [0, 1, 1], "status": [1, 1, 1]})
        if case == "legacy-short": index(src, [1001, 1002, 1003], None, None, {"first": [0, 1, 2], "last": [0, 1], "status": [1, 1, 1]})
        if case == "overlap": index(src, [1001, 1002, 1003], [0, 0, 1], [2, 2, 1])
        if case == "duplicate": index(src, [1001, 1001, 1002], [0, 1, 2], [1, 1, 1])
        f["INSTRUMENT/DEV/A:out/data/v"] = np.array([10., 20., 30., 40.])
print("{}")
`;

async function oddRun(testCase: string): Promise<string> {
  const dir = join(tempDir(), "r0001");
  mkdirSync(dir);
  runH5py(ODD_FILE, [join(dir, "RAW-R0001-DA01-S00000.h5"), testCase]);
  return dir;
}

function errorOf(fn: () => unknown): { code: string; message: string } {
  try {
    fn();
  } catch (err) {
    return { code: isDamnitError(err) ? err.code : "not a DamnitError", message: (err as Error).message };
  }
  throw new Error("expected an error");
}

describe.runIf(h5pyAvailable())("odd files written by h5py", () => {
  it("reads big-endian numbers, booleans, 64-bit integers and records exactly", async () => {
    const run = await openRunDirectory(await oddRun("types"));
    try {
      expect(Array.from(run.key("DEV/A", "x").ndarray().data as Float64Array)).toEqual([1.5, 2.5, 3.5, 4.5]);
      expect(Array.from(run.key("DEV/A", "i").ndarray().data as Int32Array)).toEqual([1, 2, 3, 4]);
      const be = run.key("DEV/A:out", "data.be").ndarray();
      expect(be.shape).toEqual([4, 40000]);
      expect([be.data[0], be.data[40001], be.data[4 * 40000 - 1]]).toEqual([0, 40001, 4 * 40000 - 1]);
      expect(Array.from(be.entryTrainIds)).toEqual([1001, 1003, 1003, 1004]);
      const b = run.key("DEV/A", "b").ndarray();
      expect(b.dtype).toBe("bool");
      expect(Array.from(b.data as Uint8Array)).toEqual([1, 0, 1, 1]);
      const big = run.key("DEV/A", "big");
      expect(Array.from(big.ndarray().data as BigInt64Array)).toEqual([2n ** 60n, 1n, 2n, -3n]);
      expect(errorOf(() => big.perTrain()).message).toMatch(/beyond 2\^53/);
      expect(Array.from(big.perTrain({ missing: "mask" }).data as BigInt64Array)).toEqual([2n ** 60n, 1n, 2n, -3n]);
      expect(run.key("DEV/A", "rec").values()[0]).toEqual({ a: 2n ** 60n + 1n, b: 1.5 });
      expect(errorOf(() => run.key("DEV/A", "h"))).toMatchObject({ code: "UNSUPPORTED_DATA", message: expect.stringMatching(/float16 is not supported/) });
      expect(errorOf(() => run.source("DEV/B:out").keys())).toMatchObject({ code: "BAD_RUN_FILE" });
    } finally {
      run.close();
    }
  });

  it("shows unreadable keys and sources in data info, and prints records with 64-bit fields", async () => {
    const dir = await oddRun("types");
    const info = damnit(["data", "info", dir, "--json"]);
    expect(info.status, info.stderr).toBe(0);
    const parsed = JSON.parse(info.stdout);
    const devA = parsed.sources.find((s: { name: string }) => s.name === "DEV/A");
    expect(devA.keys.find((k: { key: string }) => k.key === "h").problem).toMatch(/float16/);
    expect(devA.keys.find((k: { key: string }) => k.key === "x").dtype).toBe("float64");
    expect(parsed.sources.find((s: { name: string }) => s.name === "DEV/B:out").problem).toMatch(/cannot list the keys/);
    const text = damnit(["data", "get", dir, "DEV/A", "rec"]);
    expect(text.status, text.stderr).toBe(0);
    expect(text.stdout).toContain('1001  {"a":"1152921504606846977","b":1.5}');
    const json = damnit(["data", "get", dir, "DEV/A", "rec", "--json"]);
    expect(JSON.parse(json.stdout).values[1]).toEqual({ a: 3, b: 2.5 });
  });

  it("keeps index rows with their trains when INDEX/trainId has a zero in the middle", async () => {
    const run = await openRunDirectory(await oddRun("midzero"));
    try {
      expect(run.trainIds).toEqual([1001, 1003, 1004]);
      const v = run.key("DEV/A:out", "data.v").ndarray();
      expect(Array.from(v.entryTrainIds)).toEqual([1001, 1003, 1004]);
      expect(Array.from(v.data as Float64Array)).toEqual([10, 30, 40]);
    } finally {
      run.close();
    }
  });

  for (const [testCase, pattern] of [
    ["legacy-negative", /impossible row range \(first 3, count -1\)/],
    ["legacy-short", /last has 2 rows, the file has 3 trains/],
    ["overlap", /gives train 1002 rows 0–1, which overlap/],
    ["duplicate", /train 1001 of DEV\/A:out is twice in RAW-R0001-DA01-S00000\.h5/],
  ] as const) {
    it(`refuses an inconsistent index: ${testCase}`, async () => {
      const run = await openRunDirectory(await oddRun(testCase));
      try {
        expect(errorOf(() => run.key("DEV/A:out", "data.v").ndarray())).toMatchObject({ code: "BAD_RUN_FILE", message: expect.stringMatching(pattern) });
      } finally {
        run.close();
      }
    });
  }
});
