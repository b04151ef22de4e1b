import { interpolateViridis } from "d3-scale-chromatic";
import { decode } from "fast-png";
import { describe, expect, it } from "vitest";

import { ndarray, type NdArray } from "../src/core/ndarray.js";
import { colourLimits, thumbnailPng } from "../src/summary/thumbnail.js";

interface Decoded {
  width: number;
  height: number;
  pixel(x: number, y: number): string;
}

function decoded(png: Uint8Array): Decoded {
  const image = decode(png);
  expect(image.depth).toBe(8);
  expect(image.channels).toBe(3);
  const data = image.data;
  return {
    width: image.width,
    height: image.height,
    pixel(x, y) {
      const p = (y * image.width + x) * 3;
      return "#" + [data[p]!, data[p + 1]!, data[p + 2]!].map((c) => c.toString(16).padStart(2, "0")).join("");
    },
  };
}

/** A (height, width) float64 array whose value is `f(row, column)`. */
function grid(height: number, width: number, f: (row: number, column: number) => number): NdArray {
  const data = new Float64Array(height * width);
  for (let r = 0; r < height; r++) for (let c = 0; c < width; c++) data[r * width + c] = f(r, c);
  return ndarray("float64", [height, width], data);
}

const ramp = (height: number, width: number) => grid(height, width, (r, c) => r * width + c);

const VIRIDIS_START = "#440154";
const VIRIDIS_END = "#fde725";

/** numpy.quantile(values, q) with the default linear method, by sorting. */
function numpyQuantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  const virtual = (sorted.length - 1) * q;
  const k = Math.floor(virtual);
  const t = virtual - k;
  return k + 1 < sorted.length ? sorted[k]! + (sorted[k + 1]! - sorted[k]!) * t : sorted[k]!;
}

