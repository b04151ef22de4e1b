/**
 * Elementwise arithmetic on typed arrays for context files (`add`, `subtract`, `multiply`, `divide`), with numpy's
 * broadcasting and result dtypes: two arrays promote as numpy's promote_types does; a JS number next to an array
 * keeps the array's dtype where numpy 2 (NEP 50) does (a float32 array times 2.5 stays float32; an integer array
 * plus a whole number stays integer, wrapping as numpy's does), and true division of integers gives float64.
 * float32 results are exact: one double operation on float32 inputs rounded once to float32 is numpy's float32
 * operation. 64-bit integers are computed with BigInt (exact, wrapping).
 */
import { DTYPES, ndarray, sizeOf, type DType, type NdArray, type TypedArray } from "../core/ndarray.js";
import { DamnitError } from "../core/errors.js";

export type Operand = NdArray | number;
type Op = "add" | "subtract" | "multiply" | "divide";

const SIGNED: Partial<Record<DType, number>> = { int8: 8, int16: 16, int32: 32, int64: 64 };
const UNSIGNED: Partial<Record<DType, number>> = { uint8: 8, uint16: 16, uint32: 32, uint64: 64 };

function intOfBits(bits: number, signed: boolean): DType {
  return `${signed ? "int" : "uint"}${bits}` as DType;
}

/** numpy's promote_types for the real dtypes. */
export function promoteTypes(a: DType, b: DType): DType {
  if (a === b) return a;
  if (DTYPES[a].lanes !== 1 || DTYPES[b].lanes !== 1) throw new DamnitError("UNSUPPORTED_DATA", "complex arithmetic is not supported");
  if (a === "bool") return b;
  if (b === "bool") return a;
  if (a === "float64" || b === "float64") return "float64";
  if (a === "float32" || b === "float32") {
    const other = a === "float32" ? b : a;
    const bits = SIGNED[other] ?? UNSIGNED[other] ?? 0;
    return bits <= 16 ? "float32" : "float64";
  }
  const sa = SIGNED[a];
  const sb = SIGNED[b];
  const ua = UNSIGNED[a];
  const ub = UNSIGNED[b];
  if (sa && sb) return intOfBits(Math.max(sa, sb), true);
  if (ua && ub) return intOfBits(Math.max(ua, ub), false);
  const s = (sa ?? sb)!;
  const u = (ua ?? ub)!;
  if (u < s) return intOfBits(s, true);
  return u === 64 ? "float64" : intOfBits(Math.min(64, u * 2), true);
}

/** The result dtype of `op` on an array of `dtype` and a JS number (NEP 50: the number is "weak"). */
function withNumber(dtype: DType, x: number): DType {
  if (dtype === "float32" || dtype === "float64") return dtype;
  if (!Number.isInteger(x)) return "float64";
  if (dtype === "bool") return "int64";
  const bits = SIGNED[dtype] ?? UNSIGNED[dtype]!;
  const signed = SIGNED[dtype] !== undefined;
  const lo = signed ? -(2 ** (bits - 1)) : 0;
  const hi = signed ? 2 ** (bits - 1) - 1 : 2 ** bits - 1;
  // numpy 2 refuses a Python integer its array's dtype cannot hold rather than wrap it.
  if (x < lo || x > hi) throw new DamnitError("BAD_ARGUMENT", `the number ${x} is out of bounds for ${dtype}`);
  return dtype;
}

function resultDType(op: Op, a: Operand, b: Operand): DType {
  let t: DType;
  if (typeof a === "number" && typeof b === "number") t = "float64";
  else if (typeof a === "number") t = withNumber((b as NdArray).dtype, a);
  else if (typeof b === "number") t = withNumber(a.dtype, b);
  else t = promoteTypes(a.dtype, b.dtype);
  if (op === "divide" && t !== "float32") return "float64";
  return t;
}

/** numpy's broadcast shape of `a` and `b`, or a clear error. */
export function broadcastShape(a: readonly number[], b: readonly number[]): number[] {
  const n = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const x = a[a.length - n + i] ?? 1;
    const y = b[b.length - n + i] ?? 1;
    if (x !== y && x !== 1 && y !== 1) {
      throw new DamnitError("BAD_ARGUMENT", `operands could not be broadcast together with shapes (${a.join(",")}) (${b.join(",")})`);
    }
    out.push(x === 1 ? y : x);
  }
  return out;
}

