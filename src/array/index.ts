/**
 * `damnit/array`: numpy-like arrays for context files, so that a variable is a line of array code instead of a
 * hand-written loop, with numpy's results bit for bit (DAMNIT computes the same variables with numpy):
 *
 * ```ts
 * import { np } from "damnit/array";
 * export const xgm_mean = Variable({ deps: { xgm: xgm_intensity } }, (_run, { xgm }) => np.mean(xgm));
 * export const profile = Variable((run) => np.mean(run.key(CAM, "data.image.pixels").ndarray(), 0)); // per pixel
 * ```
 *
 * Reductions over the whole array return a `Scalar` (a 0-d array of numpy's result dtype that also acts as a
 * number); with an axis, an array without that axis (a labelled array keeps its other dimensions and coordinates).
 * `rows`/`row` slice along the first axis without copying; `add`/`subtract`/`multiply`/`divide` broadcast.
 */
import { TYPED_DTYPES, ndarray, type NdArray, type TypedArray, type DType } from "../core/ndarray.js";
import { DamnitError } from "../core/errors.js";
import type { LabelledArray } from "../core/variable-output.js";
import { reduce } from "../summary/reductions.js";
import { add, divide, multiply, subtract, promoteTypes, type Operand } from "./elementwise.js";
import { AXIS_REDUCTIONS, checkAxis, reduceAxis, type AxisReduction } from "./reduce-axis.js";
import { Scalar, asScalar } from "./scalar.js";

export { Scalar, add, subtract, multiply, divide, promoteTypes };
export type { Operand };

/** Anything with a dtype, a shape and C-order data (what `run.key(...).ndarray()` and `perTrain()` give), or a labelled array. */
export type ArrayLikeInput =
  | { readonly dtype: DType; readonly shape: readonly number[]; readonly data: TypedArray }
  | LabelledArray
  | TypedArray
  | readonly number[]
  | { readonly __damnitLabelled: true; readonly data: unknown; readonly dims: readonly string[]; readonly coords: Record<string, unknown> };

type Labelled = { readonly data: unknown; readonly dims: readonly string[]; readonly coords: Readonly<Record<string, unknown>> };

/** A labelled array: ours (`kind: "labelled"`) or one made with `labelled()` in a context file. */
function isLabelled(a: unknown): a is Labelled {
  return typeof a === "object" && a !== null && ((a as { kind?: unknown }).kind === "labelled" || (a as { __damnitLabelled?: unknown }).__damnitLabelled === true);
}

/** The plain array of `a` (no copy, except for a JS array of numbers, which becomes float64). */
export function asArray(a: unknown): NdArray {
  if (isLabelled(a)) return asArray(a.data);
  if (ArrayBuffer.isView(a)) {
    const entry = TYPED_DTYPES.find(([ctor]) => a instanceof ctor);
    if (entry) return ndarray(entry[1], [(a as TypedArray).length], a as TypedArray);
  }
  if (Array.isArray(a) && a.every((v) => typeof v === "number")) return ndarray("float64", [a.length], Float64Array.from(a as number[]));
  if (typeof a === "object" && a !== null && "dtype" in a && "shape" in a && "data" in a) {
    const { dtype, shape, data } = a as { dtype: DType; shape: readonly number[]; data: TypedArray };
    return ndarray(dtype, shape, data);
  }
  throw new DamnitError("BAD_ARGUMENT", "expected an array: a typed array, run.key(...).ndarray() or perTrain(), a labelled array, or an array of numbers");
}

type AxisOption = number | { readonly axis?: number } | undefined;

function axisOf(option: AxisOption): number | undefined {
  return typeof option === "number" ? option : option?.axis;
}

