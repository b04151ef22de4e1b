/** Bad run data gets a clear error naming the problem, never silently wrong numbers. */
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isDamnitError } from "../src/core/errors.js";
import { dataRoot, findProposalDirectory, openRun, openRunDirectory } from "../src/exdf/index.js";
import { loadH5 } from "../src/h5/file.js";
import { CAMERA, XGM_CONTROL, detectorPixel, detectorSource, firstTrainId } from "../src/synth/layout.js";
import { H5Writer } from "../src/h5/writer.js";
import { writeSyntheticRun } from "../src/synth/write-run.js";
import { tempDir } from "./helpers/tmp.js";

async function expectError(promise: Promise<unknown> | (() => unknown), code: string, pattern: RegExp): Promise<void> {
  let caught: unknown;
  try {
    await (typeof promise === "function" ? promise() : promise);
  } catch (err) {
    caught = err;
  }
  expect(caught, "expected an error").toBeDefined();
  expect(isDamnitError(caught) ? caught.code : String(caught)).toBe(code);
  expect((caught as Error).message).toMatch(pattern);
}

/**
 * A minimal one-source EXDF file written with H5Writer (oldest HDF5 format, so headers carry no checksums and a filter
 * id can be patched): camera `CAM:output` with `data.image` gzip-compressed in chunks.
 */
async function writeMiniRunFile(path: string, opts: { count?: number; version?: string } = {}): Promise<void> {
  const w = new H5Writer(await loadH5(), path);
  try {
    const u64 = { class: "int", size: 8, signed: false } as const;
    const n = 4;
    for (const group of ["INDEX/CAM:output/data", "METADATA/dataSources", "INSTRUMENT/CAM:output/data"]) w.requireGroup(group);
    w.writeDataset("INDEX/trainId", u64, [n], BigUint64Array.from([1001n, 1002n, 1003n, 1004n]));
    w.writeStringDataset("METADATA/dataFormatVersion", [opts.version ?? "1.2"], [1]);
    w.writeStringDataset("METADATA/dataSources/dataSourceId", ["INSTRUMENT/CAM:output/data"], [1]);
    w.writeDataset("INDEX/CAM:output/data/first", u64, [n], BigUint64Array.from([0n, 1n, 2n, 3n]));
    w.writeDataset("INDEX/CAM:output/data/count", u64, [n], BigUint64Array.from([1n, 1n, 1n, BigInt(opts.count ?? 1)]));
    const image = Float32Array.from({ length: n * 16 }, (_, i) => i);
    w.writeDataset("INSTRUMENT/CAM:output/data/image", { class: "float", size: 4 }, [n, 4, 4], image, { chunks: [1, 4, 4], deflate: 1 });
    w.close();
  } catch (err) {
    w.abort();
    throw err;
  }
}

/** Rewrite the deflate filter message (pipeline v1) as lzf, a filter libhdf5 in h5wasm does not have. */
function patchFilterToLzf(path: string): void {
  const bytes = readFileSync(path);
  const pipelineV1 = Buffer.from([1, 1, 0, 0, 0, 0, 0, 0, 1, 0]);
  const at = bytes.indexOf(pipelineV1);
  expect(at).toBeGreaterThan(0);
  bytes.writeUInt16LE(32000, at + 8);
  const name = bytes.indexOf(Buffer.from("deflate\0"), at);
  bytes.write("lzf\0\0\0\0\0", name, "latin1");
  writeFileSync(path, bytes);
}

describe("missing and empty runs", () => {
  it("names a missing run directory, an empty one, and a missing proposal or proc run", async () => {
    const root = tempDir();
    await expectError(openRunDirectory(join(root, "nope")), "NO_RUN", /no run directory at .*nope/);
    mkdirSync(join(root, "empty"));
    await expectError(openRunDirectory(join(root, "empty")), "NO_RUN", /holds no run files/);
    await writeSyntheticRun({ root, proposal: 77, run: 3, proc: false });
    await expectError(openRun(78, 3, { root }), "NO_RUN", /proposal 78 not found under .*p000078/);
    await expectError(openRun(77, 4, { root }), "NO_RUN", /run 4 of proposal 77 has no raw data/);
    await expectError(openRun(77, 3, { root, data: "proc" }), "NO_RUN", /run 3 of proposal 77 has no proc data/);
    const all = await openRun(77, 3, { root, data: "all" }); // a missing proc part is fine for "all"
    all.close();
    await expectError(openRun(1, 1, { root: join(root, "nowhere") }), "NO_RUN", /data root .*nowhere does not exist/);
  });

  it("takes the data root from EXTRA_DATA_DATA_ROOT, then XFEL_DATA_ROOT", () => {
    expect(dataRoot({ EXTRA_DATA_DATA_ROOT: "/a", XFEL_DATA_ROOT: "/b" })).toBe("/a");
    expect(dataRoot({ XFEL_DATA_ROOT: "/b" })).toBe("/b");
    expect(dataRoot({})).toBe("/gpfs/exfel/exp");
  });

  it("finds a proposal under any instrument and cycle", async () => {
    const root = tempDir();
    await writeSyntheticRun({ root, proposal: 5, run: 1, proc: false, instrument: "FXE", cycle: "202502" });
    expect(findProposalDirectory(5, root)).toBe(join(root, "FXE", "202502", "p000005"));
  });
});

