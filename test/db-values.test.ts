/** Every value type DAMNIT stores round-trips through runs.sqlite with DAMNIT's encoding. */
import { describe, expect, it } from "vitest";
import { complex, decodeNpy, encodeNpy, ndarray, RunDatabase, type DType, type NdArray } from "../src/db/index.js";
import { countRows, queryAll, runVariableRows } from "./helpers/db.js";
import { tempDir } from "./helpers/tmp.js";

const P = 1234;

async function roundTrip(values: Parameters<RunDatabase["setVariables"]>[2]) {
  const db = await RunDatabase.open(tempDir(), { create: true });
  db.setVariables(P, 1, values, { provenance: "context.py" });
  const raw: any[] = runVariableRows(db.sqlite);
  const cells = db.readRunTable().rows[0]!.cells;
  db.close();
  return { raw: new Map(raw.map((r) => [r.name, r])), cells };
}

describe("scalars", () => {
  it("stores integers, floats, text, booleans and NULL as DAMNIT does", async () => {
    const { raw, cells } = await roundTrip({
      i: { value: 42 },
      big: { value: 2n ** 60n },
      bigger: { value: 9007199254740993n },
      negative: { value: -(2n ** 63n) },
      f: { value: 1.5, maxDiff: 0.25, summaryMethod: "mean" },
      s: { value: "Test DAQ / Sample-1" },
      yes: { value: true },
      nan: { value: NaN, maxDiff: 3 },
      none: { value: null, attributes: { error: "boom", error_cls: "RuntimeError" } },
      inf: { value: Infinity },
      wholeReal: { value: 12, real: true },
    });
    expect(raw.get("i")).toMatchObject({ type: "integer", value: 42, summary_method: "", summary_type: null });
    expect(raw.get("f")).toMatchObject({ type: "real", value: 1.5, summary_method: "mean", max_diff: 0.25 });
    expect(raw.get("s")).toMatchObject({ type: "text" });
    expect(raw.get("yes")).toMatchObject({ type: "integer", value: 1 });
    // NaN and None become NULL, with max_diff/summary fields cleared; attributes stay (they carry errors).
    expect(raw.get("nan")).toMatchObject({ type: "null", max_diff: null, summary_method: null });
    expect(raw.get("none")).toMatchObject({ type: "null", attributes: '{"error": "boom", "error_cls": "RuntimeError"}' });
    expect(raw.get("inf")).toMatchObject({ type: "real", value: Infinity });
    expect(raw.get("wholeReal")).toMatchObject({ type: "real", value: 12 });
    expect(raw.get("big")).toMatchObject({ type: "integer" });
    // Beyond 2^53 a JavaScript number would lose digits: such integers come back as BigInt.
    expect(cells.get("big")!.value).toBe(2n ** 60n);
    expect(cells.get("bigger")!.value).toBe(9007199254740993n);
    expect(cells.get("negative")!.value).toBe(-(2n ** 63n));
    expect(cells.get("s")!.value).toBe("Test DAQ / Sample-1");
    expect(cells.get("none")!.attributes).toEqual({ error: "boom", error_cls: "RuntimeError" });
  });

  it("stores complex scalars as 16-byte blobs with summary_type complex", async () => {
    const { raw, cells } = await roundTrip({ c: { value: complex(1.5, -2) }, ci: { value: complex(Infinity, 0) } });
    const blob = raw.get("c").value as Buffer;
    expect(raw.get("c").summary_type).toBe("complex");
    expect(blob.length).toBe(16);
    expect([blob.readDoubleLE(0), blob.readDoubleLE(8)]).toEqual([1.5, -2]);
    expect(cells.get("c")!.value).toEqual(complex(1.5, -2));
    expect(cells.get("ci")!.value).toEqual(complex(Infinity, 0));
  });

  it("writes attributes as Python's json.dumps does", async () => {
    const { raw } = await roundTrip({
      flagged: { value: 10, attributes: { background: [255, 204, 0], bold: true } },
      x: { value: 1, attributes: { units: "µm" } },
      plain: { value: 1, attributes: {} },
    });
    expect(raw.get("flagged").attributes).toBe('{"background": [255, 204, 0], "bold": true}');
    expect(raw.get("x").attributes).toBe('{"units": "\\u00b5m"}');
    expect(raw.get("plain").attributes).toBeNull();
  });
});

const SAMPLES: Record<DType, number[]> = {
  bool: [1, 0, 1, 1, 0, 0],
  int8: [-128, 0, 1, 2, 3, 127],
  int16: [-32768, 0, 1, 2, 3, 32767],
  int32: [-(2 ** 31), 0, 1, 2, 3, 2 ** 31 - 1],
  int64: [-(2 ** 53), 0, 1, 2, 3, 2 ** 53],
  uint8: [0, 1, 2, 3, 4, 255],
  uint16: [0, 1, 2, 3, 4, 65535],
  uint32: [0, 1, 2, 3, 4, 2 ** 32 - 1],
  uint64: [0, 1, 2, 3, 4, 2 ** 53],
  float32: [0.5, -1.25, 3, 1e30, -0, 7],
  float64: [Math.PI, -1e-300, 1e300, Infinity, -Infinity, 2],
  complex64: [1, 2, 3, 4, 5, 6, -1, -2, 0.5, 0.25, 8, 9],
  complex128: [Math.E, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11],
};

