/** Complex scalars: DAMNIT stores them as a 16-byte blob (real, imaginary; float64 little-endian). */

export interface Complex {
  readonly kind: "complex";
  readonly re: number;
  readonly im: number;
}

export function complex(re: number, im: number): Complex {
  return { kind: "complex", re, im };
}

export function isComplex(value: unknown): value is Complex {
  return typeof value === "object" && value !== null && (value as { kind?: unknown }).kind === "complex";
}

export function encodeComplex(value: Complex): Buffer {
  const out = Buffer.alloc(16);
  out.writeDoubleLE(value.re, 0);
  out.writeDoubleLE(value.im, 8);
  return out;
}

export function decodeComplex(bytes: Uint8Array): Complex {
  if (bytes.length !== 16) throw new RangeError(`a complex value blob has 16 bytes, this one has ${bytes.length}`);
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return complex(buf.readDoubleLE(0), buf.readDoubleLE(8));
}
