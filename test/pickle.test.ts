import { copyFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { DTYPES, type DType, type TypedArray } from "../src/core/ndarray.js";
import { encodeNpy } from "../src/db/npy.js";
import { decodeNumpyPickle, PickleError } from "../src/legacy/pickle.js";
import { queryOne, runsFile } from "./helpers/db.js";
import { FIXTURES, tempDir } from "./helpers/tmp.js";

/**
 * Writes pickle opcode streams the way CPython's pickler does for numpy arrays (numpy is not available to produce
 * real ones): protocol 4+ uses SHORT_BINUNICODE/STACK_GLOBAL/MEMOIZE inside a FRAME, protocols 2 and 3 use
 * GLOBAL/BINPUT, and protocol 2 writes bytes as `_codecs.encode(latin1_text, 'latin1')`. Strings and globals seen
 * before are fetched from the memo with BINGET, as the pickler does for the same object. The "builder reproduces
 * the fixture blob" test below checks this against a real numpy pickle byte for byte.
 */
class PickleWriter {
  private readonly out: number[] = [];
  private readonly memo = new Map<string, number>();
  private memoCount = 0;

  constructor(readonly protocol: 2 | 3 | 4 | 5) {}

  op(...bytes: number[]): this {
    this.out.push(...bytes);
    return this;
  }
  private le(value: number | bigint, width: number): this {
    let v = BigInt(value);
    for (let i = 0; i < width; i++, v >>= 8n) this.out.push(Number(v & 0xffn));
    return this;
  }
  private raw(bytes: Uint8Array): this {
    for (const b of bytes) this.out.push(b);
    return this;
  }
  private remember(key: string | undefined): this {
    if (key !== undefined) this.memo.set(key, this.memoCount);
    if (this.protocol >= 4) this.op(0x94); // MEMOIZE
    else if (this.memoCount < 256) this.op(0x71, this.memoCount); // BINPUT
    else this.op(0x72).le(this.memoCount, 4); // LONG_BINPUT
    this.memoCount++;
    return this;
  }
  /** BINGET a memoized object, if there is one. */
  private recall(key: string): boolean {
    const index = this.memo.get(key);
    if (index === undefined) return false;
    if (index < 256) this.op(0x68, index);
    else this.op(0x6a).le(index, 4);
    return true;
  }

  int(n: number): this {
    if (n >= 0 && n < 256) return this.op(0x4b, n); // BININT1
    if (n >= 0 && n < 65536) return this.op(0x4d).le(n, 2); // BININT2
    return this.op(0x4a).le(n & 0xffffffff, 4); // BININT
  }
  bool(b: boolean): this {
    return this.op(b ? 0x88 : 0x89);
  }
  none(): this {
    return this.op(0x4e);
  }
  /** `reuse: false` for strings that are fresh objects in Python (so never fetched from the memo). */
  str(s: string, reuse = true): this {
    if (reuse && this.recall(`s:${s}`)) return this;
    const utf8 = Buffer.from(s, "utf8");
    if (this.protocol >= 4 && utf8.length < 256) this.op(0x8c, utf8.length); // SHORT_BINUNICODE
    else this.op(0x58).le(utf8.length, 4); // BINUNICODE
    return this.raw(utf8).remember(reuse ? `s:${s}` : undefined);
  }
  bytes(b: Uint8Array): this {
    if (this.protocol === 2) {
      // Python 3 has no bytes opcode at protocol 2, so it pickles bytes as a call.
      if (b.length === 0) return this.global("__builtin__", "bytes").op(0x29, 0x52).remember(undefined); // EMPTY_TUPLE REDUCE
      return this.global("_codecs", "encode")
        .str(Buffer.from(b).toString("latin1"), false)
        .str("latin1")
        .op(0x86) // TUPLE2
        .remember(undefined)
        .op(0x52) // REDUCE
        .remember(undefined);
    }
    if (b.length < 256) this.op(0x43, b.length); // SHORT_BINBYTES
    else this.op(0x42).le(b.length, 4); // BINBYTES
    return this.raw(b).remember(undefined);
  }
  /** Protocol 5's in-band PickleBuffer of a writable buffer. */
  bytearray8(b: Uint8Array): this {
    return this.op(0x96).le(b.length, 8).raw(b).remember(undefined);
  }
  bytes8(b: Uint8Array): this {
    return this.op(0x8e).le(b.length, 8).raw(b).remember(undefined);
  }
  global(module: string, name: string): this {
    const key = `g:${module}.${name}`;
    if (this.recall(key)) return this;
    if (this.protocol >= 4) this.str(module).str(name).op(0x93); // STACK_GLOBAL
    else this.op(0x63).raw(Buffer.from(`${module}\n${name}\n`)); // GLOBAL
    return this.remember(key);
  }
  mark(): this {
    return this.op(0x28);
  }
  /** Close a tuple of `n` items (pushed after a `mark()` if n > 3), as the pickler does, and memoize it. */
  tuple(n: number): this {
    if (n === 0) return this.op(0x29); // EMPTY_TUPLE, never memoized
    return this.op(n <= 3 ? 0x84 + n : 0x74).remember(undefined); // TUPLE1..3 or TUPLE
  }
  reduce(): this {
    return this.op(0x52).remember(undefined);
  }
  build(): this {
    return this.op(0x62);
  }

  finish(): Uint8Array {
    const body = [...this.out, 0x2e]; // STOP
    const head = [0x80, this.protocol]; // PROTO
    if (this.protocol >= 4) {
      // FRAME: the length of everything after it (the pickler frames small pickles whole).
      head.push(0x95);
      for (let i = 0, n = body.length; i < 8; i++, n = Math.floor(n / 256)) head.push(n % 256);
    }
    return Uint8Array.from([...head, ...body]);
  }
}

interface NumpyPickle {
  protocol?: 2 | 3 | 4 | 5;
  /** numpy type code, e.g. "f8" */
  code: string;
  /** '<', '>' or '|' */
  order?: string;
  shape: number[];
  raw: Uint8Array;
  fortran?: boolean;
  /** the module numpy names `_reconstruct` by: numpy.core.multiarray (numpy 1) or numpy._core.multiarray (numpy 2) */
  module?: string;
}

/** A dtype as numpy pickles it: dtype(code, False, True) BUILD (3, order, None, None, None, -1, -1, 0). */
function writeDtype(w: PickleWriter, code: string, order: string): void {
  w.global("numpy", "dtype").str(code).bool(false).bool(true).tuple(3).reduce();
  w.mark().int(3).str(order).none().none().none().int(-1).int(-1).int(0).tuple(8).build();
}

/** The pickle numpy's `ndarray.__reduce__` produces (every protocol's `pickle.dumps(arr)` before 5). */
function numpyPickle(p: NumpyPickle): Uint8Array {
  const w = new PickleWriter(p.protocol ?? 4);
  const order = p.order ?? (DTYPES[codeToDtype(p.code)].itemSize === 1 ? "|" : "<");
  w.global(p.module ?? "numpy.core.multiarray", "_reconstruct");
  w.global("numpy", "ndarray").int(0).tuple(1).bytes(Buffer.from("b")).tuple(3).reduce();
  w.mark().int(1);
  for (const dim of p.shape) w.int(dim);
  w.tuple(p.shape.length);
  writeDtype(w, p.code, order);
  w.bool(p.fortran ?? false).bytes(p.raw).tuple(5).build();
  return w.finish();
}

/** The pickle numpy writes at protocol 5: _frombuffer(PickleBuffer, dtype, shape, order). */
function frombufferPickle(p: { code: string; shape: number[]; raw: Uint8Array; order: "C" | "F"; bytes8?: boolean }): Uint8Array {
  const w = new PickleWriter(5);
  w.global("numpy._core.numeric", "_frombuffer").mark();
  if (p.bytes8) w.bytes8(p.raw);
  else w.bytearray8(p.raw);
  writeDtype(w, p.code, DTYPES[codeToDtype(p.code)].itemSize === 1 ? "|" : "<");
  for (const dim of p.shape) w.int(dim);
  w.tuple(p.shape.length).str(p.order).tuple(4).reduce();
  return w.finish();
}

function codeToDtype(code: string): DType {
  return (Object.keys(DTYPES) as DType[]).find((d) => DTYPES[d].code === code) ?? "float64";
}

function bytesOf(data: TypedArray): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/** Reverse the bytes of every `width`-byte lane: the big-endian form of little-endian data. */
function swapped(bytes: Uint8Array, width: number): Uint8Array {
  const out = Uint8Array.from(bytes);
  for (let i = 0; i < out.length; i += width) out.subarray(i, i + width).reverse();
  return out;
}

/** Sample data for each dtype, `n` elements (complex: n re/im pairs). */
function sample(dtype: DType, n: number): TypedArray {
  const info = DTYPES[dtype];
  const length = n * info.lanes;
  const data = info.make(new ArrayBuffer(length * (info.itemSize / info.lanes)), 0, length);
  for (let i = 0; i < length; i++) {
    const v = dtype === "bool" ? i % 2 : dtype.startsWith("uint") ? i * 37 + 1 : (i - 2) * 41.25;
    const value = dtype.includes("int") ? Math.trunc(v) : v;
    const big = data instanceof BigInt64Array || data instanceof BigUint64Array;
    (data as unknown as Array<number | bigint>)[i] = big ? BigInt(value) : value;
  }
  return data;
}

const f8 = (numbers: number[]) => bytesOf(Float64Array.from(numbers));

/** A typed array's elements (numbers or bigints) as a plain array, for toEqual. */
const values = (data: TypedArray): unknown[] => Array.from(data as ArrayLike<unknown>);

function expectPickleError(bytes: Uint8Array, message: RegExp): void {
  let error: unknown;
  try {
    decodeNumpyPickle(bytes);
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(PickleError);
  expect((error as Error).message).toMatch(message);
}

describe("decodeNumpyPickle", () => {
  it("decodes a protocol 4 float64 array", () => {
    const a = decodeNumpyPickle(numpyPickle({ code: "f8", shape: [2, 3], raw: f8([1.5, -2, 3.25, 1e300, -0, 255.5]) }));
    expect(a.kind).toBe("ndarray");
    expect(a.dtype).toBe("float64");
    expect(a.shape).toEqual([2, 3]);
    expect(a.data).toBeInstanceOf(Float64Array);
    expect(values(a.data)).toEqual([1.5, -2, 3.25, 1e300, -0, 255.5]);
  });

  it.each(Object.keys(DTYPES) as DType[])("decodes %s in both byte orders", (dtype) => {
    const { code, itemSize, lanes } = DTYPES[dtype];
    const data = sample(dtype, 6);
    const little = numpyPickle({ code, shape: [3, 2], raw: bytesOf(data) });
    const bigRaw = swapped(bytesOf(data), itemSize / lanes);
    const big = numpyPickle({ code, shape: [3, 2], order: itemSize === 1 ? "|" : ">", raw: bigRaw });
    for (const bytes of [little, big]) {
      const a = decodeNumpyPickle(bytes);
      expect(a.dtype).toBe(dtype);
      expect(a.shape).toEqual([3, 2]);
      expect(a.data.constructor).toBe(data.constructor);
      expect(values(a.data)).toEqual(values(data));
    }
  });

  it("reorders Fortran-ordered arrays into C order", () => {
    // Column-major (2, 3): columns [1, 4], [2, 5], [3, 6].
    const a = decodeNumpyPickle(numpyPickle({ code: "f8", shape: [2, 3], fortran: true, raw: f8([1, 4, 2, 5, 3, 6]) }));
    expect(a.shape).toEqual([2, 3]);
    expect(values(a.data)).toEqual([1, 2, 3, 4, 5, 6]);

    // (2, 3, 2) with element (i, j, k) = 100i + 10j + k, written first index fastest.
    const fortran: number[] = [];
    for (let k = 0; k < 2; k++) for (let j = 0; j < 3; j++) for (let i = 0; i < 2; i++) fortran.push(100 * i + 10 * j + k);
    const raw = swapped(bytesOf(Int16Array.from(fortran)), 2); // and big-endian, to combine both conversions
    const b = decodeNumpyPickle(numpyPickle({ code: "i2", order: ">", shape: [2, 3, 2], fortran: true, raw }));
    expect(values(b.data)).toEqual([0, 1, 10, 11, 20, 21, 100, 101, 110, 111, 120, 121]);

    // Complex: each (re, im) pair moves as one element.
    const complexRaw = f8([1, -1, 3, -3, 2, -2, 4, -4]);
    const c = decodeNumpyPickle(numpyPickle({ code: "c16", shape: [2, 2], fortran: true, raw: complexRaw }));
    expect(values(c.data)).toEqual([1, -1, 2, -2, 3, -3, 4, -4]);
  });

  it("decodes 0-d and empty arrays", () => {
    const scalar = decodeNumpyPickle(numpyPickle({ code: "f8", shape: [], raw: f8([42.5]) }));
    expect(scalar.shape).toEqual([]);
    expect(values(scalar.data)).toEqual([42.5]);
    for (const protocol of [2, 4] as const) {
      const empty = decodeNumpyPickle(numpyPickle({ protocol, code: "f4", shape: [0, 4], raw: new Uint8Array(0) }));
      expect(empty.dtype).toBe("float32");
      expect(empty.shape).toEqual([0, 4]);
      expect(empty.data.length).toBe(0);
    }
  });

  it.each([2, 3] as const)("decodes protocol %i pickles (GLOBAL, BINPUT)", (protocol) => {
    // Bytes >= 0x80 become two-byte UTF-8 characters in protocol 2's latin-1 text.
    const numbers = [1.5, -2, 3.25, 1e300, -0, 255.5, Math.PI, -1e-300];
    const bytes = numpyPickle({ protocol, code: "f8", shape: [2, 4], raw: f8(numbers) });
    expect(Buffer.from(bytes).includes("_codecs\nencode\n")).toBe(protocol === 2);
    const a = decodeNumpyPickle(bytes);
    expect(a.dtype).toBe("float64");
    expect(a.shape).toEqual([2, 4]);
    expect(values(a.data)).toEqual(numbers);

    const bigRaw = Uint8Array.of(0x01, 0x02, 0xff, 0x00, 0, 7);
    const big = decodeNumpyPickle(numpyPickle({ protocol, code: "u2", order: ">", shape: [3], raw: bigRaw }));
    expect(values(big.data)).toEqual([0x0102, 0xff00, 7]);
  });

  it("decodes numpy 2 pickles (numpy._core.multiarray)", () => {
    const raw = bytesOf(BigInt64Array.of(-1n, 2n ** 40n));
    const a = decodeNumpyPickle(numpyPickle({ module: "numpy._core.multiarray", code: "i8", shape: [2], raw }));
    expect(a.dtype).toBe("int64");
    expect(values(a.data)).toEqual([-1n, 2n ** 40n]);
  });

  it("decodes protocol 5 pickles (_frombuffer with BYTEARRAY8 or BINBYTES8)", () => {
    const c = decodeNumpyPickle(frombufferPickle({ code: "f8", shape: [2, 3], order: "C", raw: f8([1, 2, 3, 4, 5, 6]) }));
    expect(c.shape).toEqual([2, 3]);
    expect(values(c.data)).toEqual([1, 2, 3, 4, 5, 6]);
    // An F-contiguous array is pickled as its (C-contiguous) transpose's buffer, i.e. in Fortran order.
    const f = decodeNumpyPickle(frombufferPickle({ code: "f8", shape: [2, 3], order: "F", raw: f8([1, 4, 2, 5, 3, 6]) }));
    expect(values(f.data)).toEqual([1, 2, 3, 4, 5, 6]);
    const u1 = Uint8Array.of(1, 2, 3, 250);
    const b = decodeNumpyPickle(frombufferPickle({ code: "u1", shape: [4], order: "C", raw: u1, bytes8: true }));
    expect(b.dtype).toBe("uint8");
    expect(values(b.data)).toEqual([1, 2, 3, 250]);
  });

  it("copies the data out of an unaligned input", () => {
    const pickle = numpyPickle({ code: "f8", shape: [3], raw: f8([1, 2, 3]) });
    const padded = Buffer.alloc(pickle.length + 3);
    padded.set(pickle, 3);
    const a = decodeNumpyPickle(padded.subarray(3));
    expect(values(a.data)).toEqual([1, 2, 3]);
    expect(a.data.byteOffset).toBe(0);
    expect(a.data.buffer).not.toBe(padded.buffer);
  });

  describe("a legacy v0 database's pickled summary", () => {
    function fixtureBlob(): Buffer {
      // Never open the fixture in place.
      const dir = tempDir("damnit-pickle-");
      copyFileSync(join(FIXTURES, "v0", "runs.sqlite"), runsFile(dir));
      return queryOne<{ agipd_mean_frame: Buffer }>(dir, "SELECT agipd_mean_frame FROM runs WHERE runnr = 1")!.agipd_mean_frame;
    }

    it("decodes to a float64 (64, 32) array", () => {
      const a = decodeNumpyPickle(fixtureBlob());
      expect(a.dtype).toBe("float64");
      expect(a.shape).toEqual([64, 32]);
      expect(a.data).toBeInstanceOf(Float64Array);
      expect(values(a.data).slice(0, 4)).toEqual([4851.9625, 5331.45, 4859.375, 4959.8]);
      expect(a.data[32]).toBe(5254.0125);
    });

    it("is reproduced byte for byte by the test's pickle builder", () => {
      const blob = fixtureBlob();
      const a = decodeNumpyPickle(blob);
      const rebuilt = numpyPickle({ code: "f8", shape: [64, 32], raw: bytesOf(a.data) });
      expect(Buffer.from(rebuilt).equals(blob)).toBe(true);
    });

    it("is rejected when truncated", () => {
      const blob = fixtureBlob();
      for (const length of [1, 2, 12, 60, 200, blob.length - 100, blob.length - 1]) {
        expectPickleError(blob.subarray(0, length), /^truncated pickle$/);
      }
    });
  });

  it("rejects truncated pickles at every length", () => {
    // Protocol 2 has no FRAME announcing the total length, so every opcode's own read must notice the end.
    const raw = f8([1.5, -2, 3.25, 1e300, -0, 255.5]);
    const pickles = [
      numpyPickle({ protocol: 2, code: "f8", shape: [2, 3], raw }),
      frombufferPickle({ code: "f8", shape: [6], order: "C", raw }),
    ];
    for (const pickle of pickles) {
      for (let length = 0; length < pickle.length; length++) {
        expectPickleError(pickle.subarray(0, length), length === 0 ? /^not a pickle/ : /^truncated pickle$/);
      }
    }
  });

  describe("rejects", () => {
    it("globals outside the allow-list", () => {
      // STACK_GLOBAL: os.system('echo pwned')
      const w4 = new PickleWriter(4);
      w4.global("os", "system").str("echo pwned").tuple(1).reduce();
      expectPickleError(w4.finish(), /^unsupported pickle global 'os\.system'$/);
      // GLOBAL, the classic protocol 2 form
      const w2 = new PickleWriter(2);
      w2.global("os", "system").str("echo pwned").tuple(1).reduce();
      expectPickleError(w2.finish(), /^unsupported pickle global 'os\.system'$/);
      // other numpy reconstructors (here a masked array's), and builtins other than bytes
      const masked = new PickleWriter(4);
      masked.global("numpy.ma.core", "_mareconstruct");
      expectPickleError(masked.finish(), /^unsupported pickle global 'numpy\.ma\.core\._mareconstruct'$/);
      const w = new PickleWriter(2);
      w.global("__builtin__", "eval");
      expectPickleError(w.finish(), /^unsupported pickle global '__builtin__\.eval'$/);
    });

    it("allow-listed callables with unexpected arguments", () => {
      const bytesCall = new PickleWriter(2);
      bytesCall.global("__builtin__", "bytes").int(10).tuple(1).reduce();
      expectPickleError(bytesCall.finish(), /__builtin__\.bytes called with arguments/);
      const encode = new PickleWriter(2);
      encode.global("_codecs", "encode").str("abc").str("rot13").tuple(2).reduce();
      expectPickleError(encode.finish(), /_codecs\.encode called with unexpected arguments/);
      const reconstruct = new PickleWriter(4);
      reconstruct.global("numpy.core.multiarray", "_reconstruct").global("numpy", "dtype");
      reconstruct.int(0).tuple(1).bytes(Buffer.from("b")).tuple(3).reduce();
      expectPickleError(reconstruct.finish(), /only numpy\.ndarray is supported/);
    });

    it("non-pickles", () => {
      expectPickleError(new Uint8Array(0), /^not a pickle/);
      expectPickleError(Buffer.from("hello world"), /^not a pickle/);
      expectPickleError(encodeNpy({ kind: "ndarray", dtype: "float64", shape: [1], data: Float64Array.of(1) }), /^not a pickle/);
      expectPickleError(Uint8Array.of(0x80, 0x01, 0x2e), /^unsupported pickle protocol 1$/);
    });

    it("unknown opcodes", () => {
      // EMPTY_DICT, which no numpy array pickle needs
      expectPickleError(Uint8Array.of(0x80, 0x04, 0x7d, 0x2e), /^unsupported pickle opcode 0x7d at byte 2$/);
      // protocol 0's text INT
      const textInt = Buffer.concat([Buffer.of(0x80, 0x02), Buffer.from("I1\n.")]);
      expectPickleError(textInt, /^unsupported pickle opcode 0x49 at byte 2$/);
    });

    it("results that are not arrays", () => {
      expectPickleError(Uint8Array.of(0x80, 0x04, 0x4b, 0x01, 0x2e), /^pickle holds a number, not a numpy array$/);
      const dtype = new PickleWriter(4);
      writeDtype(dtype, "f8", "<");
      expectPickleError(dtype.finish(), /not a numpy array/);
      const noState = new PickleWriter(4);
      noState.global("numpy.core.multiarray", "_reconstruct").global("numpy", "ndarray");
      noState.int(0).tuple(1).bytes(Buffer.from("b")).tuple(3).reduce();
      expectPickleError(noState.finish(), /no state/);
    });

    it("data whose length does not match the shape", () => {
      expectPickleError(
        numpyPickle({ code: "f8", shape: [2, 3], raw: f8([1, 2, 3, 4, 5]) }),
        /^array data has 40 bytes, shape \(2, 3\) of float64 needs 48$/,
      );
      expectPickleError(numpyPickle({ code: "i4", shape: [2], raw: new Uint8Array(9) }), /needs 8/);
    });

    it("unsupported dtypes and states", () => {
      const unicode = numpyPickle({ code: "U5", order: "<", shape: [1], raw: new Uint8Array(20) });
      expectPickleError(unicode, /^unsupported numpy dtype 'U5'$/);
      expectPickleError(numpyPickle({ code: "f8", order: "?", shape: [1], raw: f8([1]) }), /dtype state/);
      expectPickleError(numpyPickle({ code: "f8", shape: [-1], raw: f8([1]) }), /invalid numpy array shape/);
    });

    it("stack and memo misuse", () => {
      expectPickleError(Uint8Array.of(0x80, 0x04, 0x52, 0x2e), /^pickle stack underflow at byte 2$/);
      expectPickleError(Uint8Array.of(0x80, 0x04, 0x74, 0x2e), /no MARK/);
      expectPickleError(Uint8Array.of(0x80, 0x02, 0x68, 0x07, 0x2e), /^pickle memo has no entry 7/);
    });
  });
});
