/**
 * PNG thumbnails of 2-D array values, as DAMNIT shows them in the run table.
 *
 * Rules (after DAMNIT's `generate_thumbnail`):
 * - NaN and ±Infinity become 0 before anything else;
 * - colour limits are the 1 % and 99 % quantiles of the data (numpy `nanquantile`, linear interpolation),
 *   values outside them are clipped to the ends of the map;
 * - the colour map is viridis (256 entries, as matplotlib and d3 sample it);
 * - the larger side of the image becomes exactly `maxSize` pixels (default 300), keeping the aspect ratio:
 *   smaller images are scaled up by nearest-neighbour replication (crisp pixels), larger ones are scaled down
 *   by exact area averaging (a box filter with fractional pixel coverage) of the colour-mapped RGB pixels;
 * - row 0 of the array is the top row of the image;
 * - if the colour limits coincide (e.g. a constant image), values equal to them get the middle colour of the map.
 *
 * An RGB or RGBA uint8 image of shape (H, W, 3) or (H, W, 4) is only scaled, not colour-mapped; RGBA is
 * composited over white, since the thumbnail is always an 8-bit RGB PNG.
 */

import { interpolateViridis } from "d3-scale-chromatic";
import { encodeRgbPng } from "./png-encode.js";

import { DTYPES, type NdArray, shapeText, sizeOf } from "../core/ndarray.js";
import { selectInPlace } from "./select.js";

export interface ThumbnailOptions {
  /** Size in pixels of the larger side of the image; default 300. */
  maxSize?: number;
}

export const DEFAULT_THUMBNAIL_SIZE = 300;

/** Parse a d3 colour string ("#rrggbb" or "rgb(r, g, b)") into its components. */
function parseColour(text: string): [number, number, number] {
  const hex = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(text);
  if (hex) return [parseInt(hex[1]!, 16), parseInt(hex[2]!, 16), parseInt(hex[3]!, 16)];
  const rgb = /^rgb\(\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*\)$/.exec(text);
  if (rgb) return [Number(rgb[1]), Number(rgb[2]), Number(rgb[3])];
  throw new Error(`unexpected colour string ${JSON.stringify(text)}`);
}

const LUT_SIZE = 256;

/** viridis as 256 RGB triples; sampling at bin centres gives exactly d3's (and matplotlib's) 256 colours. */
const VIRIDIS_LUT: Uint8Array = (() => {
  const lut = new Uint8Array(LUT_SIZE * 3);
  for (let i = 0; i < LUT_SIZE; i++) lut.set(parseColour(interpolateViridis((i + 0.5) / LUT_SIZE)), i * 3);
  return lut;
})();

const VIRIDIS_MIDDLE = parseColour(interpolateViridis(0.5));

// ---------------------------------------------------------------------------------------------------------------
// Quantiles


function minOf(a: Float64Array, lo: number, hi: number): number {
  let m = a[lo]!;
  for (let i = lo + 1; i <= hi; i++) if (a[i]! < m) m = a[i]!;
  return m;
}

/** numpy's `_lerp`, which is exact at both ends and monotonic. */
function lerp(a: number, b: number, t: number): number {
  const diff = b - a;
  return t >= 0.5 ? b - diff * (1 - t) : a + diff * t;
}

/**
 * Quantiles of `values` (no NaNs) for ascending `qs` in [0, 1], numpy's default "linear" method
 * (virtual index `(n - 1) * q`). Reorders `values`.
 */
function quantilesInPlace(values: Float64Array, qs: readonly number[]): number[] {
  const n = values.length;
  const out: number[] = [];
  let from = 0; // values[from..] hold ranks from.. (everything before is ≤ them)
  for (const q of qs) {
    const virtual = (n - 1) * q;
    const k = Math.min(n - 1, Math.max(0, Math.floor(virtual)));
    const t = virtual - k;
    const below = selectInPlace(values, k, from, n - 1);
    from = k;
    if (t <= 0 || k + 1 >= n) {
      out.push(below);
    } else {
      out.push(lerp(below, minOf(values, k + 1, n - 1), t));
    }
  }
  return out;
}

/**
 * Colour limits of a thumbnail: the 1 % and 99 % quantiles of `values` as numpy's
 * `nanquantile(values, [0.01, 0.99])` computes them (NaNs ignored; `[NaN, NaN]` if nothing is left).
 * Does not modify `values`.
 */
export function colourLimits(values: Float64Array): [number, number] {
  let count = 0;
  for (let i = 0; i < values.length; i++) if (!Number.isNaN(values[i]!)) count++;
  if (count === 0) return [NaN, NaN];
  const work = new Float64Array(count);
  let w = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (!Number.isNaN(v)) work[w++] = v;
  }
  const [lo, hi] = quantilesInPlace(work, [0.01, 0.99]);
  return [lo!, hi!];
}

