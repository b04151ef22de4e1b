/** A dense N-dimensional array in C order, the in-memory form of every array value stored in a run database. */

export type DType =
  | "bool"
  | "int8"
  | "int16"
  | "int32"
  | "int64"
  | "uint8"
  | "uint16"
  | "uint32"
  | "uint64"
  | "float32"
  | "float64"
  | "complex64"
  | "complex128";

export type TypedArray =
  | Uint8Array
  | Int8Array
  | Int16Array
  | Int32Array
  | BigInt64Array
  | Uint16Array
  | Uint32Array
  | BigUint64Array
  | Float32Array
  | Float64Array;

/**
 * `data` holds `size` elements; booleans are 0/1 bytes, complex numbers interleave real and imaginary parts
 * (so a complex array's `data` is twice as long as its size).
 */
export interface NdArray {
  readonly kind: "ndarray";
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly data: TypedArray;
}

interface DTypeInfo {
  /** numpy's type string without byte order, e.g. "f8" */
  readonly code: string;
  readonly itemSize: number;
  readonly make: (buffer: ArrayBuffer, byteOffset: number, length: number) => TypedArray;
  /** Elements of `data` per array element (2 for complex). */
  readonly lanes: number;
}

export const DTYPES: Readonly<Record<DType, DTypeInfo>> = {
  bool: { code: "b1", itemSize: 1, lanes: 1, make: (b, o, n) => new Uint8Array(b, o, n) },
  int8: { code: "i1", itemSize: 1, lanes: 1, make: (b, o, n) => new Int8Array(b, o, n) },
  int16: { code: "i2", itemSize: 2, lanes: 1, make: (b, o, n) => new Int16Array(b, o, n) },
  int32: { code: "i4", itemSize: 4, lanes: 1, make: (b, o, n) => new Int32Array(b, o, n) },
  int64: { code: "i8", itemSize: 8, lanes: 1, make: (b, o, n) => new BigInt64Array(b, o, n) },
  uint8: { code: "u1", itemSize: 1, lanes: 1, make: (b, o, n) => new Uint8Array(b, o, n) },
  uint16: { code: "u2", itemSize: 2, lanes: 1, make: (b, o, n) => new Uint16Array(b, o, n) },
  uint32: { code: "u4", itemSize: 4, lanes: 1, make: (b, o, n) => new Uint32Array(b, o, n) },
  uint64: { code: "u8", itemSize: 8, lanes: 1, make: (b, o, n) => new BigUint64Array(b, o, n) },
  float32: { code: "f4", itemSize: 4, lanes: 1, make: (b, o, n) => new Float32Array(b, o, n) },
  float64: { code: "f8", itemSize: 8, lanes: 1, make: (b, o, n) => new Float64Array(b, o, n) },
  complex64: { code: "c8", itemSize: 8, lanes: 2, make: (b, o, n) => new Float32Array(b, o, n) },
  complex128: { code: "c16", itemSize: 16, lanes: 2, make: (b, o, n) => new Float64Array(b, o, n) },
};

export function dtypeFromCode(code: string): DType | undefined {
  for (const [name, info] of Object.entries(DTYPES)) if (info.code === code) return name as DType;
  return undefined;
}

export function sizeOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Make an array, checking that `data` has the length the dtype and shape imply. */
export function ndarray(dtype: DType, shape: readonly number[], data: TypedArray | readonly number[]): NdArray {
  const info = DTYPES[dtype];
  for (const dim of shape) {
    if (!Number.isInteger(dim) || dim < 0) throw new RangeError(`invalid array shape (${shape.join(", ")})`);
  }
  const length = sizeOf(shape) * info.lanes;
  let typed: TypedArray;
  if (ArrayBuffer.isView(data)) {
    // A Float64Array labelled int32 would be written as garbage: the element type must be the dtype's.
    const expected = info.make(new ArrayBuffer(0), 0, 0).constructor;
    if (data.constructor !== expected) {
      throw new TypeError(`${dtype} data must be a ${expected.name}, got a ${data.constructor.name}`);
    }
    typed = data;
  } else {
    typed = info.make(new ArrayBuffer(length * (info.itemSize / info.lanes)), 0, length);
    const big = dtype === "int64" || dtype === "uint64";
    data.forEach((v, i) => ((typed as unknown as Array<number | bigint>)[i] = big ? BigInt(v) : v));
  }
  if (typed.length !== length) {
    throw new RangeError(`array data has ${typed.length} elements, shape (${shape.join(", ")}) of ${dtype} needs ${length}`);
  }
  return { kind: "ndarray", dtype, shape: [...shape], data: typed };
}

