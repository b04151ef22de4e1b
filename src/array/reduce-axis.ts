/**
 * numpy reductions along one axis (`np.sum(a, axis=k)` …), bit-identical to numpy's results. numpy sums pairwise
 * only when the reduced axis is the innermost one in memory (what remains after size-1 axes are dropped): then
 * every output element is the whole-array kernel of summary/reductions.ts applied to its row, and this reuses those
 * kernels. Otherwise numpy walks the input in memory order, adding each slice along the axis to the output in turn
 * (sequential accumulation, starting from the first slice), and so does this. Means divide the sum by the count in
 * the result dtype; var/std follow numpy's _var (mean with keepdims, deviations, squares, sum, divide).
 */
import { DTYPES, ndarray, sizeOf, type DType, type NdArray, type TypedArray } from "../core/ndarray.js";
import { DamnitError } from "../core/errors.js";
import { reduce } from "../summary/reductions.js";

/** Reductions that take an axis. */
export const AXIS_REDUCTIONS = ["sum", "nansum", "mean", "nanmean", "var", "std", "min", "max", "nanmin", "nanmax", "amin", "amax"] as const;
export type AxisReduction = (typeof AXIS_REDUCTIONS)[number];

function isInt(dtype: DType): boolean {
  return dtype !== "float32" && dtype !== "float64" && dtype !== "bool" && DTYPES[dtype].lanes === 1;
}

function resultDType(method: AxisReduction, dtype: DType): DType {
  switch (method) {
    case "sum":
    case "nansum":
      if (dtype === "float32" || dtype === "float64") return dtype;
      return dtype.startsWith("uint") ? "uint64" : "int64";
    case "mean":
    case "nanmean":
    case "var":
    case "std":
      return dtype === "float32" ? "float32" : "float64";
    default:
      return dtype;
  }
}

/** Normalise `axis` (negative counts from the end) for an array of `ndim` dimensions. */
export function checkAxis(axis: number, ndim: number): number {
  if (!Number.isInteger(axis) || axis < -ndim || axis >= ndim) {
    throw new DamnitError("BAD_ARGUMENT", `axis ${axis} is out of bounds for an array of dimension ${ndim}`);
  }
  return axis < 0 ? axis + ndim : axis;
}

/** numpy `<method>(a, axis=axis)`: an array of `a`'s shape without that axis. */
export function reduceAxis(method: AxisReduction, a: NdArray, axis: number): NdArray {
  if (DTYPES[a.dtype].lanes !== 1) throw new DamnitError("UNSUPPORTED_DATA", `${method} of complex data is not supported`);
  const k = checkAxis(axis, a.shape.length);
  const outer = sizeOf(a.shape.slice(0, k));
  const len = a.shape[k]!;
  const inner = sizeOf(a.shape.slice(k + 1));
  const outShape = [...a.shape.slice(0, k), ...a.shape.slice(k + 1)];
  const dtype = resultDType(method, a.dtype);
  if (len === 0 && (method.endsWith("min") || method.endsWith("max"))) {
    throw new DamnitError("BAD_ARGUMENT", `zero-size array to reduction operation ${method.replace(/^a/, "")} which has no identity`);
  }
  const out = DTYPES[dtype].make(new ArrayBuffer(sizeOf(outShape) * DTYPES[dtype].itemSize), 0, sizeOf(outShape));
  if (inner === 1) {
    // The reduced axis is innermost: numpy's whole-array kernel per row.
    for (let o = 0; o < outer; o++) {
      const row = ndarray(a.dtype, [len], a.data.subarray(o * len, (o + 1) * len));
      (out as unknown as Array<number | bigint>)[o] = reduce(method, row).data[0]!;
    }
    return ndarray(dtype, outShape, out);
  }
  sequential(method, a.data, a.dtype, outer, len, inner, out, dtype);
  return ndarray(dtype, outShape, out);
}

