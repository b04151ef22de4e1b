/**
 * `damnit/array` against Debian's numpy, bit for bit: every axis reduction on every dtype and layout (rows longer
 * than numpy's 8192-element buffer, reduced axes inner and outer, size-1 axes, NaNs for the nan-variants), whole
 * reductions, and elementwise arithmetic with broadcasting and numpy's result dtypes. The arrays are made here,
 * handed to numpy as raw bytes, and numpy's results come back as raw bytes.
 */
import { spawnSync } from "node:child_process";
import { appendFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { DTYPES, ndarray, sizeOf, type DType, type NdArray } from "../src/core/ndarray.js";
import { np } from "../src/array/index.js";
import { AXIS_REDUCTIONS } from "../src/array/reduce-axis.js";
import { tempDir } from "./helpers/tmp.js";
import { damnit } from "./helpers/cli.js";
import { demoDatabase } from "./helpers/listener.js";

const PYTHON = "/usr/bin/python3";
const numpyAvailable = (() => {
  const probe = spawnSync(PYTHON, ["-c", "import numpy"], { timeout: 30_000 });
  if (probe.status === 0) return true;
  if (process.env.REQUIRE_H5PY === "1" || process.env.REQUIRE_PYTHON_CONTEXT === "1") {
    throw new Error("REQUIRE_H5PY/REQUIRE_PYTHON_CONTEXT set but /usr/bin/python3 cannot import numpy (apt-get install python3-numpy)");
  }
  return false;
})();

/** A deterministic pseudo-random generator (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function makeArray(dtype: DType, shape: number[], seed: number, nans = false): NdArray {
  const n = sizeOf(shape);
  const next = rng(seed);
  const info = DTYPES[dtype];
  const data = info.make(new ArrayBuffer(n * info.itemSize), 0, n);
  for (let i = 0; i < n; i++) {
    const u = next();
    if (data instanceof BigInt64Array) data[i] = BigInt(Math.floor((u - 0.5) * 2 ** 52));
    else if (data instanceof BigUint64Array) data[i] = BigInt(Math.floor(u * 2 ** 52));
    else if (dtype === "bool") data[i] = u < 0.5 ? 1 : 0;
    else if (dtype.startsWith("float")) data[i] = nans && u < 0.1 ? NaN : (u - 0.3) * 1000 * (1 + next());
    else data[i] = Math.floor((u - (dtype.startsWith("u") ? 0 : 0.5)) * 2 ** ((DTYPES[dtype].itemSize * 8) - 1));
  }
  return ndarray(dtype, shape, data);
}

interface Case {
  readonly id: string;
  /** Python expression over a, b (numpy arrays) */
  readonly expr: string;
  readonly inputs: readonly NdArray[];
  readonly ours: () => NdArray;
}

function bytesOf(a: NdArray): Buffer {
  return Buffer.from(a.data.buffer, a.data.byteOffset, a.data.byteLength);
}

/** numpy's results of every case: dtype, shape and the bytes (hex). */
function numpyResults(cases: readonly Case[]): Map<string, { dtype: string; shape: number[]; hex: string }> {
  const dir = tempDir("array");
  const manifest = cases.map((c, i) => {
    const files = c.inputs.map((a, k) => {
      const file = join(dir, `${i}-${k}.bin`);
      writeFileSync(file, bytesOf(a));
      return { file, dtype: a.dtype === "bool" ? "bool" : DTYPES[a.dtype].code.replace(/^/, "<"), shape: a.shape };
    });
    return { id: c.id, expr: c.expr, files };
  });
  const manifestFile = join(dir, "manifest.json");
  writeFileSync(manifestFile, JSON.stringify(manifest));
  const script = `
import json, sys, warnings
import numpy as np
warnings.simplefilter("ignore")
out = {}
for c in json.load(open(sys.argv[1])):
    arrays = [np.frombuffer(open(f["file"], "rb").read(), dtype=f["dtype"]).reshape(f["shape"]) for f in c["files"]]
    a = arrays[0]
    b = arrays[1] if len(arrays) > 1 else None
    r = np.asarray(eval(c["expr"]))
    out[c["id"]] = {"dtype": r.dtype.name, "shape": list(r.shape), "hex": np.ascontiguousarray(r).tobytes().hex()}
print(json.dumps(out))
`;
  const result = spawnSync(PYTHON, ["-c", script, manifestFile], { encoding: "utf8", timeout: 120_000, maxBuffer: 256 * 1024 * 1024 });
  if (result.status !== 0) throw new Error(`numpy failed: ${result.stderr}`);
  return new Map(Object.entries(JSON.parse(result.stdout) as Record<string, { dtype: string; shape: number[]; hex: string }>));
}

