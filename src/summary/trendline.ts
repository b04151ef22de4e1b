/**
 * Trendline summaries of 1-D data (spec §3.7), after DAMNIT's `downsample_line` (`damnit_writing.py`):
 * x (coordinate values or the index) and y as float64, sorted by x with a stable sort when x is not already
 * non-decreasing, then downsampled with FPCS using ratio max(1, ⌊N / (0.8 · 150)⌋), "~150 points", and stacked
 * into a 2×M float64 array (row 0 x, row 1 y).
 *
 * FPCS is "Feature-Preserving Compensated Sampling" (the IEEE publication "Feature-Preserving Compensated
 * Sampling for Time Series Visualization", ieeexplore document 10669793) as implemented by the `fpcs` Python
 * package (github.com/tmichela/fpcs) that DAMNIT imports (`from fpcs import downsample`). This is a
 * port of its 1.0.0 Cython core (`fpcs_cy.pyx`), the version whose source we could read:
 * - the data is cut into consecutive windows of `ratio` points; each window tracks its maximum (ties go to the later
 *   point) and minimum (ties keep the earlier point); at the end of a window the extreme that came first in x is
 *   kept, and the other becomes the "potential point", carried into the next window as both its max and min seed;
 *   if the next window keeps the same kind of extreme (min after min, max after max) and it differs from the
 *   potential point, the potential point is kept too ("compensation");
 * - an incomplete last window is processed the same way;
 * - the first and last input points are always kept (added when the output does not already start/end at their x);
 * - NaN y values are all kept, in place (to show gaps); they count towards a window's size but never become an
 *   extreme, and points before the first non-NaN y do not count towards the first window;
 * - ±Infinity are ordinary extremes.
 * Later fpcs releases (1.2.0: "Drop non finite values", "use fixed size downsampling window even if it contains
 * non finite values") changed the NaN handling; their source was not available to port.
 */

import { ndarray, type NdArray } from "../core/ndarray.js";

/** Growable pair of float64 columns. */
class Points {
  x: Float64Array;
  y: Float64Array;
  length = 0;

  constructor(capacity: number) {
    this.x = new Float64Array(Math.max(4, capacity));
    this.y = new Float64Array(Math.max(4, capacity));
  }

  push(x: number, y: number): void {
    if (this.length === this.x.length) {
      const x2 = new Float64Array(this.x.length * 2);
      const y2 = new Float64Array(this.y.length * 2);
      x2.set(this.x);
      y2.set(this.y);
      this.x = x2;
      this.y = y2;
    }
    this.x[this.length] = x;
    this.y[this.length] = y;
    this.length++;
  }

  unshift(x: number, y: number): void {
    this.push(x, y); // grow if needed
    this.x.copyWithin(1, 0, this.length - 1);
    this.y.copyWithin(1, 0, this.length - 1);
    this.x[0] = x;
    this.y[0] = y;
  }
}

/** The index 0, 1, … n-1 as doubles. */
function indexArray(n: number): Float64Array {
  const index = new Float64Array(n);
  for (let i = 0; i < n; i++) index[i] = i;
  return index;
}

/**
 * FPCS downsampling of the series (x, y) with sampling ratio `ratio` (≥ 1), as `fpcs.downsample(x, y, ratio)`;
 * x undefined stands for the index 0, 1, … (without allocating it). Returns new float64 arrays; the inputs are not
 * modified.
 */
