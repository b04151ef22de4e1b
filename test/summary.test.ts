import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { decode } from "fast-png";
import { afterAll, describe, expect, it } from "vitest";

import { ndarray, type DType, type NdArray } from "../src/core/ndarray.js";
import type { LabelledArray } from "../src/core/variable-output.js";
import {
  defaultSummary,
  isReduction,
  maxDiffOf,
  reduce,
  reduceValue,
  REDUCTIONS,
  summarise,
  trendline,
} from "../src/summary/summarise.js";
import { fpcsDownsample, trendlineRatio } from "../src/summary/trendline.js";
import { h5pyAvailable, runH5py } from "./helpers/h5py.js";

// ---------------------------------------------------------------------------------------------------------------
// helpers

/** Deterministic pseudo-random numbers in [0, 1) (mulberry32). */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const f64 = (values: number[], shape: number[] = [values.length]) =>
  ndarray("float64", shape, Float64Array.from(values));
const f32 = (values: number[]) => ndarray("float32", [values.length], Float32Array.from(values));
const i32 = (values: number[]) => ndarray("int32", [values.length], Int32Array.from(values));

/** The single value of a 0-d result. */
function value(array: NdArray): number | bigint {
  expect(array.shape).toEqual([]);
  expect(array.data.length).toBe(1);
  return array.data[0]!;
}

function expectScalar(array: NdArray, dtype: DType, expected: number | bigint | boolean): void {
  expect(array.dtype).toBe(dtype);
  const v = value(array);
  if (typeof expected === "boolean") expect(v).toBe(expected ? 1 : 0);
  else if (typeof expected === "bigint") expect(v).toBe(expected);
  else if (Number.isNaN(expected)) expect(v).toBeNaN();
  else expect(v).toBe(expected);
}

// ---------------------------------------------------------------------------------------------------------------

describe("REDUCTIONS", () => {
  it("lists numpy's reductions and recognises them", () => {
    for (const name of ["mean", "sum", "nanmean", "size", "median", "ptp", "count_nonzero", "any", "all", "prod"]) {
      expect(REDUCTIONS).toContain(name);
      expect(isReduction(name)).toBe(true);
    }
    expect(isReduction("foo")).toBe(false);
    expect(isReduction("__class__")).toBe(false);
  });

  it("rejects unknown methods", () => {
    expect(() => reduce("foo", f64([1]))).toThrow(/unknown summary method "foo"/);
  });
});

