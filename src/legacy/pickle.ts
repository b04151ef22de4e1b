/**
 * A restricted decoder for Python pickles of numpy arrays, the form in which legacy (v0) DAMNIT databases stored
 * array summaries (`pickle.dumps(arr)`, protocols 2 to 5).
 *
 * A pickle is a program for a small stack machine whose REDUCE opcode calls arbitrary Python callables, so a real
 * unpickler runs whatever the blob names. This one never executes anything: it implements only the opcodes numpy
 * array pickles use, treats globals as plain names checked against an allow-list when they are read, and
 * interprets REDUCE and BUILD itself for exactly those names. Everything else is a `PickleError`.
 *
 * What numpy writes (see `array_reduce` / `arraydescr_reduce` in numpy's C sources):
 *   _reconstruct(ndarray, (0,), b'b')  BUILD (1, shape, dtype, is_fortran, rawbytes)
 *   dtype('f8', False, True)           BUILD (3, '<', None, None, None, -1, -1, 0)
 * and, with protocol 5, `_frombuffer(buffer, dtype, shape, 'C' | 'F')` instead. Python 3 writes bytes at protocol 2
 * as `_codecs.encode(latin1_text, 'latin1')` (and empty bytes as `__builtin__.bytes()`).
 */
import { arrayFromBytes, dtypeFromCode, type DType, type NdArray } from "../core/ndarray.js";

export class PickleError extends Error {
  override readonly name = "PickleError";
}

/** The callables we interpret, keyed by the `module.name` a pickle refers to them by. */
type Callable = "reconstruct" | "frombuffer" | "ndarray" | "dtype" | "encode" | "bytes";

const ALLOWED_GLOBALS: ReadonlyMap<string, Callable> = new Map<string, Callable>([
  ["numpy.core.multiarray._reconstruct", "reconstruct"], // numpy 1
  ["numpy._core.multiarray._reconstruct", "reconstruct"], // numpy 2
  ["numpy.core.numeric._frombuffer", "frombuffer"], // protocol 5, numpy 1
  ["numpy._core.numeric._frombuffer", "frombuffer"], // protocol 5, numpy 2
  ["numpy.ndarray", "ndarray"],
  ["numpy.dtype", "dtype"],
  ["_codecs.encode", "encode"], // bytes at protocol 2
  ["__builtin__.bytes", "bytes"], // empty bytes at protocol 2 (only ever called with no arguments)
  ["builtins.bytes", "bytes"],
]);

// The Python values the machine models. Strings are JS strings, bytes and bytearrays are Uint8Arrays, ints are
// numbers (bigints only beyond 2^53), None is null.
class PyTuple {
  constructor(readonly items: readonly PyValue[]) {}
}
class PyList {
  constructor(readonly items: PyValue[]) {}
}
class PyGlobal {
  constructor(
    readonly callable: Callable,
    readonly qualname: string,
  ) {}
}
/** A numpy dtype; BUILD may later set its byte order, so it is mutable (and shared through the memo). */
class PyDType {
  bigEndian = false;
  constructor(readonly dtype: DType) {}
}
/** The result of `_reconstruct`: an empty array that BUILD fills in. */
class PyArray {
  array: NdArray | undefined;
}
type PyValue = null | boolean | number | bigint | string | Uint8Array | PyTuple | PyList | PyGlobal | PyDType | PyArray;

// Opcodes, named as in CPython's Lib/pickle.py.
const Op = {
  MARK: 0x28, // (
  STOP: 0x2e, // .
  EMPTY_TUPLE: 0x29, // )
  BINBYTES: 0x42, // B
  SHORT_BINBYTES: 0x43, // C
  BINFLOAT: 0x47, // G
  BININT: 0x4a, // J
  BININT1: 0x4b, // K
  BININT2: 0x4d, // M
  NONE: 0x4e, // N
  REDUCE: 0x52, // R
  BINUNICODE: 0x58, // X
  EMPTY_LIST: 0x5d, // ]
  APPEND: 0x61, // a
  BUILD: 0x62, // b
  GLOBAL: 0x63, // c
  APPENDS: 0x65, // e
  BINGET: 0x68, // h
  LONG_BINGET: 0x6a, // j
  LIST: 0x6c, // l
  BINPUT: 0x71, // q
  LONG_BINPUT: 0x72, // r
  TUPLE: 0x74, // t
  PROTO: 0x80,
  TUPLE1: 0x85,
  TUPLE2: 0x86,
  TUPLE3: 0x87,
  NEWTRUE: 0x88,
  NEWFALSE: 0x89,
  LONG1: 0x8a,
  SHORT_BINUNICODE: 0x8c,
  BINUNICODE8: 0x8d,
  BINBYTES8: 0x8e,
  STACK_GLOBAL: 0x93,
  MEMOIZE: 0x94,
  FRAME: 0x95,
  BYTEARRAY8: 0x96,
} as const;