function expectSame(cases: readonly Case[]): void {
  const expected = numpyResults(cases);
  const mismatches: string[] = [];
  for (const c of cases) {
    const want = expected.get(c.id)!;
    const got = c.ours();
    const same = got.dtype === want.dtype && JSON.stringify(got.shape) === JSON.stringify(want.shape) && bytesOf(got).toString("hex") === want.hex;
    if (!same) mismatches.push(`${c.id}: ours ${got.dtype} (${got.shape.join(",")}) vs numpy ${want.dtype} (${want.shape.join(",")})${got.dtype === want.dtype ? " values differ" : ""}`);
  }
  expect(mismatches).toEqual([]);
}

const LAYOUTS: number[][] = [[10_000], [3, 10_000], [20_000, 3], [4, 5, 6], [7, 1, 9], [1, 12], [6, 1]];
const FLOATS: DType[] = ["float32", "float64"];
const INTS: DType[] = ["int16", "int32", "int64", "uint8", "uint64", "bool"];

describe.skipIf(!numpyAvailable)("damnit/array matches numpy bit for bit", () => {
  it("reductions along every axis, float data (with and without NaNs)", () => {
    const cases: Case[] = [];
    let seed = 1;
    for (const dtype of FLOATS) {
      for (const shape of LAYOUTS) {
        for (const nans of [false, true]) {
          const a = makeArray(dtype, shape, seed++, nans);
          for (const method of AXIS_REDUCTIONS) {
            if (!nans && method.startsWith("nan")) continue;
            for (let axis = 0; axis < shape.length; axis++) {
              cases.push({ id: `${method}:${dtype}:${shape}:${nans}:${axis}`, expr: `np.${method}(a, axis=${axis})`, inputs: [a], ours: () => np[method](a, axis) as NdArray });
            }
          }
        }
      }
    }
    expectSame(cases);
  }, 120_000);

  it("reductions along every axis, integer and bool data", () => {
    const cases: Case[] = [];
    let seed = 100;
    for (const dtype of INTS) {
      for (const shape of LAYOUTS) {
        const a = makeArray(dtype, shape, seed++);
        for (const method of AXIS_REDUCTIONS) {
          for (let axis = 0; axis < shape.length; axis++) {
            cases.push({ id: `${method}:${dtype}:${shape}:${axis}`, expr: `np.${method}(a, axis=${axis})`, inputs: [a], ours: () => np[method](a, axis) as NdArray });
          }
        }
      }
    }
    expectSame(cases);
  }, 120_000);

  it("whole-array reductions give numpy's dtype and act as numbers", () => {
    const a = makeArray("float32", [3, 10_000], 7);
    const cases: Case[] = (["sum", "mean", "std", "var", "min", "max", "median", "ptp"] as const).map((m) => ({
      id: `${m}`,
      expr: `np.${m}(a)`,
      inputs: [a],
      ours: () => np[m](a),
    }));
    expectSame(cases);
    const mean = np.mean(a);
    expect(mean.dtype).toBe("float32");
    expect(mean.shape).toEqual([]);
    expect(Number(mean) > -1e9).toBe(true);
    expect(+mean).toBe(mean.value);
  });

  it("elementwise arithmetic with broadcasting and numpy's result dtypes", () => {
    const f32 = makeArray("float32", [4, 5], 11);
    const f64 = makeArray("float64", [5], 12);
    const i16 = makeArray("int16", [4, 5], 13);
    const i32 = makeArray("int32", [4, 1], 14);
    const u8 = makeArray("uint8", [5], 15);
    const i64 = makeArray("int64", [4, 5], 16);
    const pairs: Array<[NdArray, NdArray]> = [[f32, f32], [f32, f64], [f32, i16], [f32, i32], [i16, u8], [i16, i32], [i32, i32], [u8, u8], [i64, i32], [i64, i64]];
    const cases: Case[] = [];
    for (const op of ["add", "subtract", "multiply", "divide"] as const) {
      pairs.forEach(([a, b], k) => cases.push({ id: `${op}:${k}`, expr: `np.${op}(a, b)`, inputs: [a, b], ours: () => np[op](a, b) }));
      for (const x of [2.5, 3]) {
        for (const a of [f32, f64, i16, u8]) cases.push({ id: `${op}:${a.dtype}:${x}`, expr: `np.${op}(a, ${x})`, inputs: [a], ours: () => np[op](a, x) });
      }
    }
    expectSame(cases);
  });
});