describe("thumbnailPng", () => {
  it("writes a PNG", () => {
    const png = thumbnailPng(ramp(4, 4));
    expect([...png.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  });

  it("scales a small image up so its larger side is 300 px", () => {
    const wide = decoded(thumbnailPng(ramp(32, 64)));
    expect([wide.width, wide.height]).toEqual([300, 150]);
    const tall = decoded(thumbnailPng(ramp(64, 32)));
    expect([tall.width, tall.height]).toEqual([150, 300]);
    const tiny = decoded(thumbnailPng(ramp(1, 1)));
    expect([tiny.width, tiny.height]).toEqual([300, 300]);
  });

  it("scales a large image down so its larger side is 300 px", () => {
    const image = decoded(thumbnailPng(ramp(500, 1000)));
    expect([image.width, image.height]).toEqual([300, 150]);
    const strip = decoded(thumbnailPng(ramp(2, 5000)));
    expect([strip.width, strip.height]).toEqual([300, 1]);
  });

  it("keeps a 300 × 300 image at its size", () => {
    const image = decoded(thumbnailPng(ramp(300, 300)));
    expect([image.width, image.height]).toEqual([300, 300]);
  });

  it("honours maxSize", () => {
    const image = decoded(thumbnailPng(ramp(500, 1000), { maxSize: 100 }));
    expect([image.width, image.height]).toEqual([100, 50]);
    expect(() => thumbnailPng(ramp(2, 2), { maxSize: 0 })).toThrow(RangeError);
  });

  it.each([
    [32, 64],
    [300, 300],
    [500, 1000],
  ])("paints an increasing %i × %i ramp from the start of viridis (top left) to its end (bottom right)", (h, w) => {
    const image = decoded(thumbnailPng(ramp(h, w)));
    expect(image.pixel(0, 0)).toBe(VIRIDIS_START);
    expect(image.pixel(image.width - 1, image.height - 1)).toBe(VIRIDIS_END);
  });

  it("puts row 0 of the array at the top", () => {
    // Row 0 holds 1s, the rest 0s: limits 0 and 1.
    const image = decoded(thumbnailPng(grid(10, 10, (r) => (r === 0 ? 1 : 0))));
    expect(image.pixel(150, 0)).toBe(VIRIDIS_END);
    expect(image.pixel(150, 299)).toBe(VIRIDIS_START);
  });

  it("upscales by nearest-neighbour blocks", () => {
    // A 2 × 2 checkerboard becomes four 150 × 150 blocks of pure colour.
    const image = decoded(thumbnailPng(grid(2, 2, (r, c) => (r + c) % 2)));
    expect(image.pixel(0, 0)).toBe(VIRIDIS_START);
    expect(image.pixel(149, 149)).toBe(VIRIDIS_START);
    expect(image.pixel(150, 0)).toBe(VIRIDIS_END);
    expect(image.pixel(149, 150)).toBe(VIRIDIS_END);
    expect(image.pixel(150, 150)).toBe(VIRIDIS_START);
  });

  it("treats NaN and ±Infinity as 0", () => {
    const special = [NaN, Infinity, -Infinity];
    const withSpecial = grid(20, 30, (r, c) => ((r * 7 + c) % 11 === 0 ? special[(r + c) % 3]! : r + c));
    const withZeros = grid(20, 30, (r, c) => ((r * 7 + c) % 11 === 0 ? 0 : r + c));
    let png: Uint8Array | undefined;
    expect(() => (png = thumbnailPng(withSpecial))).not.toThrow();
    expect(png).toEqual(thumbnailPng(withZeros));
  });

  it("survives an array of only NaNs", () => {
    const image = decoded(thumbnailPng(grid(3, 3, () => NaN)));
    expect(image.pixel(0, 0)).toBe(interpolateViridis(0.5));
  });

  it("draws a constant image in the middle colour of the map", () => {
    const image = decoded(thumbnailPng(grid(16, 16, () => 42)));
    const middle = interpolateViridis(0.5);
    for (const [x, y] of [
      [0, 0],
      [150, 150],
      [299, 299],
    ] as const) {
      expect(image.pixel(x, y)).toBe(middle);
    }
  });

  it("clips values outside the 1 % / 99 % quantiles", () => {
    // One huge outlier must not squash the rest of the ramp into the bottom colour: limits ≈ 99.99 .. 9899.01.
    const image = decoded(thumbnailPng(grid(100, 100, (r, c) => (r === 99 && c === 99 ? 1e12 : r * 100 + c))));
    expect(image.pixel(0, 0)).toBe(VIRIDIS_START);
    expect(image.pixel(299, 299)).toBe(VIRIDIS_END);
    const middle = image.pixel(150, 150); // value 5050
    expect(middle).not.toBe(VIRIDIS_START);
    expect(middle).not.toBe(VIRIDIS_END);
  });

  it("accepts every real dtype", () => {
    const cases: NdArray[] = [
      ndarray("bool", [2, 3], [0, 1, 0, 1, 1, 0]),
      ndarray("int8", [2, 3], [-3, -2, -1, 0, 1, 2]),
      ndarray("int16", [2, 3], [1, 2, 3, 4, 5, 6]),
      ndarray("int32", [2, 3], [1, 2, 3, 4, 5, 6]),
      ndarray("int64", [2, 3], [1, 2, 3, 4, 5, 6]),
      ndarray("uint8", [2, 3], [1, 2, 3, 4, 5, 6]),
      ndarray("uint16", [2, 3], [1, 2, 3, 4, 5, 6]),
      ndarray("uint32", [2, 3], [1, 2, 3, 4, 5, 6]),
      ndarray("uint64", [2, 3], [1, 2, 3, 4, 5, 6]),
      ndarray("float32", [2, 3], [1, 2, 3, 4, 5, 6]),
      ndarray("float64", [2, 3], [1, 2, 3, 4, 5, 6]),
    ];
    for (const array of cases) {
      const image = decoded(thumbnailPng(array));
      expect([image.width, image.height]).toEqual([300, 200]);
      expect(image.pixel(0, 0)).toBe(VIRIDIS_START);
      expect(image.pixel(299, 199)).toBe(array.dtype === "bool" ? VIRIDIS_START : VIRIDIS_END);
    }
  });

  it("handles 64-bit integers beyond 2^53", () => {
    const data = new BigUint64Array([0n, 2n ** 63n, 2n ** 64n - 1n, 5n]);
    const image = decoded(thumbnailPng(ndarray("uint64", [2, 2], data)));
    expect(image.pixel(0, 0)).toBe(VIRIDIS_START);
    expect(image.pixel(299, 0)).not.toBe(VIRIDIS_START);
  });

  it("scales an RGB uint8 image without a colour map", () => {
    // 2 × 2: red, green / blue, white
    const rgb = ndarray("uint8", [2, 2, 3], [255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255]);
    const image = decoded(thumbnailPng(rgb));
    expect([image.width, image.height]).toEqual([300, 300]);
    expect(image.pixel(0, 0)).toBe("#ff0000");
    expect(image.pixel(299, 0)).toBe("#00ff00");
    expect(image.pixel(0, 299)).toBe("#0000ff");
    expect(image.pixel(299, 299)).toBe("#ffffff");
  });

  it("composites an RGBA uint8 image over white", () => {
    const rgba = ndarray("uint8", [1, 2, 4], [255, 0, 0, 255, 0, 0, 0, 0]);
    const image = decoded(thumbnailPng(rgba));
    expect([image.width, image.height]).toEqual([300, 150]);
    expect(image.pixel(0, 0)).toBe("#ff0000");
    expect(image.pixel(299, 149)).toBe("#ffffff");
  });

  it("averages areas when scaling down", () => {
    // 600 × 600 fine checkerboard of black and white → uniform grey at 300 × 300.
    const size = 600;
    const data = new Uint8Array(size * size * 3);
    for (let r = 0; r < size; r++) for (let c = 0; c < size; c++) data.fill((r + c) % 2 ? 255 : 0, (r * size + c) * 3, (r * size + c + 1) * 3);
    const image = decoded(thumbnailPng(ndarray("uint8", [size, size, 3], data)));
    expect([image.width, image.height]).toEqual([300, 300]);
    expect(image.pixel(0, 0)).toBe("#808080");
    expect(image.pixel(123, 45)).toBe("#808080");
  });

  it("rejects a 1-D array", () => {
    expect(() => thumbnailPng(ndarray("float64", [10], new Float64Array(10)))).toThrow(RangeError);
    expect(() => thumbnailPng(ndarray("float64", [10], new Float64Array(10)))).toThrow(/\(10,\)/);
  });

  it("rejects a complex array", () => {
    const complex = ndarray("complex128", [2, 3], new Float64Array(12));
    expect(() => thumbnailPng(complex)).toThrow(RangeError);
    expect(() => thumbnailPng(complex)).toThrow(/complex128.*\(2, 3\)/);
  });

  it("rejects other shapes and non-uint8 images", () => {
    expect(() => thumbnailPng(ndarray("float64", [2, 2, 2], new Float64Array(8)))).toThrow(RangeError);
    expect(() => thumbnailPng(ndarray("float64", [2, 2, 3], new Float64Array(12)))).toThrow(/float64/);
    expect(() => thumbnailPng(ndarray("float64", [0, 5], new Float64Array(0)))).toThrow(RangeError);
    expect(() => thumbnailPng(ndarray("float64", [], new Float64Array(1)))).toThrow(RangeError);
  });
});

describe("colourLimits", () => {
  it("matches numpy for 0..99", () => {
    const [lo, hi] = colourLimits(Float64Array.from({ length: 100 }, (_, i) => i));
    expect(lo).toBeCloseTo(0.99, 12);
    expect(hi).toBeCloseTo(98.01, 12);
  });

  it("matches numpy for a small unsorted array", () => {
    // np.quantile([3, 1, 4, 1, 5, 9, 2, 6], [0.01, 0.99]) → [1.0, 8.79]
    const [lo, hi] = colourLimits(Float64Array.from([3, 1, 4, 1, 5, 9, 2, 6]));
    expect(lo).toBeCloseTo(1, 12);
    expect(hi).toBeCloseTo(8.79, 12);
  });

  it("ignores NaNs like nanquantile and does not modify its input", () => {
    const values = Float64Array.from([NaN, 10, NaN, 0]);
    const [lo, hi] = colourLimits(values);
    expect(lo).toBeCloseTo(0.1, 12);
    expect(hi).toBeCloseTo(9.9, 12);
    expect([...values]).toEqual([NaN, 10, NaN, 0]);
    expect(colourLimits(Float64Array.from([NaN]))).toEqual([NaN, NaN]);
    expect(colourLimits(Float64Array.from([7]))).toEqual([7, 7]);
  });

  it("agrees with sorting on random data with duplicates", () => {
    let seed = 12345;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (const n of [2, 3, 17, 100, 1001, 5000]) {
      const values = Array.from({ length: n }, () => Math.floor(random() * 50) - 10 + (random() < 0.3 ? 0.5 : 0));
      const [lo, hi] = colourLimits(Float64Array.from(values));
      expect(lo).toBeCloseTo(numpyQuantile(values, 0.01), 9);
      expect(hi).toBeCloseTo(numpyQuantile(values, 0.99), 9);
    }
  });
});
