/**
 * The direct chunked read path (chunk addresses from the file, deflate through Node's zlib, shuffle undone in JS)
 * against libhdf5's own read, on files h5py writes in every layout: uncompressed, gzip, shuffle, partial edge chunks,
 * fill values and chunks never written, plus layouts that must stay on libhdf5's path.
 */
import { closeSync, openSync, readSync, writeSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { isDamnitError } from "../src/core/errors.js";
import { type ReadAt, findChunkedLayout, readChunkedRows, unshuffle } from "../src/exdf/chunked-read.js";
import { openRunDirectory } from "../src/exdf/index.js";
import { releaseScratch, takeScratch } from "../src/exdf/scratch-pool.js";
import { HeapBuffer, datasetInfo, loadH5, openH5File, readRowsToHeap } from "../src/h5/file.js";
import { h5pyAvailable, runH5py } from "./helpers/h5py.js";
import { tempDir } from "./helpers/tmp.js";

/** Datasets of every layout, with the values written known to numpy; prints which ones we expect to read directly. */
const WRITE_LAYOUTS = `
import numpy as np
path, latest = sys.argv[1], sys.argv[2]
rng = np.random.default_rng(7)
specs = {}
with h5py.File(path, "w") as f:
    def make(name, data, direct, **kw):
        f.create_dataset(name, data=data, **kw)
        specs[name] = direct
    frames = rng.integers(0, 60000, size=(250, 64, 32)).astype("u2")
    make("plain_u2", frames, True, chunks=(16, 64, 32))
    make("one_row_chunks", frames, True, chunks=(1, 64, 32))
    make("gzip_f4", frames.astype("f4") * 0.5, True, chunks=(1, 64, 32), compression="gzip", compression_opts=1)
    make("shuffle_gzip_f8", frames.astype("f8") / 3, True, chunks=(7, 64, 32), compression="gzip", shuffle=True)
    make("shuffle_u4", frames.astype("u4") * 65537, True, chunks=(9, 64, 32), shuffle=True)
    make("gzip_u1", (frames % 7).astype("u1"), True, chunks=(5, 64, 32), compression="gzip")
    make("rows_1d", np.arange(100000, dtype="i8") * 3, True, chunks=(3000,), compression="gzip", shuffle=True)
    make("split_entries", frames, False, chunks=(16, 32, 32))
    make("big_endian", frames.astype(">u2"), False, chunks=(16, 64, 32))
    make("fletcher", frames, False, chunks=(16, 64, 32), fletcher32=True)
    make("contiguous", frames, False)
    # Chunks never written read as the fill value.
    for name, kw in [("holes_plain", {}), ("holes_gzip", {"compression": "gzip", "shuffle": True})]:
        ds = f.create_dataset(name, shape=(250, 64, 32), dtype="i2", chunks=(16, 64, 32), fillvalue=-7, **kw)
        ds[0:16] = frames[0:16].astype("i2")
        ds[40:70] = frames[40:70].astype("i2")  # partial chunks: the rest of chunks 2 and 4 hold the fill value
        ds[240:250] = 5
        specs[name] = True
    ds = f.create_dataset("grown", shape=(40, 64, 32), maxshape=(None, 64, 32), dtype="u2", chunks=(16, 64, 32), compression="gzip")
    ds[:] = frames[:40]
    ds.resize((200, 64, 32))
    specs["grown"] = True
print(json.dumps(specs))
`;

const WRITE_LATEST = `
import numpy as np
with h5py.File(sys.argv[1], "w", libver="latest") as f:
    f.create_dataset("fixed_array", data=np.arange(250 * 2048, dtype="u2").reshape(250, 2048), chunks=(16, 2048), compression="gzip")
    f.create_dataset("ext_array", data=np.arange(250 * 2048, dtype="u2").reshape(250, 2048), chunks=(16, 2048), maxshape=(None, 2048))
print(json.dumps({"fixed_array": False, "ext_array": False}))
`;

function fileReader(path: string): { read: ReadAt; close: () => void } {
  const fd = openSync(path, "r");
  const read: ReadAt = (position, out) => {
    let done = 0;
    while (done < out.length) {
      const n = readSync(fd, out, done, out.length - done, position + done);
      if (n === 0) throw new Error("short read");
      done += n;
    }
  };
  return { read, close: () => closeSync(fd) };
}

describe.runIf(h5pyAvailable())("chunked datasets read directly", () => {
  it("reads every layout exactly as libhdf5 does, and takes the direct path where it should", async () => {
    const lib = await loadH5();
    const dir = tempDir();
    const cases: Array<[string, Record<string, boolean>]> = [
      [join(dir, "layouts.h5"), runH5py(WRITE_LAYOUTS, [join(dir, "layouts.h5"), "0"]) as Record<string, boolean>],
      [join(dir, "latest.h5"), runH5py(WRITE_LATEST, [join(dir, "latest.h5")]) as Record<string, boolean>],
    ];
    let checked = 0;
    for (const [path, specs] of cases) {
      const file = openH5File(lib, path);
      const heap = new HeapBuffer(lib.module);
      const reader = fileReader(path);
      try {
        for (const [name, direct] of Object.entries(specs)) {
          const info = datasetInfo(lib, file, name);
          const layout = findChunkedLayout(lib, info, (use) => use(reader.read));
          expect({ name, direct: layout !== null }).toEqual({ name, direct });
          if (!layout) continue;
          const rows = info.shape[0]!;
          const ranges: Array<[number, number]> = [[0, rows], [3, 37], [rows - 1, 1], [rows - 13, 13], [17, 1], [0, 1], [15, 2]];
          for (const [start, n] of ranges) {
            const expected = readRowsToHeap(lib, info, start, n, undefined, heap).slice();
            const ours = new Uint8Array(n * layout.rowBytes);
            let fallbacks = 0;
            readChunkedRows(layout, reader.read, start, n, ours, (a, m, into) => {
              fallbacks++;
              into.set(readRowsToHeap(lib, info, a, m, undefined, heap));
            });
            expect({ name, start, n, same: Buffer.compare(ours, expected) === 0 }).toEqual({ name, start, n, same: true });
            if (!name.startsWith("holes") && name !== "grown") expect({ name, fallbacks }).toEqual({ name, fallbacks: 0 });
            checked++;
          }
          if (name.startsWith("holes") || name === "grown") expect({ name, missing: layout.chunks.filter((c) => c === undefined).length }).toEqual({ name, missing: name === "grown" ? 10 : 11 });
        }
      } finally {
        reader.close();
        heap.release();
        file.close();
      }
    }
    expect(checked).toBe(10 * 7);
  });

  it("values through the run reader match h5py's on a gzip-chunked run key, whole and in borrowed slices", async () => {
    const dir = tempDir();
    const path = join(dir, "RAW-R0001-DA01-S00000.h5");
    const sums = runH5py(
      `
import numpy as np
n = 120
tids = np.arange(1000, 1000 + n, dtype="u8")
frames = (np.arange(n * 96 * 40, dtype="u4").reshape(n, 96, 40) * 2654435761 % 40000).astype("f4")
with h5py.File(sys.argv[1], "w") as f:
    f["METADATA/dataFormatVersion"] = [b"1.2"]
    f["METADATA/dataSources/dataSourceId"] = [b"INSTRUMENT/SPB_DET/CAM:output/data"]
    f["INDEX/trainId"] = tids
    f["INDEX/SPB_DET/CAM:output/data/first"] = np.arange(n, dtype="u8")
    f["INDEX/SPB_DET/CAM:output/data/count"] = np.ones(n, dtype="u8")
    f.create_dataset("INSTRUMENT/SPB_DET/CAM:output/data/image", data=frames, chunks=(4, 96, 40), compression="gzip", shuffle=True)
    f.create_dataset("INSTRUMENT/SPB_DET/CAM:output/data/raw", data=frames.astype("u2"), chunks=(8, 96, 40))
print(json.dumps({"image": [float(x) for x in frames.astype("f8").sum(axis=(1, 2))], "raw": [float(x) for x in frames.astype("u2").astype("f8").sum(axis=(1, 2))]}))
`,
      [path],
    ) as Record<string, number[]>;
    const run = await openRunDirectory(dir);
    try {
      for (const key of ["data.image", "data.raw"]) {
        const data = run.key("SPB_DET/CAM:output", key);
        const file = run.source("SPB_DET/CAM:output").files[0]!;
        expect(file.chunkedLayout(data.info)).not.toBeNull();
        const expected = sums[key.slice(5)]!;
        const whole = data.ndarray();
        const perEntry = (values: ArrayLike<number>, entries: number) => {
          const size = values.length / entries;
          return Array.from({ length: entries }, (_, e) => {
            let s = 0;
            for (let k = 0; k < size; k++) s += values[e * size + k]!;
            return s;
          });
        };
        expect(perEntry(whole.data as Float32Array, 120)).toEqual(expected);
        const fromSlices: number[] = [];
        for (const s of data.slices({ maxBytes: 5 * 96 * 40 * 4, borrow: true })) fromSlices.push(...perEntry(s.data as Float32Array, s.shape[0]!));
        expect(fromSlices).toEqual(expected);
        // Two borrowed iterations side by side never share a buffer (one comes from the pool, one is fresh).
        const a = data.slices({ maxBytes: 5 * 96 * 40 * 4, borrow: true });
        const b = data.slices({ maxBytes: 5 * 96 * 40 * 4, borrow: true });
        const interleaved: number[][] = [[], []];
        for (let i = 0; i < 30; i++) {
          const [x, y] = [a.next(), b.next()];
          if (x.done || y.done) break;
          expect(x.value.data.buffer).not.toBe(y.value.data.buffer);
          interleaved[0]!.push(...perEntry(x.value.data as Float32Array, x.value.shape[0]!));
          interleaved[1]!.push(...perEntry(y.value.data as Float32Array, y.value.shape[0]!));
        }
        expect(interleaved).toEqual([expected, expected]);
      }
    } finally {
      run.close();
    }
  });

  it("a damaged deflate chunk is a BAD_RUN_FILE error, not wrong numbers", async () => {
    const dir = tempDir();
    const path = join(dir, "damaged.h5");
    runH5py(
      `
import numpy as np
with h5py.File(sys.argv[1], "w") as f:
    f.create_dataset("x", data=np.arange(64 * 4096, dtype="u4").reshape(64, 4096) % 1000, chunks=(8, 4096), compression="gzip")
print("{}")
`,
      [path],
    );
    const lib = await loadH5();
    const file = openH5File(lib, path);
    const reader = fileReader(path);
    try {
      const info = datasetInfo(lib, file, "x");
      const layout = findChunkedLayout(lib, info, (use) => use(reader.read))!;
      expect(layout).not.toBeNull();
      const chunk = layout.chunks[3]!;
      const fd = openSync(path, "r+");
      writeSync(fd, Buffer.alloc(64, 0xa5), 0, 64, chunk.address + 8);
      closeSync(fd);
      let error: unknown;
      try {
        readChunkedRows(layout, reader.read, 0, 64, new Uint8Array(64 * layout.rowBytes), () => {});
      } catch (err) {
        error = err;
      }
      expect(isDamnitError(error) && error.code).toBe("BAD_RUN_FILE");
    } finally {
      reader.close();
      file.close();
    }
  });
});

describe("scratch pool", () => {
  it("hands a released buffer to the next iteration, keeps at most two, and none above 16 MiB", () => {
    // Sizes above what earlier tests may have left in the pool (their slices are < 1 MiB).
    const MiB = 1024 * 1024;
    const first = takeScratch(MiB);
    releaseScratch(first);
    expect(takeScratch(0.9 * MiB)).toBe(first);
    const big = new Uint8Array(17 * 1024 * 1024);
    releaseScratch(big);
    expect(takeScratch(17 * 1024 * 1024)).not.toBe(big);
    const kept = [takeScratch(2 * MiB), takeScratch(3 * MiB), takeScratch(4 * MiB)];
    kept.forEach(releaseScratch);
    const again = [takeScratch(MiB), takeScratch(MiB), takeScratch(MiB)];
    expect(again.filter((b) => kept.includes(b)).length).toBe(2);
  });
});

describe("unshuffle", () => {
  it("puts each element's bytes back together, leaving trailing bytes as they are", () => {
    // Elements 0x0201, 0x0403, 0x0605 shuffled: low bytes first, then high bytes, then one trailing byte.
    const shuffled = Uint8Array.from([1, 3, 5, 2, 4, 6, 9]);
    expect(Array.from(unshuffle(shuffled, 2))).toEqual([1, 2, 3, 4, 5, 6, 9]);
    expect(Array.from(unshuffle(Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]), 4))).toEqual([1, 3, 5, 7, 2, 4, 6, 8]);
  });
});