describe("damaged and foreign files", () => {
  let goodRoot: string;
  let good: string;
  beforeAll(async () => {
    // Shared by the tests below, so not a tempDir (those go after each test).
    goodRoot = mkdtempSync(join(tmpdir(), "damnit-good-"));
    good = (await writeSyntheticRun({ root: goodRoot, proposal: 9, run: 1, proc: false })).rawDir;
  }, 60_000);
  afterAll(() => rmSync(goodRoot, { recursive: true, force: true }));

  const copyRun = () => {
    const dir = join(tempDir(), "r0001");
    mkdirSync(dir);
    for (const name of ["RAW-R0001-DA01-S00000.h5", "RAW-R0001-DA01-S00001.h5", "RAW-R0001-DA02-S00000.h5"]) {
      copyFileSync(join(good, name), join(dir, name));
    }
    return dir;
  };

  it("skips a file that is not HDF5, says so, and fails when nothing is readable", async () => {
    const dir = copyRun();
    writeFileSync(join(dir, "RAW-R0001-DA03-S00000.h5"), "this is not HDF5\n");
    const run = await openRunDirectory(dir);
    try {
      expect(run.problems).toHaveLength(1);
      expect(run.problems[0]).toMatch(/RAW-R0001-DA03-S00000\.h5: not an HDF5 file/);
      expect(run.key(XGM_CONTROL, "pulseEnergy.photonFlux").entryCount).toBe(40);
    } finally {
      run.close();
    }
    const only = join(tempDir(), "r0002");
    mkdirSync(only);
    writeFileSync(join(only, "RAW-R0002-DA01-S00000.h5"), "");
    await expectError(openRunDirectory(only), "BAD_RUN_FILE", /no readable run file in .*not an HDF5 file/);
  });

  it("refuses an HDF5 file that is not a run file", async () => {
    const dir = join(tempDir(), "r0003");
    mkdirSync(dir);
    const { h5 } = await loadH5();
    const f = new h5.File(join(dir, "notes.h5"), "w");
    f.create_dataset({ name: "x", data: new Float64Array([1, 2]) });
    f.close();
    await expectError(openRunDirectory(dir), "BAD_RUN_FILE", /notes\.h5: not a European XFEL run file \(no INDEX\/trainId\)/);
  });

  it("reports a truncated file, and refuses the sources whose data it held in part", async () => {
    const dir = copyRun();
    const second = join(dir, "RAW-R0001-DA01-S00001.h5");
    truncateSync(second, Math.floor(statSync(second).size * 0.7));
    const run = await openRunDirectory(dir);
    try {
      expect(run.problems).toHaveLength(1);
      expect(run.problems[0]).toMatch(/DA01-S00001\.h5: truncated or incompletely written HDF5 file \(truncated file: eof = \d+/);
      // XGM is in DA01's first sequence too: reading it would silently lose the second half of the run.
      await expectError(() => run.key(XGM_CONTROL, "pulseEnergy.photonFlux"), "BAD_RUN_FILE", /SPB_XTD9_XGM\/DOOCS\/MAIN is incomplete: .*DA01-S00001\.h5: truncated/);
      // The camera (DA02) is unaffected.
      expect(run.key(CAMERA, "data.image.pixels").entryCount).toBe(27);
    } finally {
      run.close();
    }
    // When the damaged file held a source's only data, the source is unknown, and the error says why it may be.
    const camera = join(dir, "RAW-R0001-DA02-S00000.h5");
    truncateSync(camera, Math.floor(statSync(camera).size * 0.6));
    const again = await openRunDirectory(dir);
    try {
      await expectError(() => again.source(CAMERA), "UNKNOWN_SOURCE", /no source .*2 unreadable files were skipped and may hold it/);
    } finally {
      again.close();
    }
  });

  it("skips a directory that is named like a run file", async () => {
    const dir = copyRun();
    mkdirSync(join(dir, "RAW-R0001-DA03-S00000.h5"));
    const run = await openRunDirectory(dir);
    try {
      expect(run.problems).toEqual([]);
      expect(run.files.map((f) => f.name)).not.toContain("RAW-R0001-DA03-S00000.h5");
    } finally {
      run.close();
    }
  });

  it("refuses data compressed with a filter it cannot decode, naming the filter", async () => {
    const dir = join(tempDir(), "r0004");
    mkdirSync(dir);
    const path = join(dir, "RAW-R0004-DA01-S00000.h5");
    await writeMiniRunFile(path);
    const before = await openRunDirectory(dir);
    expect(Array.from(before.key("CAM:output", "data.image").ndarray().data.subarray(16, 19) as Float32Array)).toEqual([16, 17, 18]);
    before.close();
    patchFilterToLzf(path);
    const run = await openRunDirectory(dir);
    try {
      const key = run.key("CAM:output", "data.image");
      await expectError(() => key.ndarray(), "UNSUPPORTED_DATA", /data\/image is compressed with filter 32000 \(lzf\)/);
      await expectError(() => [...key.slices()], "UNSUPPORTED_DATA", /filter 32000/);
    } finally {
      run.close();
    }
  });

  it("refuses an index that points past the end of the data", async () => {
    const dir = join(tempDir(), "r0005");
    mkdirSync(dir);
    await writeMiniRunFile(join(dir, "RAW-R0005-DA01-S00000.h5"), { count: 3 });
    const run = await openRunDirectory(dir);
    try {
      await expectError(() => run.key("CAM:output", "data.image").ndarray(), "BAD_RUN_FILE", /points at rows 3–5 of data\.image, which has 4 rows/);
    } finally {
      run.close();
    }
  });

  it("refuses a format version from the future", async () => {
    const dir = join(tempDir(), "r0006");
    mkdirSync(dir);
    await writeMiniRunFile(join(dir, "RAW-R0006-DA01-S00000.h5"), { version: "2.0" });
    await expectError(openRunDirectory(dir), "BAD_RUN_FILE", /data format version 2\.0 is newer than this reader understands/);
  });
});

describe("unknown names", () => {
  it("suggests close source and key names", async () => {
    const root = tempDir();
    const { rawDir } = await writeSyntheticRun({ root, proposal: 3, run: 2, proc: false });
    const run = await openRunDirectory(rawDir);
    try {
      await expectError(() => run.source("SPB_XTD9_XGM/DOOCS/MAN"), "UNKNOWN_SOURCE", /no source 'SPB_XTD9_XGM\/DOOCS\/MAN' \(did you mean SPB_XTD9_XGM\/DOOCS\/MAIN/);
      await expectError(() => run.key(XGM_CONTROL, "pulseEnergy.photonFlx"), "UNKNOWN_KEY", /did you mean pulseEnergy\.photonFlux/);
      expect(run.trainIds[0]).toBe(firstTrainId(2));
    } finally {
      run.close();
    }
  });
});

describe("detector files damaged or replaced while a run is open", () => {
  it("refuses a module whose second sequence file is truncated", async () => {
    const root = tempDir();
    const { rawDir } = await writeSyntheticRun({ root, proposal: 4, run: 1, proc: false });
    const file = join(rawDir, "RAW-R0001-AGIPD00-S00001.h5");
    truncateSync(file, Math.floor(statSync(file).size * 0.7));
    const run = await openRunDirectory(rawDir);
    try {
      expect(run.problems[0]).toMatch(/AGIPD00-S00001\.h5: truncated/);
      await expectError(() => run.key(detectorSource(0), "image.data"), "BAD_RUN_FILE", /0CH0:xtdf is incomplete/);
      expect(run.key(detectorSource(1), "image.data").entryCount).toBeGreaterThan(0);
    } finally {
      run.close();
    }
  });

  it("never mixes in data from a file replaced since the run was opened", async () => {
    const root = tempDir();
    const { rawDir } = await writeSyntheticRun({ root, proposal: 4, run: 2, proc: false });
    const replace = (module: number) => {
      const target = join(rawDir, `RAW-R0002-AGIPD0${module}-S00000.h5`);
      copyFileSync(join(rawDir, "RAW-R0002-AGIPD02-S00000.h5"), `${target}.new`);
      renameSync(`${target}.new`, target);
    };
    const run = await openRunDirectory(rawDir);
    try {
      // Replaced before anything was read: the data still come from the file that was opened.
      replace(1);
      const a = run.key(detectorSource(1), "image.data").ndarray();
      const t0 = firstTrainId(2);
      expect(a.data[0]).toBe(detectorPixel(t0, 0, 1, 0, 0, 0));
      // Replaced after the data were located in the file: refused rather than read from the new file.
      const source = run.source(detectorSource(0));
      for (const f of source.files) f.directLayout(f.dataset(`INSTRUMENT/${detectorSource(0)}/image/data`)!);
      replace(0);
      await expectError(() => source.key("image.data").ndarray(), "BAD_RUN_FILE", /AGIPD00-S00000\.h5 was replaced or changed while the run was open/);
    } finally {
      run.close();
    }
  });
});