describe("reduce: hand-computed results and dtypes", () => {
  it("mean", () => {
    expectScalar(reduce("mean", f64([1, 2, 3, 4])), "float64", 2.5);
    expectScalar(reduce("mean", i32([1, 2, 3, 4])), "float64", 2.5);
    const f = Math.fround;
    expectScalar(reduce("mean", f32([0.1, 0.2, 0.3])), "float32", f(f(f(f(0.1) + f(0.2)) + f(0.3)) / 3));
    expectScalar(reduce("mean", ndarray("bool", [4], Uint8Array.of(1, 0, 1, 1))), "float64", 0.75);
    expectScalar(reduce("average", f64([1, 5])), "float64", 3);
    expectScalar(reduce("mean", f64([1, NaN])), "float64", NaN);
    expectScalar(reduce("nanmean", f64([1, NaN, 3])), "float64", 2);
    expectScalar(reduce("nanmean", f64([NaN, NaN])), "float64", NaN);
    expectScalar(reduce("mean", ndarray("int64", [2], [2 ** 40, 2 ** 40 + 2])), "float64", 2 ** 40 + 1);
  });

  it("sum and prod, exact and wrapping for integers", () => {
    expectScalar(reduce("sum", ndarray("int8", [3], [100, 100, 100])), "int64", 300n);
    expectScalar(reduce("sum", ndarray("uint8", [3], [200, 200, 200])), "uint64", 600n);
    expectScalar(reduce("sum", ndarray("bool", [3], [1, 0, 1])), "int64", 2n);
    expectScalar(reduce("sum", f32([1.5, 2.25])), "float32", 3.75);
    expectScalar(reduce("sum", f64([1, NaN])), "float64", NaN);
    expectScalar(reduce("nansum", f64([1, NaN, 2])), "float64", 3);
    expectScalar(reduce("nansum", f64([NaN])), "float64", 0);
    const int64 = ndarray("int64", [2], BigInt64Array.of(2n ** 63n - 1n, 1n));
    expectScalar(reduce("sum", int64), "int64", -(2n ** 63n));
    const uint64 = ndarray("uint64", [2], BigUint64Array.of(2n ** 64n - 1n, 2n));
    expectScalar(reduce("sum", uint64), "uint64", 1n);
    const negative = ndarray("int64", [3], BigInt64Array.of(-5n, -(2n ** 40n), 3n));
    expectScalar(reduce("sum", negative), "int64", -2n - 2n ** 40n);

    expectScalar(reduce("prod", i32([2, 3, 4])), "int64", 24n);
    expectScalar(reduce("prod", ndarray("int64", [2], [3, 2 ** 52])), "int64", BigInt.asIntN(64, 3n * 2n ** 52n));
    expectScalar(reduce("prod", ndarray("int64", [2], BigInt64Array.of(3n, 2n ** 62n))), "int64", -(2n ** 62n));
    expectScalar(reduce("prod", i32([65536, 65536, 65536, 3])), "int64", 3n * 2n ** 48n);
    expectScalar(reduce("prod", i32([65536, 65536, 65536, 65536, 7])), "int64", 0n);
    expectScalar(reduce("prod", ndarray("uint16", [2], [65535, 65535])), "uint64", 65535n * 65535n);
    expectScalar(reduce("prod", f64([1.5, 2, NaN])), "float64", NaN);
    expectScalar(reduce("nanprod", f64([1.5, 2, NaN])), "float64", 3);
  });

  it("min, max, their nan-variants and ptp keep the dtype", () => {
    expectScalar(reduce("min", ndarray("int8", [3], [5, -7, 2])), "int8", -7);
    expectScalar(reduce("amax", ndarray("uint16", [3], [5, 700, 2])), "uint16", 700);
    expectScalar(reduce("max", f32([1.5, 2.5])), "float32", 2.5);
    expectScalar(reduce("max", ndarray("bool", [2], [0, 1])), "bool", true);
    expectScalar(reduce("min", f64([1, NaN, -3])), "float64", NaN);
    expectScalar(reduce("max", f64([1, NaN, -3])), "float64", NaN);
    expectScalar(reduce("nanmin", f64([1, NaN, -3])), "float64", -3);
    expectScalar(reduce("nanmax", f64([1, NaN, -3])), "float64", 1);
    expectScalar(reduce("nanmax", f64([NaN, NaN])), "float64", NaN);
    const longs = ndarray("int64", [3], BigInt64Array.of(2n ** 62n + 1n, 2n ** 62n, -1n));
    expectScalar(reduce("max", longs), "int64", 2n ** 62n + 1n);
    const ulongs = ndarray("uint64", [2], BigUint64Array.of(2n ** 64n - 1n, 2n ** 64n - 2n));
    expectScalar(reduce("min", ulongs), "uint64", 2n ** 64n - 2n);
    expectScalar(reduce("max", f64([-Infinity, 3, Infinity])), "float64", Infinity);

    expectScalar(reduce("ptp", f64([1, 4, -2])), "float64", 6);
    expectScalar(reduce("ptp", ndarray("int8", [2], [-128, 127])), "int8", -1);
    expectScalar(reduce("ptp", ndarray("int16", [2], [-10, 20])), "int16", 30);
    expectScalar(reduce("ptp", ndarray("uint8", [2], [0, 255])), "uint8", 255);
    expectScalar(reduce("ptp", ndarray("int64", [2], BigInt64Array.of(-(2n ** 63n), 2n ** 63n - 1n))), "int64", -1n);
    expectScalar(reduce("ptp", f64([1, NaN])), "float64", NaN);
    expect(() => reduce("ptp", ndarray("bool", [2], [0, 1]))).toThrow(/boolean subtract/);
  });

  it("var and std (ddof 0)", () => {
    expectScalar(reduce("var", f64([1, 2, 3, 4])), "float64", 1.25);
    expectScalar(reduce("std", f64([1, 2, 3, 4])), "float64", Math.sqrt(1.25));
    expectScalar(reduce("var", i32([1, 2, 3, 4])), "float64", 1.25);
    expectScalar(reduce("std", f32([1, 3])), "float32", 1);
    expectScalar(reduce("var", ndarray("bool", [4], [1, 1, 0, 0])), "float64", 0.25);
    expectScalar(reduce("var", f64([1, NaN])), "float64", NaN);
    expectScalar(reduce("nanvar", f64([1, NaN, 3])), "float64", 1);
    expectScalar(reduce("nanstd", f64([1, NaN, 3, NaN])), "float64", 1);
    expectScalar(reduce("nanstd", f64([NaN])), "float64", NaN);
    expectScalar(reduce("std", f64([5])), "float64", 0);
  });

  it("median and nanmedian", () => {
    expectScalar(reduce("median", f64([3, 1, 2])), "float64", 2);
    expectScalar(reduce("median", f64([4, 1, 3, 2])), "float64", 2.5);
    expectScalar(reduce("median", i32([7, 1, 4, 100])), "float64", 5.5);
    expectScalar(reduce("median", i32([9])), "float64", 9);
    expectScalar(reduce("median", f32([1, 2])), "float32", 1.5);
    expectScalar(reduce("median", f64([1, NaN, 2])), "float64", NaN);
    expectScalar(reduce("nanmedian", f64([1, NaN, 2, 10])), "float64", 2);
    expectScalar(reduce("nanmedian", f32([NaN, NaN])), "float32", NaN);
    expectScalar(reduce("median", f64([5, 5, 5, 1, 5, 9, 5], [7])), "float64", 5);
    expectScalar(reduce("median", ndarray("int64", [4], BigInt64Array.of(10n, -10n, 4n, 2n))), "float64", 3);
  });

  it("any, all, count_nonzero, size", () => {
    expectScalar(reduce("any", f64([0, 0, NaN])), "bool", true);
    expectScalar(reduce("any", i32([0, 0])), "bool", false);
    expectScalar(reduce("all", f64([1, -0])), "bool", false);
    expectScalar(reduce("all", ndarray("int64", [2], [1, 2])), "bool", true);
    expectScalar(reduce("count_nonzero", f64([0, -0, NaN, 2, -1])), "int64", 3n);
    expectScalar(reduce("count_nonzero", ndarray("uint64", [3], [0, 5, 0])), "int64", 1n);
    expectScalar(reduce("size", ndarray("float32", [3, 4], new Float32Array(12))), "int64", 12n);
    expectScalar(reduce("size", ndarray("float64", [], [7])), "int64", 1n);
  });

  it("empty arrays follow numpy", () => {
    const empty = ndarray("float64", [0], new Float64Array(0));
    const emptyInt = ndarray("int32", [2, 0], new Int32Array(0));
    expectScalar(reduce("sum", empty), "float64", 0);
    expectScalar(reduce("sum", emptyInt), "int64", 0n);
    expectScalar(reduce("prod", emptyInt), "int64", 1n);
    expectScalar(reduce("mean", empty), "float64", NaN);
    expectScalar(reduce("mean", emptyInt), "float64", NaN);
    expectScalar(reduce("mean", ndarray("float32", [0], new Float32Array(0))), "float32", NaN);
    expectScalar(reduce("std", empty), "float64", NaN);
    expectScalar(reduce("median", emptyInt), "float64", NaN);
    expectScalar(reduce("nanmedian", empty), "float64", NaN);
    expectScalar(reduce("any", empty), "bool", false);
    expectScalar(reduce("all", empty), "bool", true);
    expectScalar(reduce("size", emptyInt), "int64", 0n);
    expectScalar(reduce("count_nonzero", empty), "int64", 0n);
    expect(() => reduce("min", empty)).toThrow("zero-size array to reduction operation minimum which has no identity");
    expect(() => reduce("max", emptyInt)).toThrow(
      "zero-size array to reduction operation maximum which has no identity",
    );
    expect(() => reduce("nanmin", empty)).toThrow("zero-size array to reduction operation fmin which has no identity");
    expect(() => reduce("ptp", empty)).toThrow("zero-size array to reduction operation maximum which has no identity");
  });

  it("refuses complex data", () => {
    const complex = ndarray("complex128", [2], Float64Array.of(1, 2, 3, 4));
    expect(() => reduce("mean", complex)).toThrow("complex data is not supported");
    expect(() => reduce("max", complex)).toThrow("complex data is not supported");
    expectScalar(reduce("size", complex), "int64", 2n);
  });
});