function reduction(method: string) {
  function reduced(a: ArrayLikeInput): Scalar;
  function reduced(a: ArrayLikeInput, axis: number | { readonly axis: number }): NdArray | LabelledArray;
  function reduced(a: ArrayLikeInput, axis?: AxisOption): Scalar | NdArray | LabelledArray;
  function reduced(a: ArrayLikeInput, option?: AxisOption): Scalar | NdArray | LabelledArray {
    // (a labelled result has the input's own form: ours, or the context file's labelled())
    const array = asArray(a);
    const axis = axisOf(option);
    if (axis === undefined) return asScalar(reduce(method, array));
    if (!(AXIS_REDUCTIONS as readonly string[]).includes(method)) {
      throw new DamnitError("BAD_ARGUMENT", `${method} along an axis is not supported (use one of ${AXIS_REDUCTIONS.join(", ")})`);
    }
    const result = reduceAxis(method as AxisReduction, array, axis);
    if (!isLabelled(a)) return result;
    const k = checkAxis(axis, array.shape.length);
    const dropped = a.dims[k]!;
    const coords = Object.fromEntries(Object.entries(a.coords).filter(([dim]) => dim !== dropped));
    return { ...a, data: result, dims: a.dims.filter((_, i) => i !== k), coords } as LabelledArray;
  }
  return reduced;
}

/** Entries `start` to `stop` (exclusive; negative from the end) along the first axis, sharing the data. */
export function rows(a: ArrayLikeInput, start: number, stop?: number): NdArray {
  const array = asArray(a);
  if (array.shape.length === 0) throw new DamnitError("BAD_ARGUMENT", "a 0-d array has no rows");
  const n = array.shape[0]!;
  const clamp = (i: number) => Math.min(n, Math.max(0, i < 0 ? i + n : i));
  const lo = clamp(start);
  const hi = Math.max(lo, clamp(stop ?? n));
  const per = array.data.length / Math.max(1, n);
  return ndarray(array.dtype, [hi - lo, ...array.shape.slice(1)], array.data.subarray(lo * per, hi * per));
}

/** Entry `i` (negative from the end) along the first axis, sharing the data. */
export function row(a: ArrayLikeInput, i: number): NdArray {
  const array = asArray(a);
  const n = array.shape[0] ?? 0;
  const k = i < 0 ? i + n : i;
  if (!Number.isInteger(k) || k < 0 || k >= n) throw new DamnitError("BAD_ARGUMENT", `index ${i} is out of bounds for axis 0 with size ${n}`);
  const per = array.data.length / n;
  return ndarray(array.dtype, array.shape.slice(1), array.data.subarray(k * per, (k + 1) * per));
}

function operand(x: ArrayLikeInput | number | Scalar): Operand {
  if (typeof x === "number") return x;
  return asArray(x);
}

/** The numpy-like namespace: `np.mean(a)`, `np.sum(a, 0)`, `np.subtract(a, np.mean(a))`, `np.rows(a, 0, 10)`. */
export const np = {
  sum: reduction("sum"),
  nansum: reduction("nansum"),
  mean: reduction("mean"),
  nanmean: reduction("nanmean"),
  var: reduction("var"),
  nanvar: reduction("nanvar"),
  std: reduction("std"),
  nanstd: reduction("nanstd"),
  min: reduction("min"),
  max: reduction("max"),
  nanmin: reduction("nanmin"),
  nanmax: reduction("nanmax"),
  amin: reduction("amin"),
  amax: reduction("amax"),
  median: reduction("median"),
  nanmedian: reduction("nanmedian"),
  prod: reduction("prod"),
  ptp: reduction("ptp"),
  any: reduction("any"),
  all: reduction("all"),
  count_nonzero: reduction("count_nonzero"),
  add: (a: ArrayLikeInput | number, b: ArrayLikeInput | number) => add(operand(a), operand(b)),
  subtract: (a: ArrayLikeInput | number, b: ArrayLikeInput | number) => subtract(operand(a), operand(b)),
  multiply: (a: ArrayLikeInput | number, b: ArrayLikeInput | number) => multiply(operand(a), operand(b)),
  divide: (a: ArrayLikeInput | number, b: ArrayLikeInput | number) => divide(operand(a), operand(b)),
  rows,
  row,
  asArray,
  /** an array from a dtype, a shape and its C-order elements */
  array: (dtype: DType, shape: readonly number[], data: TypedArray | readonly number[]) => ndarray(dtype, shape, data),
};
