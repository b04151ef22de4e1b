/**
 * The `.npy` format (numpy's array file, versions 1.0 to 3.0): how DAMNIT stores array values and trendlines as
 * blobs. We write version 1.0 little-endian, which every numpy reads; we read any version and either byte order.
 */
import { arrayFromBytes, DTYPES, dtypeFromCode, HOST_BIG_ENDIAN, sizeOf, type DType, type NdArray } from "../core/ndarray.js";

export const NPY_MAGIC = Uint8Array.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]); // \x93NUMPY

export function isNpy(bytes: Uint8Array): boolean {
  return bytes.length >= NPY_MAGIC.length && NPY_MAGIC.every((b, i) => bytes[i] === b);
}

function descr(dtype: DType): string {
  const { code, itemSize } = DTYPES[dtype];
  return itemSize === 1 ? `|${code}` : `<${code}`;
}

export function encodeNpy(array: NdArray): Buffer {
  // Typed arrays use the host's byte order and we declare little-endian ('<') below.
  if (HOST_BIG_ENDIAN) throw new Error("writing .npy blobs on a big-endian host is not supported");
  const shape = array.shape.length === 1 ? `(${array.shape[0]},)` : `(${array.shape.join(", ")})`;
  let header = `{'descr': '${descr(array.dtype)}', 'fortran_order': False, 'shape': ${shape}, }`;
  // numpy pads the header with spaces so that magic + version + length + header + "\n" is a multiple of 64.
  const fixed = NPY_MAGIC.length + 2 + 2;
  const total = Math.ceil((fixed + header.length + 1) / 64) * 64;
  header = header.padEnd(total - fixed - 1, " ") + "\n";
  const data = Buffer.from(array.data.buffer, array.data.byteOffset, array.data.byteLength);
  const out = Buffer.alloc(total + data.length);
  out.set(NPY_MAGIC, 0);
  out[6] = 1;
  out[7] = 0;
  out.writeUInt16LE(header.length, 8);
  out.write(header, fixed, "latin1");
  data.copy(out, total);
  return out;
}

export class NpyFormatError extends Error {
  override readonly name = "NpyFormatError";
}

export function decodeNpy(bytes: Uint8Array): NdArray {
  if (!isNpy(bytes)) throw new NpyFormatError("not a .npy blob (magic \\x93NUMPY missing)");
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const major = buf[6];
  let headerLength: number;
  let headerStart: number;
  if (major === 1) {
    headerLength = buf.readUInt16LE(8);
    headerStart = 10;
  } else if (major === 2 || major === 3) {
    headerLength = buf.readUInt32LE(8);
    headerStart = 12;
  } else {
    throw new NpyFormatError(`unsupported .npy version ${major}`);
  }
  const header = buf.toString(major === 3 ? "utf8" : "latin1", headerStart, headerStart + headerLength);
  const descrMatch = /'descr':\s*'([<>|=])([A-Za-z]\d*(?:\[\w+\])?)'/.exec(header);
  const fortranMatch = /'fortran_order':\s*(True|False)/.exec(header);
  const shapeMatch = /'shape':\s*\(([^)]*)\)/.exec(header);
  if (!descrMatch || !fortranMatch || !shapeMatch) throw new NpyFormatError(`unreadable .npy header: ${header.trim()}`);
  const [, order, code] = descrMatch as unknown as [string, string, string];
  const dtype = dtypeFromCode(code);
  if (!dtype) throw new NpyFormatError(`unsupported .npy dtype '${order}${code}'`);
  const shape = shapeMatch[1]!
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "")
    .map(Number);
  const dataStart = headerStart + headerLength;
  const byteLength = sizeOf(shape) * DTYPES[dtype].itemSize;
  if (buf.length < dataStart + byteLength) {
    throw new NpyFormatError(`truncated .npy blob: ${buf.length - dataStart} data bytes, shape needs ${byteLength}`);
  }
  return arrayFromBytes(dtype, shape, buf.subarray(dataStart, dataStart + byteLength), {
    bigEndian: order === ">",
    fortran: fortranMatch[1] === "True",
  });
}