// ---------------------------------------------------------------------------------------------------------------
// Input

interface Rgb {
  width: number;
  height: number;
  /** width × height × 3 bytes, row-major, row 0 at the top */
  data: Uint8Array;
}

function describe(array: NdArray): string {
  return `${array.dtype} array of shape ${shapeText(array.shape)}`;
}

/** The array's elements as finite doubles (NaN and ±Infinity become 0). */
function finiteValues(array: NdArray, size: number): Float64Array {
  const values = new Float64Array(size);
  const data = array.data;
  if (data instanceof BigInt64Array || data instanceof BigUint64Array) {
    for (let i = 0; i < size; i++) values[i] = Number(data[i]!);
  } else {
    for (let i = 0; i < size; i++) {
      const v = data[i]!;
      values[i] = Number.isFinite(v) ? v : 0;
    }
  }
  return values;
}

/** Colour-map a 2-D real array into RGB pixels. */
function colourMapped(array: NdArray): Rgb {
  const [height, width] = array.shape as [number, number];
  const size = height * width;
  const values = finiteValues(array, size);
  const [vmin, vmax] = colourLimits(values);
  const rgb = new Uint8Array(size * 3);
  const lut = VIRIDIS_LUT;
  const last = LUT_SIZE - 1;
  if (vmax > vmin) {
    const scale = LUT_SIZE / (vmax - vmin);
    for (let i = 0; i < size; i++) {
      // matplotlib's Colormap: index floor(t * N), with t = 1 (and beyond) on the last entry
      const x = (values[i]! - vmin) * scale;
      const index = x <= 0 ? 0 : x >= last ? last : Math.floor(x);
      rgb[i * 3] = lut[index * 3]!;
      rgb[i * 3 + 1] = lut[index * 3 + 1]!;
      rgb[i * 3 + 2] = lut[index * 3 + 2]!;
    }
  } else {
    // Degenerate limits: everything equal to them (a constant image) is drawn in the middle colour.
    for (let i = 0; i < size; i++) {
      const v = values[i]!;
      const colour: ArrayLike<number> =
        v < vmin ? lut.subarray(0, 3) : v > vmax ? lut.subarray(last * 3, last * 3 + 3) : VIRIDIS_MIDDLE;
      rgb[i * 3] = colour[0]!;
      rgb[i * 3 + 1] = colour[1]!;
      rgb[i * 3 + 2] = colour[2]!;
    }
  }
  return { width, height, data: rgb };
}

/** An (H, W, 3|4) uint8 image as RGB pixels, RGBA composited over white. */
function directImage(array: NdArray): Rgb {
  const [height, width, channels] = array.shape as [number, number, number];
  const size = height * width;
  const src = array.data as Uint8Array;
  if (channels === 3) return { width, height, data: src.slice(0, size * 3) };
  const rgb = new Uint8Array(size * 3);
  for (let i = 0; i < size; i++) {
    const alpha = src[i * 4 + 3]!;
    for (let c = 0; c < 3; c++) {
      rgb[i * 3 + c] = Math.round((src[i * 4 + c]! * alpha + 255 * (255 - alpha)) / 255);
    }
  }
  return { width, height, data: rgb };
}

function toRgb(array: NdArray): Rgb {
  const shape = array.shape;
  if (DTYPES[array.dtype].lanes !== 1) {
    throw new RangeError(`cannot make a thumbnail of a complex array (${describe(array)})`);
  }
  const isImage = shape.length === 3 && (shape[2] === 3 || shape[2] === 4);
  if (shape.length !== 2 && !isImage) {
    throw new RangeError(`a thumbnail needs a 2-D array or an (H, W, 3|4) uint8 image, not a ${describe(array)}`);
  }
  if (isImage && array.dtype !== "uint8") {
    throw new RangeError(`an RGB(A) image for a thumbnail must be uint8, not a ${describe(array)}`);
  }
  if (shape[0] === 0 || shape[1] === 0) {
    throw new RangeError(`cannot make a thumbnail of an empty ${describe(array)}`);
  }
  const size = sizeOf(shape);
  if (array.data.length < size) {
    throw new RangeError(`${describe(array)} has only ${array.data.length} elements of data`);
  }
  return isImage ? directImage(array) : colourMapped(array);
}

// ---------------------------------------------------------------------------------------------------------------
// Scaling

