/**
 * A run's full data for one variable, from `extracted_data/p<P>_r<R>.h5` (what the job wrote beside the summary in
 * the table), made ready to plot: 1-D values with their coordinate, a 2-D image with its colour limits, or of an
 * N-D array the 2-D slice at the leading indices asked for. h5wasm is loaded on the first plot only, so a server
 * nobody plots from never holds it. A missing or damaged file is a DamnitError (BAD_RUN_FILE) naming the file.
 */
import { existsSync } from "node:fs";
import { DamnitError } from "../core/errors.js";
import { isNdArray, type NdArray } from "../core/ndarray.js";
import { readDataValue } from "../extract/h5-output.js";
import { runOutputFile } from "../extract/store.js";
import { loadH5, openH5File } from "../h5/file.js";

export interface PlotData {
  /** the file the data came from, relative to the database directory */
  source: string;
  shape: number[];
  dtype: string;
  /** one name per dimension (dim_0, … when the array has none) */
  dims: string[];
  /** numeric coordinates of the plotted dimensions, where the file has them */
  coords: Record<string, number[]>;
  /** N-D: the indices of the leading dimensions of the slice shown */
  index: number[];
  /** the plotted values, row-major: 1-D, or the 2-D slice */
  data: (number | null)[];
  /** smallest and largest finite value plotted (the colour scale's limits), null if none */
  limits: [number, number] | null;
  /** a string or scalar: nothing to plot, the value as text */
  text?: string;
}

/** Values larger than this are not sent to a page (a 4k × 4k image is 16 M numbers). */
const MAX_POINTS = 4_000_000;

const toNumber = (x: unknown): number | null => {
  const n = Number(x);
  return Number.isFinite(n) ? n : null;
};

export async function readPlotData(dbDir: string, proposal: number, run: number, name: string, index: readonly number[] = []): Promise<PlotData> {
  const file = runOutputFile(dbDir, proposal, run);
  const source = `extracted_data/p${proposal}_r${run}.h5`;
  if (!existsSync(file)) throw new DamnitError("BAD_RUN_FILE", `${source} does not exist: no full data for run ${run}`);
  const lib = await loadH5();
  const f = openH5File(lib, file);
  let value;
  try {
    value = readDataValue(lib, f, `/${name}`, true);
  } catch (err) {
    throw new DamnitError("BAD_RUN_FILE", `${source}: ${name} cannot be read (${(err as Error).message.split("\n")[0]})`, { cause: err });
  } finally {
    f.close();
  }
  if (value === undefined) throw new DamnitError("NO_EXTRACTED_DATA", `${source} has no data for ${name}`);
  if (typeof value === "string") return textOnly(source, value);
  // A Dataset (several arrays): not one plot; a figure: its RGBA image, plotted as its grey levels.
  if ("kind" in value && value.kind === "dataset") {
    return textOnly(source, `an xarray Dataset of ${value.variables.length} arrays: ${value.variables.map((v) => v.name).join(", ")}`);
  }
  if ("kind" in value && value.kind === "image") return slice(source, luminance(value.data), ["y", "x"], {}, []);
  const array: NdArray = isNdArray(value) ? value : value.data;
  const dims = isNdArray(value) ? array.shape.map((_, i) => `dim_${i}`) : [...value.dims];
  const coordsOf = isNdArray(value) ? {} : value.coords;
  if (array.shape.length === 0) return textOnly(source, String(array.data[0]), array);
  return slice(source, array, dims, coordsOf, index);
}

/** An (H, W, 3|4) uint8 image as its (H, W) grey levels (ITU-R 601 weights), so a figure plots as a 2-D image. */
function luminance(rgba: NdArray): NdArray {
  const [h = 0, w = 0, channels = 1] = rgba.shape;
  const grey = new Float64Array(h * w);
  for (let i = 0; i < h * w; i++) {
    const p = i * channels;
    grey[i] = channels >= 3 ? 0.299 * Number(rgba.data[p]) + 0.587 * Number(rgba.data[p + 1]) + 0.114 * Number(rgba.data[p + 2]) : Number(rgba.data[p]);
  }
  return { kind: "ndarray", dtype: "float64", shape: [h, w], data: grey };
}

function textOnly(source: string, text: string, array?: NdArray): PlotData {
  return { source, shape: array ? [] : [], dtype: array?.dtype ?? "string", dims: [], coords: {}, index: [], data: [], limits: null, text };
}

function slice(source: string, array: NdArray, dims: string[], coordsOf: Readonly<Record<string, NdArray>>, want: readonly number[]): PlotData {
  const shape = [...array.shape];
  const plotted = shape.length === 1 ? 1 : 2;
  const lead = shape.slice(0, shape.length - plotted);
  const index = lead.map((n, i) => Math.min(Math.max(0, Math.trunc(want[i] ?? 0)), n - 1));
  const planeSize = shape.slice(-plotted).reduce((a, b) => a * b, 1);
  if (planeSize > MAX_POINTS) throw new DamnitError("BAD_ARGUMENT", `${source}: a ${shape.join("×")} array is too large to plot here`);
  let offset = 0;
  for (let i = 0; i < lead.length; i++) offset = offset * lead[i]! + index[i]!;
  offset *= planeSize;
  const data: (number | null)[] = new Array<number | null>(planeSize);
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < planeSize; i++) {
    const v = toNumber(array.data[offset + i]);
    data[i] = v;
    if (v !== null) {
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
  }
  const coords: Record<string, number[]> = {};
  for (const dim of dims.slice(-plotted)) {
    const c = coordsOf[dim];
    if (c && c.data.length === shape[dims.indexOf(dim)]) coords[dim] = Array.from(c.data as ArrayLike<number | bigint>, (x) => toNumber(x) ?? NaN);
  }
  return { source, shape, dtype: array.dtype, dims, coords, index, data, limits: lo <= hi ? [lo, hi] : null };
}
