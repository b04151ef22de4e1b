/**
 * A 0-d array that also behaves as a number: what a whole-array reduction in `damnit/array` returns. It is stored
 * as the 0-d array it is (a float32 mean stays float32, as numpy's does, so a column never changes type between
 * runs because a value happened to be whole), and `x > 20`, `a / b` or a template string use its value (valueOf).
 * Its own fields are plain data, so it crosses the runner's process boundary like any array.
 */
import type { DType, NdArray, TypedArray } from "../core/ndarray.js";

export class Scalar implements NdArray {
  readonly kind = "ndarray" as const;
  readonly shape: readonly number[] = [];
  constructor(
    readonly dtype: DType,
    readonly data: TypedArray,
  ) {}

  /** The value as a JS number (64-bit integers rounded to the nearest double). */
  get value(): number {
    return Number(this.data[0]);
  }

  valueOf(): number {
    return this.value;
  }

  toString(): string {
    return String(this.data[0]);
  }

  toJSON(): number | string {
    const v = this.data[0]!;
    return typeof v === "bigint" ? v.toString() : v;
  }
}

/** `array` (0-d) as a Scalar. */
export function asScalar(array: NdArray): Scalar {
  if (array.shape.length !== 0) throw new RangeError(`a scalar has shape (), not (${array.shape.join(", ")})`);
  return new Scalar(array.dtype, array.data);
}