describe("damnit/array without numpy", () => {
  it("slices along the first axis without copying", () => {
    const a = ndarray("float64", [4, 2], [0, 1, 2, 3, 4, 5, 6, 7]);
    const middle = np.rows(a, 1, 3);
    expect(middle.shape).toEqual([2, 2]);
    expect([...middle.data]).toEqual([2, 3, 4, 5]);
    expect(middle.data.buffer).toBe(a.data.buffer);
    expect([...np.row(a, -1).data]).toEqual([6, 7]);
    expect(np.rows(a, -1).shape).toEqual([1, 2]);
    expect(() => np.row(a, 4)).toThrow(expect.objectContaining({ code: "BAD_ARGUMENT" }));
  });

  it("a labelled array keeps its other dimensions and their coordinates", () => {
    const data = ndarray("float64", [3, 2], [1, 2, 3, 4, 5, 6]);
    const trainId = ndarray("uint64", [3], [10, 11, 12]);
    const labelled = { kind: "labelled" as const, data, dims: ["trainId", "dim_0"], coords: { trainId }, name: "x" };
    const perTrain = np.sum(labelled, 1);
    expect(perTrain).toMatchObject({ kind: "labelled", dims: ["trainId"], name: "x" });
    expect([...(perTrain as typeof labelled).data.data]).toEqual([3, 7, 11]);
    expect((np.mean(labelled, 0) as typeof labelled).dims).toEqual(["dim_0"]);
  });

  it("refuses what numpy refuses, with a clear error", () => {
    const a = ndarray("int8", [2], [1, 2]);
    expect(() => np.sum(a, 1)).toThrow(/axis 1 is out of bounds/);
    expect(() => np.add(a, 300)).toThrow(/out of bounds for int8/);
    expect(() => np.add(ndarray("float64", [2], [1, 2]), ndarray("float64", [3], [1, 2, 3]))).toThrow(/could not be broadcast/);
    expect(() => np.max(ndarray("float64", [0, 2], []), 0)).toThrow(/zero-size array/);
  });
});

describe.skipIf(!numpyAvailable)("damnit/array in a context file, through damnit extract", () => {
  it("imports from the installation, stores numpy's dtypes, and its scalars act as numbers in dependents", () => {
    const db = demoDatabase(tempDir("array-e2e"), 1);
    appendFileSync(
      join(db, "context.ts"),
      `
import { np } from "damnit/array";
export const pulse_mean = Variable({ deps: { pulses: xgm_pulses } }, (_run, { pulses }) => np.mean(np.rows(pulses, 0, 5), 0));
export const pulse_grand = Variable({ deps: { pulses: xgm_pulses } }, (_run, { pulses }) => np.nanmean(pulses));
export const pulse_high = Variable({ deps: { m: pulse_grand } }, (_run, { m }) => m > 0);
`,
    );
    const run = damnit(["extract", "1234", "1", "raw", "--var", "pulse_mean", "--var", "pulse_grand", "--var", "pulse_high"], { cwd: db });
    expect(run.status, run.stderr).toBe(0);
    // numpy over the same key read by h5py from the run's files gives the same bytes.
    const check = spawnSync(
      PYTHON,
      [
        "-c",
        `
import glob, h5py, json, sys, numpy as np
out = h5py.File(sys.argv[1] + "/extracted_data/p1234_r1.h5", "r")
raw = sorted(glob.glob(sys.argv[1] + "/data/*/*/p001234/raw/r0001/RAW-R0001-DA*-S*.h5"))
pulses = None
for f in raw:
    with h5py.File(f, "r") as h:
        k = "INSTRUMENT/SPB_XTD9_XGM/DOOCS/MAIN:output/data/intensityTD"
        if k in h:
            pulses = h[k][()] if pulses is None else np.concatenate([pulses, h[k][()]])
print(json.dumps({
  "mean_same": out["pulse_mean/data"][()].tobytes() == np.mean(pulses[:5].astype(pulses.dtype), 0).tobytes(),
  "mean_dtype": str(out["pulse_mean/data"].dtype),
  "grand_dtype": str(out["pulse_grand/data"].dtype),
  "high": bool(out["pulse_high/data"][()]),
}))
`,
        db,
      ],
      { encoding: "utf8", timeout: 60_000 },
    );
    expect(check.status, check.stderr).toBe(0);
    const facts = JSON.parse(check.stdout) as Record<string, unknown>;
    expect(facts).toEqual({ mean_same: true, mean_dtype: "float32", grand_dtype: "float32", high: true });
  }, 120_000);
});