/** For each output element (C order), the index into an operand of `shape` broadcast to `outShape`. */
function broadcastIndex(shape: readonly number[], outShape: readonly number[]): (flat: number) => number {
  const n = outShape.length;
  const padded = [...Array<number>(n - shape.length).fill(1), ...shape];
  if (padded.every((d, i) => d === outShape[i])) return (flat) => flat;
  if (sizeOf(shape) === 1) return () => 0;
  const strides = new Array<number>(n);
  let s = 1;
  for (let i = n - 1; i >= 0; i--) {
    strides[i] = padded[i] === 1 ? 0 : s;
    s *= padded[i]!;
  }
  return (flat) => {
    let index = 0;
    for (let i = n - 1; i >= 0; i--) {
      const d = outShape[i]!;
      index += (flat % d) * strides[i]!;
      flat = Math.floor(flat / d);
    }
    return index;
  };
}

function apply(op: Op, x: number, y: number): number {
  switch (op) {
    case "add":
      return x + y;
    case "subtract":
      return x - y;
    case "multiply":
      return x * y;
    case "divide":
      return x / y;
  }
}

function applyBig(op: Op, x: bigint, y: bigint): bigint {
  switch (op) {
    case "add":
      return x + y;
    case "subtract":
      return x - y;
    case "multiply":
      return x * y;
    case "divide":
      throw new Error("unreachable: true division is never integer");
  }
}

function elementwise(op: Op, a: Operand, b: Operand): NdArray {
  const dtype = resultDType(op, a, b);
  const shapeA = typeof a === "number" ? [] : a.shape;
  const shapeB = typeof b === "number" ? [] : b.shape;
  const shape = broadcastShape(shapeA, shapeB);
  const size = sizeOf(shape);
  const info = DTYPES[dtype];
  const out = info.make(new ArrayBuffer(size * info.itemSize), 0, size);
  const ia = broadcastIndex(shapeA, shape);
  const ib = broadcastIndex(shapeB, shape);
  const dataA: TypedArray | readonly number[] = typeof a === "number" ? [a] : a.data;
  const dataB: TypedArray | readonly number[] = typeof b === "number" ? [b] : b.data;
  if (out instanceof BigInt64Array || out instanceof BigUint64Array) {
    const unsigned = out instanceof BigUint64Array;
    for (let i = 0; i < size; i++) {
      const v = applyBig(op, BigInt(dataA[ia(i)]!), BigInt(dataB[ib(i)]!));
      out[i] = unsigned ? BigInt.asUintN(64, v) : BigInt.asIntN(64, v);
    }
  } else {
    // Typed-array assignment rounds to float32 and wraps integers modulo 2^bits, as numpy's casts do.
    const target = out as Float64Array;
    if (op === "multiply" && (dtype === "int32" || dtype === "uint32")) {
      // A product of two 32-bit integers can exceed 2^53: Math.imul keeps the low 32 bits exactly.
      for (let i = 0; i < size; i++) target[i] = Math.imul(Number(dataA[ia(i)]!), Number(dataB[ib(i)]!));
    } else if (dtype.startsWith("uint") || dtype.startsWith("int")) {
      for (let i = 0; i < size; i++) target[i] = Math.trunc(apply(op, Number(dataA[ia(i)]!), Number(dataB[ib(i)]!)));
    } else {
      for (let i = 0; i < size; i++) target[i] = apply(op, Number(dataA[ia(i)]!), Number(dataB[ib(i)]!));
    }
  }
  return ndarray(dtype, shape, out);
}

export const add = (a: Operand, b: Operand): NdArray => elementwise("add", a, b);
export const subtract = (a: Operand, b: Operand): NdArray => elementwise("subtract", a, b);
export const multiply = (a: Operand, b: Operand): NdArray => elementwise("multiply", a, b);
export const divide = (a: Operand, b: Operand): NdArray => elementwise("divide", a, b);