const utf8 = new TextDecoder("utf-8", { fatal: true });

class Reader {
  pos = 0;
  private readonly view: DataView;

  constructor(private readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  private advance(n: number): number {
    if (n > this.bytes.length - this.pos) throw new PickleError("truncated pickle");
    const at = this.pos;
    this.pos += n;
    return at;
  }

  u8(): number {
    return this.view.getUint8(this.advance(1));
  }
  u16(): number {
    return this.view.getUint16(this.advance(2), true);
  }
  u32(): number {
    return this.view.getUint32(this.advance(4), true);
  }
  i32(): number {
    return this.view.getInt32(this.advance(4), true);
  }
  /** An 8-byte length; anything longer than the rest of the input cannot be honoured anyway. */
  u64(): number {
    const n = this.view.getBigUint64(this.advance(8), true);
    if (n > BigInt(this.bytes.length - this.pos)) throw new PickleError("truncated pickle");
    return Number(n);
  }
  f64be(): number {
    return this.view.getFloat64(this.advance(8), false);
  }
  take(n: number): Uint8Array {
    const at = this.advance(n);
    return this.bytes.subarray(at, at + n);
  }
  text(n: number): string {
    try {
      return utf8.decode(this.take(n));
    } catch (e) {
      if (e instanceof PickleError) throw e;
      throw new PickleError(`invalid UTF-8 string in pickle at byte ${this.pos - n}`);
    }
  }
  /** A newline-terminated field, as GLOBAL uses. */
  line(): string {
    const end = this.bytes.indexOf(0x0a, this.pos);
    if (end < 0) throw new PickleError("truncated pickle");
    const s = this.text(end - this.pos);
    this.pos++;
    return s;
  }
}

/** Decode a pickled numpy ndarray without executing anything; throws `PickleError` on anything else. */
export function decodeNumpyPickle(bytes: Uint8Array): NdArray {
  if (bytes[0] !== Op.PROTO) throw new PickleError("not a pickle of protocol 2 or later (no PROTO opcode at byte 0)");
  const r = new Reader(bytes);
  // As in CPython, MARK saves the current stack on a meta-stack and starts a fresh one.
  let stack: PyValue[] = [];
  const metastack: PyValue[][] = [];
  const memo = new Map<number, PyValue>();
  let at = 0;

  const pop = (): PyValue => {
    if (stack.length === 0) throw new PickleError(`pickle stack underflow at byte ${at}`);
    return stack.pop()!;
  };
  const top = (): PyValue => {
    if (stack.length === 0) throw new PickleError(`pickle stack underflow at byte ${at}`);
    return stack[stack.length - 1]!;
  };
  const popMark = (): PyValue[] => {
    const items = stack;
    const outer = metastack.pop();
    if (!outer) throw new PickleError(`pickle has no MARK for the opcode at byte ${at}`);
    stack = outer;
    return items;
  };
  const get = (key: number): PyValue => {
    if (!memo.has(key)) throw new PickleError(`pickle memo has no entry ${key} (byte ${at})`);
    return memo.get(key)!;
  };
  const put = (key: number): void => void memo.set(key, top());
  const global = (module: string, name: string): PyGlobal => {
    const qualname = `${module}.${name}`;
    const callable = ALLOWED_GLOBALS.get(qualname);
    if (!callable) throw new PickleError(`unsupported pickle global '${qualname}'`);
    return new PyGlobal(callable, qualname);
  };

  for (;;) {
    at = r.pos;
    const op = r.u8();
    switch (op) {
      case Op.PROTO: {
        const version = r.u8();
        if (version < 2 || version > 5) throw new PickleError(`unsupported pickle protocol ${version}`);
        break;
      }
      case Op.FRAME:
        // Frames only group opcodes for buffered reading; the stream inside is contiguous, so just check the size.
        r.u64();
        break;
      case Op.STOP: {
        const result = pop();
        if (result instanceof PyArray && result.array) return result.array;
        throw new PickleError(
          result instanceof PyArray
            ? "pickled numpy array has no state (BUILD missing)"
            : `pickle holds ${describe(result)}, not a numpy array`,
        );
      }
      case Op.MARK:
        metastack.push(stack);
        stack = [];
        break;
      case Op.TUPLE: {
        const items = popMark(); // before touching `stack`, which popMark replaces
        stack.push(new PyTuple(items));
        break;
      }
      case Op.EMPTY_TUPLE:
        stack.push(new PyTuple([]));
        break;
      case Op.TUPLE1:
      case Op.TUPLE2:
      case Op.TUPLE3: {
        const n = op - Op.TUPLE1 + 1;
        if (stack.length < n) throw new PickleError(`pickle stack underflow at byte ${at}`);
        stack.push(new PyTuple(stack.splice(stack.length - n, n)));
        break;
      }
      case Op.EMPTY_LIST:
        stack.push(new PyList([]));
        break;
      case Op.LIST: {
        const items = popMark();
        stack.push(new PyList(items));
        break;
      }
      case Op.APPEND: {
        const item = pop();
        asList(top(), at).items.push(item);
        break;
      }
      case Op.APPENDS: {
        const items = popMark();
        asList(top(), at).items.push(...items);
        break;
      }
      case Op.NONE:
        stack.push(null);
        break;
      case Op.NEWTRUE:
        stack.push(true);
        break;
      case Op.NEWFALSE:
        stack.push(false);
        break;
      case Op.BININT:
        stack.push(r.i32());
        break;
      case Op.BININT1:
        stack.push(r.u8());
        break;
      case Op.BININT2:
        stack.push(r.u16());
        break;
      case Op.LONG1:
        stack.push(decodeLong(r.take(r.u8())));
        break;
      case Op.BINFLOAT:
        stack.push(r.f64be());
        break;
      case Op.SHORT_BINUNICODE:
        stack.push(r.text(r.u8()));
        break;
      case Op.BINUNICODE:
        stack.push(r.text(r.u32()));
        break;
      case Op.BINUNICODE8:
        stack.push(r.text(r.u64()));
        break;
      case Op.SHORT_BINBYTES:
        stack.push(r.take(r.u8()));
        break;
      case Op.BINBYTES:
        stack.push(r.take(r.u32()));
        break;
      case Op.BINBYTES8:
      case Op.BYTEARRAY8:
        stack.push(r.take(r.u64()));
        break;
      case Op.MEMOIZE:
        put(memo.size);
        break;
      case Op.BINPUT:
        put(r.u8());
        break;
      case Op.LONG_BINPUT:
        put(r.u32());
        break;
      case Op.BINGET:
        stack.push(get(r.u8()));
        break;
      case Op.LONG_BINGET:
        stack.push(get(r.u32()));
        break;
      case Op.GLOBAL: {
        const module = r.line();
        stack.push(global(module, r.line()));
        break;
      }
      case Op.STACK_GLOBAL: {
        const name = pop();
        const module = pop();
        if (typeof module !== "string" || typeof name !== "string") {
          throw new PickleError(`STACK_GLOBAL at byte ${at} needs two strings`);
        }
        stack.push(global(module, name));
        break;
      }
      case Op.REDUCE: {
        const args = pop();
        const callable = pop();
        if (!(callable instanceof PyGlobal) || !(args instanceof PyTuple)) {
          throw new PickleError(`REDUCE at byte ${at} needs a global and an argument tuple`);
        }
        stack.push(call(callable, args.items));
        break;
      }
      case Op.BUILD: {
        const state = pop();
        setState(top(), state);
        break;
      }
      default:
        throw new PickleError(`unsupported pickle opcode 0x${op.toString(16).padStart(2, "0")} at byte ${at}`);
    }
  }
}

function asList(value: PyValue, at: number): PyList {
  if (!(value instanceof PyList)) throw new PickleError(`append to a non-list at byte ${at}`);
  return value;
}

/** LONG1's payload: a little-endian two's-complement integer. */
function decodeLong(bytes: Uint8Array): number | bigint {
  let n = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(bytes[i]!);
  if (bytes.length > 0 && bytes[bytes.length - 1]! & 0x80) n -= 1n << BigInt(8 * bytes.length);
  return n >= BigInt(Number.MIN_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n;
}

/** Interpret a REDUCE of an allow-listed global. */
function call(fn: PyGlobal, args: readonly PyValue[]): PyValue {
  switch (fn.callable) {
    case "reconstruct": {
      // _reconstruct(ndarray, (0,), b'b') makes an empty placeholder; the real shape, dtype and data come in BUILD.
      const [subtype] = args;
      if (args.length !== 3 || !(subtype instanceof PyGlobal) || subtype.callable !== "ndarray") {
        throw new PickleError(`${fn.qualname} called with unexpected arguments (only numpy.ndarray is supported)`);
      }
      return new PyArray();
    }
    case "frombuffer": {
      // _frombuffer(buffer, dtype, shape, order): the buffer holds the array in the given order.
      const [buffer, dtype, shape, order] = args;
      const ok = buffer instanceof Uint8Array && dtype instanceof PyDType && (order === "C" || order === "F");
      if (args.length !== 4 || !ok) {
        throw new PickleError(`${fn.qualname} called with unexpected arguments`);
      }
      const result = new PyArray();
      result.array = makeArray(dtype, shape ?? null, order === "F", buffer);
      return result;
    }
    case "dtype": {
      // dtype(code, align, copy); the byte order arrives later in BUILD.
      const [code] = args;
      if (typeof code !== "string") throw new PickleError(`${fn.qualname} called with unexpected arguments`);
      const dtype = dtypeFromCode(code);
      if (!dtype) throw new PickleError(`unsupported numpy dtype '${code}'`);
      return new PyDType(dtype);
    }
    case "encode": {
      const [text, encoding] = args;
      if (args.length !== 2 || typeof text !== "string" || (encoding !== "latin1" && encoding !== "latin-1")) {
        throw new PickleError(`${fn.qualname} called with unexpected arguments (only latin1 text is supported)`);
      }
      return latin1(text);
    }
    case "bytes":
      if (args.length !== 0) throw new PickleError(`${fn.qualname} called with arguments (only bytes() is supported)`);
      return new Uint8Array(0);
    case "ndarray":
      throw new PickleError(`${fn.qualname} cannot be called directly in a supported pickle`);
  }
}

/** Interpret a BUILD (`obj.__setstate__(state)`) on a dtype or array. */
function setState(target: PyValue, state: PyValue): void {
  if (target instanceof PyDType) {
    // (version, byte order, subarray, names, fields, elsize, alignment, flags[, metadata]): only the byte order
    // matters for the plain dtypes we accept ('|' for 1-byte types, '=' native, which numpy itself never pickles).
    const order = state instanceof PyTuple ? state.items[1] : undefined;
    if (order === ">") target.bigEndian = true;
    else if (order === "<" || order === "|" || order === "=") target.bigEndian = false;
    else throw new PickleError("unsupported numpy dtype state (no byte order)");
    return;
  }
  if (target instanceof PyArray) {
    if (target.array) throw new PickleError("numpy array state set twice");
    // (version, shape, dtype, is_fortran, rawdata), or without the version (version 0, very old numpy).
    const items = state instanceof PyTuple ? state.items : [];
    const fields = items.length === 5 ? items.slice(1) : items.length === 4 ? items : undefined;
    if (items.length === 5 && items[0] !== 1) {
      throw new PickleError(`unsupported numpy array state version ${String(items[0])}`);
    }
    const [shape, dtype, fortran, raw] = fields ?? [];
    if (!(dtype instanceof PyDType) || (typeof fortran !== "boolean" && typeof fortran !== "number")) {
      throw new PickleError("unsupported numpy array state");
    }
    // numpy accepts the data as a str too (Python 2 pickles loaded with encoding='latin1').
    const data = typeof raw === "string" ? latin1(raw) : raw;
    if (!(data instanceof Uint8Array)) {
      throw new PickleError("numpy array state holds no raw data (object arrays are not supported)");
    }
    target.array = makeArray(dtype, shape ?? null, Boolean(fortran), data);
    return;
  }
  throw new PickleError(`BUILD on ${describe(target)} is not supported`);
}

function latin1(text: string): Uint8Array {
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c > 0xff) throw new PickleError("pickled data string is not latin-1");
    out[i] = c;
  }
  return out;
}

function makeArray(pyDtype: PyDType, shapeValue: PyValue, fortran: boolean, raw: Uint8Array): NdArray {
  if (!(shapeValue instanceof PyTuple)) throw new PickleError("numpy array shape is not a tuple");
  const shape = shapeValue.items.map((d) => {
    if (typeof d !== "number" || !Number.isSafeInteger(d) || d < 0) {
      throw new PickleError(`invalid numpy array shape dimension ${String(d)}`);
    }
    return d;
  });
  try {
    return arrayFromBytes(pyDtype.dtype, shape, raw, { bigEndian: pyDtype.bigEndian, fortran });
  } catch (err) {
    throw new PickleError((err as Error).message);
  }
}

function describe(value: PyValue): string {
  if (value === null) return "None";
  if (value instanceof Uint8Array) return "bytes";
  if (value instanceof PyTuple) return "a tuple";
  if (value instanceof PyList) return "a list";
  if (value instanceof PyGlobal) return value.qualname;
  if (value instanceof PyDType) return "a numpy dtype";
  if (value instanceof PyArray) return "a numpy array";
  return `a ${typeof value === "bigint" ? "number" : typeof value}`;
}