describe("reduce: larger arrays against reference loops", () => {
  const rand = random(1);
  const n = 100_003;
  const doubles = new Float64Array(n);
  for (let i = 0; i < n; i++) doubles[i] = (rand() - 0.3) * 1000;
  const ints = new Int32Array(n);
  for (let i = 0; i < n; i++) ints[i] = Math.floor((rand() - 0.5) * 2 ** 32);
  const longs = new BigInt64Array(n);
  for (let i = 0; i < n; i++) longs[i] = BigInt(Math.floor((rand() - 0.5) * 2 ** 53)) * 1024n + BigInt(i);

  it("float sums and means agree with a plain loop to rounding", () => {
    let sum = 0;
    for (const v of doubles) sum += v;
    const array = ndarray("float64", [n], doubles);
    const close = (actual: number, expected: number) =>
      expect(Math.abs(actual - expected)).toBeLessThanOrEqual(1e-10 * Math.abs(expected));
    close(value(reduce("sum", array)) as number, sum);
    close(value(reduce("mean", array)) as number, sum / n);
    let sq = 0;
    for (const v of doubles) sq += (v - sum / n) ** 2;
    close(value(reduce("std", array)) as number, Math.sqrt(sq / n));
    close(value(reduce("var", array)) as number, sq / n);
    const sorted = Float64Array.from(doubles).sort();
    expect(value(reduce("median", array))).toBe(sorted[(n - 1) / 2]);
    expect(value(reduce("median", ndarray("float64", [n - 1], doubles.subarray(0, n - 1))))).toBe(
      (() => {
        const s = Float64Array.from(doubles.subarray(0, n - 1)).sort();
        return (s[(n - 1) / 2 - 1]! + s[(n - 1) / 2]!) / 2;
      })(),
    );
    let min = Infinity;
    let max = -Infinity;
    for (const v of doubles) {
      min = Math.min(min, v);
      max = Math.max(max, v);
    }
    expect(value(reduce("min", array))).toBe(min);
    expect(value(reduce("ptp", array))).toBe(max - min);
  });

  it("integer sums are exact", () => {
    let total = 0n;
    for (const v of ints) total += BigInt(v);
    expectScalar(reduce("sum", ndarray("int32", [n], ints)), "int64", total);
    let longTotal = 0n;
    for (const v of longs) longTotal += v;
    expectScalar(reduce("sum", ndarray("int64", [n], longs)), "int64", BigInt.asIntN(64, longTotal));
    const unsigned = new BigUint64Array(longs.buffer);
    let unsignedTotal = 0n;
    for (const v of unsigned) unsignedTotal += v;
    expectScalar(reduce("sum", ndarray("uint64", [n], unsigned)), "uint64", BigInt.asUintN(64, unsignedTotal));
    let count = 0;
    for (const v of ints) if (v > 0) count++;
    const positive = new Uint8Array(n);
    for (let i = 0; i < n; i++) positive[i] = ints[i]! > 0 ? 1 : 0;
    expectScalar(reduce("sum", ndarray("bool", [n], positive)), "int64", BigInt(count));
    expectScalar(reduce("count_nonzero", ndarray("bool", [n], positive)), "int64", BigInt(count));
  });

  it("is fast on 10M float32 elements", () => {
    const big = new Float32Array(10_000_000);
    for (let i = 0; i < big.length; i++) big[i] = (i % 1000) / 7;
    const array = ndarray("float32", [big.length], big);
    reduce("mean", ndarray("float32", [1000], big.subarray(0, 1000))); // warm up
    const start = performance.now();
    const mean = value(reduce("mean", array)) as number;
    const elapsed = performance.now() - start;
    expect(mean).toBeCloseTo(499.5 / 7, 3);
    const startMax = performance.now();
    reduce("nanmax", array);
    const elapsedMax = performance.now() - startMax;
    const startMedian = performance.now();
    // 10000 copies of each k/7 (k < 1000): the middle two are 499/7 and 500/7, averaged in float32.
    const f = Math.fround;
    expect(value(reduce("median", array))).toBe(f(f(f(499 / 7) + f(500 / 7)) / 2));
    const elapsedMedian = performance.now() - startMedian;
    const ms = (t: number) => `${t.toFixed(0)} ms`;
    console.log(`10M float32: mean ${ms(elapsed)}, nanmax ${ms(elapsedMax)}, median ${ms(elapsedMedian)}`);
    expect(elapsed).toBeLessThan(1000);
    expect(elapsedMax).toBeLessThan(1000);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// numpy cross-check

const haveNumpy = h5pyAvailable(); // Debian's h5py brings numpy

describe.skipIf(!haveNumpy)("reduce against numpy (Debian python3-numpy)", () => {
  const dir = mkdtempSync(join(tmpdir(), "damnit-summary-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  interface Case {
    name: string;
    array: NdArray;
  }
  const rand = random(42);
  const cases: Case[] = [];
  const add = (name: string, array: NdArray) => cases.push({ name, array });
  {
    const n = 10_007;
    const a = new Float64Array(n);
    for (let i = 0; i < n; i++) a[i] = (rand() - 0.4) * 1e3 + 1e-7 * rand();
    add("float64 random", ndarray("float64", [n], a));
  }
  {
    const a = new Float64Array(37 * 29);
    for (let i = 0; i < a.length; i++) a[i] = rand() < 0.1 ? NaN : rand() * 10 - 5;
    add("float64 2-D with NaN", ndarray("float64", [37, 29], a));
  }
  {
    const n = 100_003;
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) a[i] = rand() * 100 + 0.001;
    add("float32 random", ndarray("float32", [n], a));
  }
  {
    const n = 3001;
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) a[i] = rand() < 0.2 ? NaN : rand() * 2 - 1;
    add("float32 with NaN", ndarray("float32", [n], a));
  }
  {
    const n = 20_000;
    const a = new Int8Array(n);
    for (let i = 0; i < n; i++) a[i] = Math.floor(rand() * 256) - 128;
    a[0] = -128;
    a[1] = 127;
    add("int8", ndarray("int8", [n], a));
  }
  {
    const n = 30_011;
    const a = new Int32Array(n);
    for (let i = 0; i < n; i++) a[i] = Math.floor((rand() - 0.5) * 2 ** 32);
    add("int32", ndarray("int32", [n], a));
  }
  {
    const n = 777;
    const a = new Uint16Array(n);
    for (let i = 0; i < n; i++) a[i] = Math.floor(rand() * 65536);
    add("uint16", ndarray("uint16", [n], a));
  }
  {
    const n = 9000;
    const a = new BigInt64Array(n);
    for (let i = 0; i < n; i++) a[i] = BigInt(Math.floor((rand() - 0.5) * 2 ** 52)) * 4096n + BigInt(i);
    add("int64 large", ndarray("int64", [n], a));
  }
  {
    const n = 5000;
    const a = new BigUint64Array(n);
    for (let i = 0; i < n; i++) a[i] = BigInt(Math.floor(rand() * 2 ** 52)) * 4096n + 7n;
    add("uint64 large", ndarray("uint64", [n], a));
  }
  {
    const n = 1001;
    const a = new Uint8Array(n);
    for (let i = 0; i < n; i++) a[i] = rand() < 0.3 ? 1 : 0;
    add("bool", ndarray("bool", [n], a));
  }
  add("float64 all NaN", f64([NaN, NaN, NaN]));
  add("float64 small", f64([1, 2, 3, 4]));
  add("float64 empty", ndarray("float64", [0], new Float64Array(0)));
  add("int32 empty", ndarray("int32", [0], new Int32Array(0)));
  add("float32 0-d", ndarray("float32", [], Float32Array.of(2.5)));

  interface NumpyResult {
    dtype?: string;
    value?: string;
    error?: string;
  }

  const results: NumpyResult[][] = (() => {
    const spec = cases.map((c, i) => {
      const path = join(dir, `case${i}.bin`);
      const d = c.array.data;
      writeFileSync(path, new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
      return { path, dtype: c.array.dtype === "bool" ? "bool" : c.array.dtype, shape: c.array.shape };
    });
    const script = `
import numpy as np, warnings
warnings.simplefilter("ignore")
spec = json.loads(sys.argv[1])
methods = json.loads(sys.argv[2])
out = []
for item in spec:
    a = np.fromfile(item["path"], dtype=item["dtype"]).reshape(item["shape"])
    row = []
    for m in methods:
        try:
            r = np.asarray(getattr(np, m)(a))
            v = r.item()
            row.append({"dtype": str(r.dtype), "value": repr(float(v)) if isinstance(v, float) else str(int(v))})
        except Exception as e:
            row.append({"error": str(e)})
    out.append(row)
print(json.dumps(out))
`;
    return runH5py(script, [JSON.stringify(spec), JSON.stringify(REDUCTIONS)]) as NumpyResult[][];
  })();

  /** Methods whose float results may differ from numpy in the last bits (sequential vs SIMD products). */
  const APPROXIMATE = new Set(["prod", "nanprod"]);

  for (const [i, c] of cases.entries()) {
    it(`matches numpy for ${c.name}`, () => {
      const mismatches: string[] = [];
      for (const [j, method] of REDUCTIONS.entries()) {
        const expected = results[i]![j]!;
        let actual: NdArray;
        try {
          actual = reduce(method, c.array);
        } catch (error) {
          const message = (error as Error).message;
          if (expected.error === undefined) {
            mismatches.push(`${method}: threw ${message}, numpy gave ${expected.value}`);
          } else if (expected.error.startsWith("zero-size") && message !== expected.error) {
            mismatches.push(`${method}: "${message}" ≠ "${expected.error}"`);
          }
          continue;
        }
        if (expected.error !== undefined) {
          mismatches.push(`${method}: numpy raised "${expected.error}"`);
          continue;
        }
        if (actual.dtype !== expected.dtype) mismatches.push(`${method}: dtype ${actual.dtype} ≠ ${expected.dtype}`);
        const v = value(actual);
        if (typeof v === "bigint" || /^(u?int|bool)/.test(expected.dtype!)) {
          if (BigInt(v) !== BigInt(expected.value!)) mismatches.push(`${method}: ${v} ≠ ${expected.value}`);
          continue;
        }
        const want = Number(expected.value!.replace("nan", "NaN").replace("inf", "Infinity"));
        const ok = Number.isNaN(want)
          ? Number.isNaN(v)
          : Object.is(v, want) || !Number.isFinite(want)
            ? Object.is(v, want)
            : APPROXIMATE.has(method)
            ? Math.abs(v - want) <= 1e-12 * Math.abs(want)
            : Object.is(v, want);
        if (!ok) mismatches.push(`${method}: ${v} ≠ ${want}`);
      }
      expect(mismatches).toEqual([]);
    });
  }
});

// ---------------------------------------------------------------------------------------------------------------

describe("trendline", () => {
  const rows = (t: NdArray) => {
    const m = t.shape[1]!;
    const d = t.data as Float64Array;
    return { x: Array.from(d.subarray(0, m)), y: Array.from(d.subarray(m)) };
  };

  it("keeps short series whole, as a 2×N float64 array", () => {
    const t = trendline(Float64Array.of(0, 1, 2), Float64Array.of(5, 6, 7));
    expect(t.dtype).toBe("float64");
    expect(t.shape).toEqual([2, 3]);
    expect(rows(t)).toEqual({ x: [0, 1, 2], y: [5, 6, 7] });
    expect(trendline(new Float64Array(0), new Float64Array(0)).shape).toEqual([2, 0]);
  });

  it("sorts by x with a stable sort, NaN x last", () => {
    const t = trendline(Float64Array.of(3, 1, 2, 1, NaN, 0), Float64Array.of(30, 10, 20, 11, 99, 0));
    expect(rows(t)).toEqual({ x: [0, 1, 1, 2, 3, NaN], y: [0, 10, 11, 20, 30, 99] });
  });

  it("uses DAMNIT's ratio max(1, ⌊N/120⌋)", () => {
    expect(trendlineRatio(0)).toBe(1);
    expect(trendlineRatio(239)).toBe(1);
    expect(trendlineRatio(240)).toBe(2);
    expect(trendlineRatio(10_000)).toBe(83);
  });

  it("downsamples with FPCS (hand-traced)", () => {
    // windows of 3: [0,5,1] keeps min (0,0); [2,8,3] keeps min (3,2) and, as the previous window also kept
    // its min, the potential point (1,5); [7,4,6] with the carried max (4,8) keeps max (4,8); the last point is added.
    const x = Float64Array.of(0, 1, 2, 3, 4, 5, 6, 7, 8);
    const out = fpcsDownsample(x, Float64Array.of(0, 5, 1, 2, 8, 3, 7, 4, 6), 3);
    expect(Array.from(out.x)).toEqual([0, 1, 3, 4, 8]);
    expect(Array.from(out.y)).toEqual([0, 5, 2, 8, 6]);
  });

  it("keeps NaN points in place as fpcs 1.0.0 does (hand-traced)", () => {
    const out = fpcsDownsample(Float64Array.of(0, 1, 2, 3, 4, 5), Float64Array.of(1, NaN, 3, 0, NaN, 2), 2);
    expect(Array.from(out.x)).toEqual([0, 1, 0, 0, 2, 4, 3, 5]);
    expect(Array.from(out.y)).toEqual([1, NaN, 1, 1, 3, NaN, 0, 2]);
  });

  it("reduces 10000 points to ~150–250, keeping the ends and the extremes", () => {
    const n = 10_000;
    const rand = random(7);
    const x = new Float64Array(n);
    const y = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      x[i] = i * 0.5;
      y[i] = Math.sin(i / 300) + 0.3 * (rand() - 0.5);
    }
    y[5000] = 100;
    y[7123] = -100;
    const t = trendline(x, y);
    const { x: xs, y: ys } = rows(t);
    expect(xs.length).toBeGreaterThanOrEqual(120);
    expect(xs.length).toBeLessThanOrEqual(260);
    expect(xs[0]).toBe(0);
    expect(xs[xs.length - 1]).toBe((n - 1) * 0.5);
    expect(ys[0]).toBe(y[0]);
    expect(ys[ys.length - 1]).toBe(y[n - 1]);
    expect(xs).toContain(2500);
    expect(ys).toContain(100);
    expect(ys).toContain(-100);
    // Every kept point is an input point, in x order.
    for (let k = 0; k < xs.length; k++) {
      expect(y[xs[k]! * 2]).toBe(ys[k]);
      if (k > 0) expect(xs[k]!).toBeGreaterThan(xs[k - 1]!);
    }
    // Each window of 83 points keeps at least one of its points (or the carried one): no gap is wider than 2 windows.
    for (let k = 1; k < xs.length; k++) expect((xs[k]! - xs[k - 1]!) * 2).toBeLessThanOrEqual(2 * 83);
  });
});

// ---------------------------------------------------------------------------------------------------------------

describe("defaultSummary", () => {
  it("passes strings and 0-d arrays through", () => {
    expect(defaultSummary("hello")).toEqual({ value: "hello", trendline: false });
    const scalar = ndarray("int32", [], [42]);
    expect(defaultSummary(scalar)).toEqual({ value: scalar, trendline: false });
  });

  it("makes a trendline of 1-D data against the index", () => {
    const result = defaultSummary(ndarray("int16", [3], [5, -1, 7]))!;
    expect(result.trendline).toBe(true);
    const t = result.value as NdArray;
    expect(t.dtype).toBe("float64");
    expect(t.shape).toEqual([2, 3]);
    expect(Array.from(t.data as Float64Array)).toEqual([0, 1, 2, 5, -1, 7]);
    const bools = defaultSummary(ndarray("bool", [2], [1, 0]))!.value as NdArray;
    expect(Array.from(bools.data as Float64Array)).toEqual([0, 1, 1, 0]);
    const empty = defaultSummary(ndarray("float64", [0], new Float64Array(0)))!;
    expect(empty.trendline).toBe(true);
    expect((empty.value as NdArray).shape).toEqual([2, 0]);
  });

  it("downsamples a long float32 series against the index like trendline() with an explicit index", () => {
    const n = 5000;
    const rand = random(11);
    const y = new Float32Array(n);
    for (let i = 0; i < n; i++) y[i] = i % 97 === 0 ? NaN : Math.cos(i / 50) + rand();
    const result = defaultSummary(ndarray("float32", [n], y))!;
    expect(result.trendline).toBe(true);
    const index = new Float64Array(n);
    for (let i = 0; i < n; i++) index[i] = i;
    const expected = trendline(index, Float64Array.from(y));
    const actual = result.value as NdArray;
    expect(actual.shape).toEqual(expected.shape);
    expect(Array.from(actual.data as Float64Array)).toEqual(Array.from(expected.data as Float64Array));
    const m = actual.shape[1]!;
    expect(m).toBeLessThan(n / 10);
    expect(actual.data[0]).toBe(0);
    expect(actual.data[m - 1]).toBe(n - 1);
  });

  it("uses a labelled array's numeric coordinate as x, sorted", () => {
    const labelled: LabelledArray = {
      kind: "labelled",
      data: f64([1, 2, 3]),
      dims: ["trainId"],
      coords: { trainId: ndarray("uint64", [3], [102, 100, 101]) },
    };
    const t = defaultSummary(labelled)!.value as NdArray;
    expect(Array.from(t.data as Float64Array)).toEqual([100, 101, 102, 2, 3, 1]);
    const boolCoord: LabelledArray = { ...labelled, coords: { trainId: ndarray("bool", [3], [1, 0, 1]) } };
    expect(Array.from((defaultSummary(boolCoord)!.value as NdArray).data as Float64Array)).toEqual([0, 1, 2, 1, 2, 3]);
    const noCoord: LabelledArray = { ...labelled, coords: {} };
    expect(Array.from((defaultSummary(noCoord)!.value as NdArray).data as Float64Array)).toEqual([0, 1, 2, 1, 2, 3]);
    const wrongLength: LabelledArray = { ...labelled, coords: { trainId: f64([1, 2]) } };
    const wrongLengthSummary = defaultSummary(wrongLength)!.value as NdArray;
    expect(Array.from(wrongLengthSummary.data as Float64Array)).toEqual([0, 1, 2, 1, 2, 3]);
  });

  it("makes a ≤300 px 8-bit RGB PNG of 2-D data", () => {
    const data = new Float64Array(40 * 60);
    for (let i = 0; i < data.length; i++) data[i] = i % 7 === 0 ? NaN : i;
    const plain = ndarray("float64", [40, 60], data);
    const labelled: LabelledArray = { kind: "labelled", data: plain, dims: ["y", "x"], coords: {} };
    for (const value of [plain, labelled]) {
      const result = defaultSummary(value)!;
      expect(result.trendline).toBe(false);
      const png = result.value as NdArray;
      expect(png.dtype).toBe("uint8");
      expect(png.shape).toEqual([png.data.length]);
      const bytes = png.data as Uint8Array;
      expect(Array.from(bytes.subarray(0, 8))).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
      const image = decode(bytes);
      expect(Math.max(image.width, image.height)).toBe(300);
      expect(image.width).toBeLessThanOrEqual(300);
      expect(image.height).toBeLessThanOrEqual(300);
      expect(image.depth).toBe(8);
      expect(image.channels).toBe(3);
    }
  });

  it("says <thumbnail error> when no thumbnail can be made", () => {
    expect(defaultSummary(ndarray("complex128", [2, 2], new Float64Array(8)))!.value).toBe("<thumbnail error>");
    expect(defaultSummary(ndarray("float64", [0, 3], new Float64Array(0)))!.value).toBe("<thumbnail error>");
  });

  it("describes ≥3-D data as '<dtype>: <shape>'", () => {
    expect(defaultSummary(ndarray("float64", [2, 2, 2, 2], new Float64Array(16)))).toEqual({
      value: "float64: (2, 2, 2, 2)",
      trendline: false,
    });
    expect(defaultSummary(ndarray("bool", [1, 2, 3], new Uint8Array(6)))!.value).toBe("bool: (1, 2, 3)");
    expect(defaultSummary(ndarray("uint16", [4, 0, 3], new Uint16Array(0)))!.value).toBe("uint16: (4, 0, 3)");
  });
});

describe("maxDiffOf", () => {
  it("bool: 1 if both values occur", () => {
    expect(maxDiffOf(ndarray("bool", [3], [1, 0, 1]))).toBe(1);
    expect(maxDiffOf(ndarray("bool", [2], [1, 1]))).toBe(0);
  });

  it("numbers: |nanmax − nanmin| in numpy's arithmetic", () => {
    expect(maxDiffOf(f64([3, -2, NaN, 7]))).toBe(9);
    expect(maxDiffOf(i32([5, 5, 5]))).toBe(0);
    expect(maxDiffOf(ndarray("uint8", [2], [0, 255]))).toBe(255);
    expect(maxDiffOf(ndarray("int8", [2], [-128, 127]))).toBe(1); // int8 subtraction wraps to -1
    expect(maxDiffOf(ndarray("int8", [2], [-100, 20]))).toBe(120);
    expect(maxDiffOf(f32([0.1, 0.3]))).toBe(Math.fround(Math.fround(0.3) - Math.fround(0.1)));
    expect(maxDiffOf(ndarray("int64", [2], BigInt64Array.of(-(2n ** 62n), 2n ** 62n)))).toBe(2 ** 63);
    expect(maxDiffOf(ndarray("uint64", [2], BigUint64Array.of(1n, 2n ** 64n - 1n)))).toBe(2 ** 64);
    expect(maxDiffOf({ kind: "labelled", data: f64([1, 4]), dims: ["x"], coords: {} })).toBe(3);
    expect(maxDiffOf(ndarray("complex128", [2], Float64Array.of(0, 0, 3, 4)))).toBe(5);
  });

  it("is undefined for strings, scalars, single elements and all-NaN data", () => {
    expect(maxDiffOf(undefined)).toBeUndefined();
    expect(maxDiffOf("text")).toBeUndefined();
    expect(maxDiffOf(ndarray("float64", [], [3]))).toBeUndefined();
    expect(maxDiffOf(f64([3]))).toBeUndefined();
    expect(maxDiffOf(f64([NaN, NaN]))).toBeUndefined();
  });
});

describe("reduceValue", () => {
  it("skips NaN for a labelled float array's mean/sum/min/max/std, as xarray does", () => {
    const labelled: LabelledArray = { kind: "labelled", data: f64([1, NaN, 3]), dims: ["x"], coords: {} };
    expectScalar(reduceValue("mean", labelled), "float64", 2);
    expectScalar(reduceValue("sum", labelled), "float64", 4);
    expectScalar(reduceValue("max", labelled), "float64", 3);
    expectScalar(reduceValue("std", labelled), "float64", 1);
    expectScalar(reduceValue("median", labelled), "float64", NaN);
    expect(() => reduceValue("ptp", labelled)).toThrow(/not implemented on xarray objects/);
    const ints: LabelledArray = { kind: "labelled", data: i32([1, 2, 4]), dims: ["x"], coords: {} };
    expectScalar(reduceValue("sum", ints), "int64", 7n);
  });

  it("handles strings like numpy's 0-d string arrays", () => {
    expectScalar(reduceValue("size", "abc"), "int64", 1n);
    expectScalar(reduceValue("count_nonzero", ""), "int64", 0n);
    expect(() => reduceValue("mean", "abc")).toThrow(/string/);
  });
});

describe("summarise", () => {
  it("prefers summary_value, then the method, then the default", () => {
    const data = ndarray("int64", [10], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const fromValue = summarise("v", { data, summaryValue: ndarray("int64", [], [4]), summaryMethod: "sum" });
    expectScalar(fromValue.summary as NdArray, "int64", 4n);
    expect(fromValue.attrs).toEqual({ summary_method: "sum", max_diff: 9 });
    expect(fromValue.warnings).toEqual([]);

    const fromMethod = summarise("v", { data, summaryMethod: "sum" });
    expectScalar(fromMethod.summary as NdArray, "int64", 45n);
    expect(fromMethod.attrs).toEqual({ summary_method: "sum", max_diff: 9 });

    const fromDefault = summarise("v", { data });
    expect((fromDefault.summary as NdArray).shape).toEqual([2, 10]);
    expect(fromDefault.attrs).toEqual({ summary_type: "trendline", max_diff: 9 });

    expect(summarise("s", { summaryValue: "text" })).toEqual({ summary: "text", attrs: {}, warnings: [] });
    expect(summarise("s", { data: "a string" })).toEqual({ summary: "a string", attrs: {}, warnings: [] });
  });

  it("summarises the preview by default but takes max_diff from the data", () => {
    const data = ndarray("float64", [2, 2, 2], Float64Array.of(0, 1, 2, 3, 4, 5, 6, 7));
    const preview = f64([4, 5, 6]);
    const result = summarise("p", { data, preview });
    expect((result.summary as NdArray).shape).toEqual([2, 3]);
    expect(result.attrs).toEqual({ summary_type: "trendline", max_diff: 7 });
    expect(summarise("p", { data }).summary).toBe("float64: (2, 2, 2)");
    // A method applies to the data, not the preview.
    expectScalar(summarise("p", { data, preview, summaryMethod: "max" }).summary as NdArray, "float64", 7);
  });

  it("falls back to the default when the method fails, with a warning", () => {
    const result = summarise("foo", { data: ndarray("float64", [0], new Float64Array(0)), summaryMethod: "max" });
    expect(result.warnings).toEqual([
      "Failed to produce summary data for foo: zero-size array to reduction operation maximum which has no identity",
    ]);
    expect((result.summary as NdArray).shape).toEqual([2, 0]);
    expect(result.attrs).toEqual({ summary_method: "max", summary_type: "trendline" });

    const unknown = summarise("bar", { data: f64([1, 2]), summaryMethod: "nonsense" });
    expect(unknown.warnings).toEqual(['Failed to produce summary data for bar: unknown summary method "nonsense"']);
    expect(unknown.attrs.summary_method).toBe("nonsense");
  });

  it("marks any 2-row summary as a trendline and produces nothing without data or preview", () => {
    const twoRows = ndarray("float64", [2, 2], Float64Array.of(1, 2, 3, 4));
    expect(summarise("t", { summaryValue: twoRows }).attrs).toEqual({ summary_type: "trendline" });
    expect(summarise("t", { summaryValue: ndarray("float64", [3, 2], new Float64Array(6)) }).attrs).toEqual({});
    expect(summarise("n", {})).toEqual({ attrs: {}, warnings: [] });
    expect(summarise("n", { summaryMethod: "mean" })).toEqual({ attrs: { summary_method: "mean" }, warnings: [] });
  });

  it("summarises 2-D data as PNG bytes", () => {
    const data = ndarray("uint16", [3, 3], [1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const result = summarise("img", { data });
    const png = result.summary as NdArray;
    expect(png.dtype).toBe("uint8");
    expect(png.shape.length).toBe(1);
    expect(result.attrs).toEqual({ max_diff: 8 });
  });
});