export function fpcsDownsample(
  x: Float64Array | undefined,
  y: Float64Array | Float32Array,
  ratio: number,
): { x: Float64Array; y: Float64Array } {
  const n = y.length;
  if (x && x.length !== n) throw new RangeError(`x and y must have the same length, got ${x.length} and ${n}`);
  if (!Number.isInteger(ratio) || ratio < 1) throw new RangeError(`Sampling ratio must be >= 1, got ${ratio}`);
  if (n <= 1 || ratio === 1) return { x: x ? x.slice() : indexArray(n), y: Float64Array.from(y) };

  const out = new Points(2 * Math.ceil(n / ratio) + 4);
  // All state lives in locals (no closures over it), which keeps this loop fast.
  let maxX = 0;
  let maxY = 0;
  let minX = 0;
  let minY = 0;
  let potentialX = 0;
  let potentialY = 0;
  /** -1: no window yet, 0: the last window kept its max, 1: it kept its min */
  let previousMin = -1;
  let hasPotential = false;
  let initialized = false;
  let counter = 0;

  // i === n is the end of the data: it closes an incomplete last window, if any.
  for (let i = 0; i <= n; i++) {
    if (i === n) {
      if (counter === 0 || !initialized) break;
    } else {
      const px = x ? x[i]! : i;
      const py = y[i]!;
      if (py !== py) {
        // NaN: always kept, never an extreme; it counts towards the window.
        out.push(px, py);
        if (++counter < ratio) continue;
        counter = 0;
        if (!initialized) continue;
      } else if (!initialized) {
        maxX = minX = px;
        maxY = minY = py;
        initialized = true;
        counter = 1;
        continue;
      } else {
        if (py >= maxY) {
          maxX = px;
          maxY = py;
        } else if (py < minY) {
          minX = px;
          minY = py;
        }
        if (++counter < ratio) continue;
        counter = 0;
      }
    }

    // Close the window: keep the extreme that came first.
    if (minX < maxX) {
      if (previousMin === 1 && hasPotential && (minX !== potentialX || minY !== potentialY)) {
        out.push(potentialX, potentialY);
      }
      out.push(minX, minY);
      previousMin = 1;
    } else {
      if (previousMin === 0 && hasPotential && (maxX !== potentialX || maxY !== potentialY)) {
        out.push(potentialX, potentialY);
      }
      out.push(maxX, maxY);
      previousMin = 0;
    }
    if (i === n) break;
    // The other extreme seeds the next window and may be kept with it (compensation).
    if (previousMin === 1) {
      potentialX = minX = maxX;
      potentialY = minY = maxY;
    } else {
      potentialX = maxX = minX;
      potentialY = maxY = minY;
    }
    hasPotential = true;
  }

  const firstX = x ? x[0]! : 0;
  const lastX = x ? x[n - 1]! : n - 1;
  if (out.length === 0 || out.x[0] !== firstX) out.unshift(firstX, y[0]!);
  if (out.x[out.length - 1] !== lastX) out.push(lastX, y[n - 1]!);
  return { x: out.x.slice(0, out.length), y: out.y.slice(0, out.length) };
}

/** DAMNIT's downsampling ratio for `n` points: max(1, int(n / (0.8 * 150))), aiming at ~150 points. */
export function trendlineRatio(n: number): number {
  return Math.max(1, Math.floor(n / (0.8 * 150)));
}

/** Is `x` non-decreasing (numpy: `np.all(np.diff(x) >= 0)`, which is false when a NaN is involved)? */
function nonDecreasing(x: Float64Array): boolean {
  for (let i = 1; i < x.length; i++) if (!(x[i]! - x[i - 1]! >= 0)) return false;
  return true;
}

/** Indices that sort `x` like numpy's stable argsort (NaN last, ties in index order). */
function stableArgsort(x: Float64Array): Uint32Array {
  const order = new Uint32Array(x.length);
  for (let i = 0; i < order.length; i++) order[i] = i;
  order.sort((i, j) => {
    const a = x[i]!;
    const b = x[j]!;
    if (a < b) return -1;
    if (a > b) return 1;
    const aNaN = a !== a;
    const bNaN = b !== b;
    if (aNaN !== bNaN) return aNaN ? 1 : -1;
    return i - j;
  });
  return order;
}

/**
 * A 2×M float64 trendline of y against x: row 0 x, row 1 y, sorted by x (stable), downsampled with FPCS at
 * ratio max(1, ⌊N/120⌋), as DAMNIT's `downsample_line`. NaN y values are kept as fpcs 1.0.0 keeps them (see above).
 */
export function trendline(x: Float64Array, y: Float64Array): NdArray {
  if (x.length !== y.length) throw new RangeError(`x and y must have the same length, got ${x.length} and ${y.length}`);
  return trendlineOf(x, y);
}

/** As `trendline`; x undefined is the index (already sorted), y may be float32. */
export function trendlineOf(x: Float64Array | undefined, y: Float64Array | Float32Array): NdArray {
  const n = y.length;
  if (x && x.length !== n) throw new RangeError(`x and y must have the same length, got ${x.length} and ${n}`);
  if (n === 0) return ndarray("float64", [2, 0], new Float64Array(0));
  let xs = x;
  let ys = y;
  if (x && n > 1 && !nonDecreasing(x)) {
    const order = stableArgsort(x);
    const sortedX = new Float64Array(n);
    const sortedY = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      sortedX[i] = x[order[i]!]!;
      sortedY[i] = y[order[i]!]!;
    }
    xs = sortedX;
    ys = sortedY;
  }
  const down = fpcsDownsample(xs, ys, trendlineRatio(n));
  const m = down.x.length;
  const data = new Float64Array(2 * m);
  data.set(down.x, 0);
  data.set(down.y, m);
  return ndarray("float64", [2, m], data);
}