/** For each output index along one axis, the source indices it reads and their weights (summing to 1). */
interface AxisWeights {
  start: Int32Array;
  count: Int32Array;
  /** `count[j]` weights for output `j` begin at `offset[j]` */
  offset: Int32Array;
  weights: Float64Array;
}

/**
 * Upscaling (`outSize > inSize`) samples the nearest source pixel, so source pixels become crisp blocks.
 * Otherwise each output pixel averages the source pixels it covers, weighted by the covered fraction
 * (integer arithmetic in units of 1 / (inSize · outSize), so the weights are exact); equal sizes are the identity.
 */
function axisWeights(inSize: number, outSize: number): AxisWeights {
  const start = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const offset = new Int32Array(outSize);
  if (outSize > inSize) {
    const weights = new Float64Array(outSize).fill(1);
    for (let j = 0; j < outSize; j++) {
      start[j] = Math.floor(((2 * j + 1) * inSize) / (2 * outSize));
      count[j] = 1;
      offset[j] = j;
    }
    return { start, count, offset, weights };
  }
  const list: number[] = [];
  for (let j = 0; j < outSize; j++) {
    // Output pixel j covers [j·in, (j+1)·in), source pixel i covers [i·out, (i+1)·out).
    const a = j * inSize;
    const b = (j + 1) * inSize;
    const first = Math.floor(a / outSize);
    const end = Math.ceil(b / outSize);
    start[j] = first;
    count[j] = end - first;
    offset[j] = list.length;
    for (let i = first; i < end; i++) {
      const overlap = Math.min(b, (i + 1) * outSize) - Math.max(a, i * outSize);
      list.push(overlap / inSize);
    }
  }
  return { start, count, offset, weights: Float64Array.from(list) };
}

/** Resample RGB pixels to `outWidth × outHeight`, horizontally then vertically. */
function resample(image: Rgb, outWidth: number, outHeight: number): Uint8Array {
  const { width, height, data } = image;
  if (width === outWidth && height === outHeight) return data;
  const xs = axisWeights(width, outWidth);
  const ys = axisWeights(height, outHeight);

  const rows = new Float32Array(height * outWidth * 3);
  for (let y = 0; y < height; y++) {
    const srcRow = y * width * 3;
    const dstRow = y * outWidth * 3;
    for (let x = 0; x < outWidth; x++) {
      let r = 0;
      let g = 0;
      let b = 0;
      const s = xs.start[x]!;
      const o = xs.offset[x]!;
      for (let k = 0, n = xs.count[x]!; k < n; k++) {
        const w = xs.weights[o + k]!;
        const p = srcRow + (s + k) * 3;
        r += data[p]! * w;
        g += data[p + 1]! * w;
        b += data[p + 2]! * w;
      }
      rows[dstRow + x * 3] = r;
      rows[dstRow + x * 3 + 1] = g;
      rows[dstRow + x * 3 + 2] = b;
    }
  }

  const out = new Uint8Array(outHeight * outWidth * 3);
  const rowLength = outWidth * 3;
  for (let y = 0; y < outHeight; y++) {
    const s = ys.start[y]!;
    const o = ys.offset[y]!;
    const n = ys.count[y]!;
    const dst = y * rowLength;
    for (let i = 0; i < rowLength; i++) {
      let v = 0;
      for (let k = 0; k < n; k++) v += rows[(s + k) * rowLength + i]! * ys.weights[o + k]!;
      out[dst + i] = Math.min(255, Math.max(0, Math.round(v)));
    }
  }
  return out;
}

/** The output size: the larger side becomes `maxSize`, the other keeps the aspect ratio (at least 1 px). */
function outputSize(width: number, height: number, maxSize: number): [number, number] {
  if (width >= height) return [maxSize, Math.max(1, Math.round((height * maxSize) / width))];
  return [Math.max(1, Math.round((width * maxSize) / height)), maxSize];
}

/**
 * A PNG thumbnail (8-bit RGB) of a 2-D real array, colour-mapped with viridis between its 1 % and 99 % quantiles,
 * or of an (H, W, 3|4) uint8 RGB(A) image. Throws a `RangeError` for anything else (complex, other shapes, empty).
 */
export function thumbnailPng(array: NdArray, options: ThumbnailOptions = {}): Uint8Array {
  const maxSize = options.maxSize ?? DEFAULT_THUMBNAIL_SIZE;
  if (!Number.isInteger(maxSize) || maxSize < 1) {
    throw new RangeError(`thumbnail maxSize must be a positive integer, not ${maxSize}`);
  }
  const image = toRgb(array);
  const [width, height] = outputSize(image.width, image.height, maxSize);
  const data = resample(image, width, height);
  return encodeRgbPng(width, height, data);
}