/** numpy's accumulation when the reduced axis is not innermost: output += each slice along the axis, in order. */
function sequential(method: AxisReduction, data: TypedArray, inDType: DType, outer: number, len: number, inner: number, out: TypedArray, outDType: DType): void {
  const f32 = outDType === "float32";
  const round = f32 ? Math.fround : (x: number) => x;
  const big = data instanceof BigInt64Array || data instanceof BigUint64Array;
  const at = (o: number, i: number, j: number): number | bigint => data[(o * len + i) * inner + j]!;
  const num = (o: number, i: number, j: number): number => Number(at(o, i, j));
  const set = (index: number, v: number | bigint) => ((out as unknown as Array<number | bigint>)[index] = v);

  switch (method) {
    case "sum":
    case "nansum": {
      if (isInt(inDType) || inDType === "bool") {
        // Exact, wrapping like numpy's int64/uint64 (BigInt for 64-bit input or where a double could round).
        const exactInNumber = !big && len * 2 ** 32 < Number.MAX_SAFE_INTEGER;
        for (let o = 0; o < outer; o++) {
          for (let j = 0; j < inner; j++) {
            if (exactInNumber) {
              let s = 0;
              for (let i = 0; i < len; i++) s += num(o, i, j);
              set(o * inner + j, BigInt(s));
            } else {
              let s = 0n;
              for (let i = 0; i < len; i++) s += BigInt(at(o, i, j));
              set(o * inner + j, outDType === "uint64" ? BigInt.asUintN(64, s) : BigInt.asIntN(64, s));
            }
          }
        }
        return;
      }
      const nan = method === "nansum";
      for (let o = 0; o < outer; o++) {
        for (let j = 0; j < inner; j++) {
          let s = num(o, 0, j);
          if (nan && s !== s) s = 0;
          for (let i = 1; i < len; i++) {
            const v = num(o, i, j);
            s = round(s + (nan && v !== v ? 0 : v));
          }
          set(o * inner + j, len === 0 ? 0 : s);
        }
      }
      return;
    }
    case "mean":
    case "nanmean": {
      const nan = method === "nanmean" && (inDType === "float32" || inDType === "float64");
      for (let o = 0; o < outer; o++) {
        for (let j = 0; j < inner; j++) {
          let s = 0;
          let count = 0;
          for (let i = 0; i < len; i++) {
            const v = num(o, i, j);
            if (nan && v !== v) {
              if (i === 0) s = 0;
              continue;
            }
            s = i === 0 ? v : round(s + v);
            count++;
          }
          set(o * inner + j, round(s / (nan ? count : len)));
        }
      }
      return;
    }
    case "var":
    case "std": {
      for (let o = 0; o < outer; o++) {
        for (let j = 0; j < inner; j++) {
          let s = num(o, 0, j);
          for (let i = 1; i < len; i++) s = round(s + num(o, i, j));
          const mean = round(s / len);
          let q = 0;
          for (let i = 0; i < len; i++) {
            const d = round(num(o, i, j) - mean);
            const sq = round(d * d);
            q = i === 0 ? sq : round(q + sq);
          }
          const variance = round(q / len);
          set(o * inner + j, method === "std" ? round(Math.sqrt(variance)) : variance);
        }
      }
      return;
    }
    default: {
      const max = method.endsWith("max");
      const skipNaN = method.startsWith("nan");
      for (let o = 0; o < outer; o++) {
        for (let j = 0; j < inner; j++) {
          let best = at(o, 0, j);
          for (let i = 1; i < len; i++) {
            const v = at(o, i, j);
            if (typeof v === "number" && typeof best === "number") {
              if (best !== best) {
                if (skipNaN) best = v;
                continue; // NaN propagates (maximum/minimum)
              }
              if (v !== v) {
                if (!skipNaN) best = v;
                continue;
              }
            }
            if (max ? v > best : v < best) best = v;
          }
          set(o * inner + j, best);
        }
      }
    }
  }
}