export function isNdArray(value: unknown): value is NdArray {
  return typeof value === "object" && value !== null && (value as { kind?: unknown }).kind === "ndarray";
}

/** numpy's spelling of a shape, as used in summaries like `float64: (2, 3)`. */
export function shapeText(shape: readonly number[]): string {
  return shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(", ")})`;
}

export const HOST_BIG_ENDIAN = new Uint8Array(Uint16Array.of(1).buffer)[0] === 0;

/**
 * An array from raw element bytes as files and pickles hold them: copied (so the typed array is aligned and owns
 * its memory), byte-swapped to host order, Fortran (column-major) order rearranged to C order.
 */
export function arrayFromBytes(
  dtype: DType,
  shape: readonly number[],
  raw: Uint8Array,
  layout: { bigEndian: boolean; fortran: boolean },
): NdArray {
  const info = DTYPES[dtype];
  const size = sizeOf(shape);
  const byteLength = size * info.itemSize;
  if (!Number.isSafeInteger(byteLength) || raw.length !== byteLength) {
    throw new RangeError(`array data has ${raw.length} bytes, shape (${shape.join(", ")}) of ${dtype} needs ${byteLength}`);
  }
  // new Uint8Array(raw) copies; raw.slice() would not for a Node Buffer.
  let bytes = new Uint8Array(raw);
  const laneSize = info.itemSize / info.lanes;
  if (layout.bigEndian !== HOST_BIG_ENDIAN && laneSize > 1) {
    for (let i = 0; i < bytes.length; i += laneSize) bytes.subarray(i, i + laneSize).reverse();
  }
  if (layout.fortran && shape.length > 1) bytes = fortranToC(bytes, shape, info.itemSize);
  return ndarray(dtype, shape, info.make(bytes.buffer, 0, size * info.lanes));
}

/** Reorder column-major element bytes into row-major order. */
function fortranToC(bytes: Uint8Array, shape: readonly number[], itemSize: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(bytes.length);
  const ndim = shape.length;
  const cStrides = new Array<number>(ndim);
  for (let d = ndim - 1, stride = itemSize; d >= 0; d--) {
    cStrides[d] = stride;
    stride *= shape[d]!;
  }
  // Walk the elements in Fortran order (first index fastest), tracking the C-order byte offset of each.
  const index = new Array<number>(ndim).fill(0);
  let c = 0;
  for (let f = 0; f < bytes.length; f += itemSize) {
    out.set(bytes.subarray(f, f + itemSize), c);
    for (let d = 0; d < ndim; d++) {
      c += cStrides[d]!;
      if (++index[d]! < shape[d]!) break;
      c -= shape[d]! * cStrides[d]!;
      index[d] = 0;
    }
  }
  return out;
}

/** Each typed array class and the dtype of its elements (a Uint8Array is uint8; bool is chosen by name, not class). */
export const TYPED_DTYPES: ReadonlyArray<readonly [new (...args: never[]) => unknown, DType]> = [
  [Float64Array, "float64"],
  [Float32Array, "float32"],
  [Int8Array, "int8"],
  [Int16Array, "int16"],
  [Int32Array, "int32"],
  [BigInt64Array, "int64"],
  [Uint8Array, "uint8"],
  [Uint16Array, "uint16"],
  [Uint32Array, "uint32"],
  [BigUint64Array, "uint64"],
];