describe("arrays as .npy blobs", () => {
  for (const [dtype, values] of Object.entries(SAMPLES) as [DType, number[]][]) {
    for (const shape of [[6], [2, 3], [1, 2, 3]]) {
      it(`${dtype} ${JSON.stringify(shape)}`, async () => {
        const array = ndarray(dtype, shape, values);
        const { raw, cells } = await roundTrip({ a: { value: array } });
        const blob = raw.get("a").value as Buffer;
        expect(raw.get("a").summary_type).toBe("numpy");
        expect(blob.subarray(0, 6).toString("latin1")).toBe("\x93NUMPY");
        // The header is padded to a multiple of 64 bytes, as numpy writes it.
        expect((10 + blob.readUInt16LE(8)) % 64).toBe(0);
        const back = cells.get("a")!.value as NdArray;
        expect(back.dtype).toBe(dtype);
        expect(back.shape).toEqual(shape);
        expect(Array.from(back.data as ArrayLike<number | bigint>)).toEqual(Array.from(array.data as ArrayLike<number | bigint>));
      });
    }
  }

  it("keeps summary_type trendline for 2×N trendlines and refuses other shapes", async () => {
    const trend = ndarray("float64", [2, 3], [1, 2, 3, 10, 20, 30]);
    const { raw } = await roundTrip({ t: { value: trend, summaryType: "trendline", maxDiff: 20 } });
    expect(raw.get("t")).toMatchObject({ summary_type: "trendline", max_diff: 20 });
    await expect(roundTrip({ t: { value: ndarray("float64", [3], [1, 2, 3]), summaryType: "trendline" } })).rejects.toThrow(
      /trendline is a 2×N array/,
    );
  });

  it("writes the header numpy writes for a (2, 40) float64 array", () => {
    const blob = encodeNpy(ndarray("float64", [2, 40], new Float64Array(80)));
    expect(blob.subarray(0, 128).toString("latin1")).toBe(
      "\x93NUMPY\x01\x00v\x00{'descr': '<f8', 'fortran_order': False, 'shape': (2, 40), }" + " ".repeat(57) + "\n",
    );
  });

  it("reads big-endian and Fortran-ordered .npy (written by other tools)", () => {
    const header = "{'descr': '>i4', 'fortran_order': True, 'shape': (2, 3), }";
    const padded = header.padEnd(64 - 10 - 1, " ") + "\n";
    const head = Buffer.alloc(10);
    Buffer.from("\x93NUMPY\x01\x00", "latin1").copy(head);
    head.writeUInt16LE(padded.length, 8);
    // Fortran order: column by column, so [[1,2,3],[4,5,6]] is stored 1,4,2,5,3,6.
    const data = Buffer.alloc(24);
    [1, 4, 2, 5, 3, 6].forEach((v, i) => data.writeInt32BE(v, i * 4));
    const array = decodeNpy(Buffer.concat([head, Buffer.from(padded, "latin1"), data]));
    expect(array.shape).toEqual([2, 3]);
    expect(Array.from(array.data as Int32Array)).toEqual([1, 2, 3, 4, 5, 6]);
  });
});

describe("blobs", () => {
  it("stores PNG thumbnails unchanged with no summary_type and reads their size", async () => {
    const png = Buffer.alloc(33);
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]).copy(png);
    png.writeUInt32BE(300, 16);
    png.writeUInt32BE(150, 20);
    const { raw, cells } = await roundTrip({ img: { value: png, maxDiff: 5 } });
    expect(raw.get("img")).toMatchObject({ type: "blob", summary_type: null });
    expect(cells.get("img")!.value).toMatchObject({ kind: "png", width: 300, height: 150 });
  });
});

describe("refusals", () => {
  it("refuses unsupported values before writing anything", async () => {
    const db = await RunDatabase.open(tempDir(), { create: true });
    expect(() =>
      db.setVariables(P, 1, { ok: { value: 1 }, bad: { value: { some: "object" } as never } }, { provenance: "context.py" }),
    ).toThrow(/variable 'bad': cannot store a value of type Object/);
    expect(() => db.setVariables(P, 1, { "not a name": { value: 1 } }, { provenance: "x" })).toThrow(/not a valid variable name/);
    expect(() => db.setVariables(P, 1, { big: { value: 2n ** 64n } }, { provenance: "x" })).toThrow(/64-bit/);
    expect(countRows(db.sqlite, "run_variables")).toBe(0);
    expect(countRows(db.sqlite, "run_info")).toBe(0);
    db.close();
  });
});

describe("DAMNIT can read what we write", () => {
  it("keeps a format an independent SQLite reader sees as DAMNIT's", async () => {
    const dir = tempDir();
    const db = await RunDatabase.open(dir, { create: true, initialSettings: { proposal: P } });
    db.setVariables(P, 3, { n_trains: { value: 40 }, x: { value: ndarray("float32", [2], [1, 2]) } }, { provenance: "context.py", startTime: 1735689600 });
    db.close();
    expect(queryAll(dir, "SELECT proposal, run, start_time, n_trains FROM runs")).toEqual([
      { proposal: P, run: 3, start_time: 1735689600, n_trains: 40 },
    ]);
  });
});
