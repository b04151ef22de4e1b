/**
 * The run reader against runs written by the synthetic generator: exact values, counts and train alignment for every
 * edge case of the format (two sequences, late module, empty train, skipping camera, vlen strings, padding, old index
 * and old format, soft-linked legacy names, a source in some sequences only).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type DataCollection, openRun, openRunDirectory } from "../src/exdf/index.js";
import {
  CAMERA,
  EMPTY_CAMERA,
  EMPTY_DETECTOR_TRAIN,
  LATE_DEVICE,
  LATE_MODULE_DELAY,
  MOTOR,
  MOTOR_CLASS_ID,
  SYNTH_PRESETS,
  type SynthFormat,
  UNDULATOR,
  UNDULATOR_ENERGY_KEV,
  XGM_CONTROL,
  XGM_OUTPUT,
  XGM_PULSES,
  XGM_VECTOR_LENGTH,
  cameraHasTrain,
  da01SplitPosition,
  cameraPixel,
  correctedPixel,
  correctedSource,
  detectorPixel,
  detectorSource,
  firstTrainId,
  motorPosition,
  motorRoi,
  trainTimestampNs,
  xgmIntensity,
  xgmPhotonFlux,
  xgmState,
} from "../src/synth/layout.js";
import { writeSyntheticRun } from "../src/synth/write-run.js";

const P = 1234;
const small = SYNTH_PRESETS.small;
const N = small.trains;
const [, ROWS, COLS] = small.frameShape;
const [CAM_H, CAM_W] = small.cameraShape;
const f32 = (x: number) => Math.fround(x);

let root: string;
const dirs: Record<string, string> = {};

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), "damnit-exdf-"));
  const raw = await writeSyntheticRun({ root, proposal: P, run: 1, partialSource: true });
  dirs.raw = raw.rawDir;
  dirs.proc = raw.procDir!;
  for (const format of ["0.5", "1.0", "1.1", "1.3"] as SynthFormat[]) {
    dirs[format] = (await writeSyntheticRun({ root, proposal: P, run: 10 + ["0.5", "1.0", "1.1", "1.3"].indexOf(format), format, proc: false })).rawDir;
  }
  dirs.legacy = (await writeSyntheticRun({ root, proposal: P, run: 20, format: "0.5", legacyIndex: true, proc: false })).rawDir;
}, 120_000);

afterAll(() => rmSync(root, { recursive: true, force: true }));

async function withRun<T>(dir: string | string[], fn: (run: DataCollection) => T | Promise<T>): Promise<T> {
  const run = await openRunDirectory(dir);
  try {
    return await fn(run);
  } finally {
    run.close();
  }
}

const tids = (run: number, from = 0, to = N) => Array.from({ length: to - from }, (_, i) => firstTrainId(run) + from + i);

describe("a raw run (format 1.2)", () => {
  it("has the union of trains over all files and their timestamps", async () => {
    await withRun(dirs.raw!, (run) => {
      expect(run.trainIds).toEqual(tids(1));
      expect(run.trainTimestamps()).toEqual(tids(1).map((_, i) => trainTimestampNs(1, i)));
      expect(run.problems).toEqual([]);
    });
  });

  it("lists control and instrument sources", async () => {
    await withRun(dirs.raw!, (run) => {
      expect(run.controlSources).toEqual([LATE_DEVICE, MOTOR, UNDULATOR, XGM_CONTROL].sort());
      expect(run.instrumentSources).toEqual([CAMERA, EMPTY_CAMERA, XGM_OUTPUT, ...[0, 1, 2, 3].map(detectorSource)].sort());
      expect(run.source(detectorSource(0)).indexGroups.sort()).toEqual(["header", "image"]);
    });
  });

  it("lists keys with and without timestamps, and resolves Karabo names", async () => {
    await withRun(dirs.raw!, (run) => {
      const motor = run.source(MOTOR);
      expect(motor.keys({ incTimestamps: false })).toEqual(["actualPosition", "roi"]);
      expect(motor.keys()).toEqual(["actualPosition.timestamp", "actualPosition.value", "roi.timestamp", "roi.value"]);
      expect(motor.key("actualPosition").key).toBe("actualPosition.value");
      expect(run.source(XGM_OUTPUT).keys()).toEqual(["data.intensityTD", "data.trainId"]);
    });
  });

  it("reads a control key over two sequence files, one value per train", async () => {
    await withRun(dirs.raw!, (run) => {
      const flux = run.key(XGM_CONTROL, "pulseEnergy.photonFlux").ndarray();
      expect(flux.dtype).toBe("float32");
      expect(flux.shape).toEqual([N]);
      expect(Array.from(flux.data as Float32Array)).toEqual(tids(1).map((t) => f32(xgmPhotonFlux(t))));
      expect(Array.from(flux.entryTrainIds)).toEqual(tids(1));
      expect(Array.from(flux.counts)).toEqual(Array(N).fill(1));
      const files = run.source(XGM_CONTROL).files.map((f) => f.name);
      expect(files).toEqual(["RAW-R0001-DA01-S00000.h5", "RAW-R0001-DA01-S00001.h5"]);
      const position = run.key(MOTOR, "actualPosition").ndarray();
      expect(Array.from(position.data as Float32Array)).toEqual(tids(1).map((t) => f32(motorPosition(t, 1))));
    });
  });

  it("reads a 2-D control key and vlen strings", async () => {
    await withRun(dirs.raw!, (run) => {
      const roi = run.key(MOTOR, "roi").ndarray();
      expect(roi.dtype).toBe("int32");
      expect(roi.shape).toEqual([N, 2, 3]);
      const t = firstTrainId(1) + 17;
      expect(Array.from((roi.data as Int32Array).subarray(17 * 6, 18 * 6))).toEqual([0, 1, 2, 3, 4, 5].map((k) => motorRoi(t, Math.floor(k / 3), k % 3)));
      const state = run.key(XGM_CONTROL, "state");
      expect(state.type).toBe("string");
      expect(state.values()).toEqual(tids(1).map(xgmState));
    });
  });

  it("reads run values, including RUN-only keys, and units from the parent group", async () => {
    await withRun(dirs.raw!, (run) => {
      const motor = run.source(MOTOR);
      expect(motor.runValue("classId")).toBe(MOTOR_CLASS_ID);
      expect(motor.runValue("actualPosition")).toBe(f32(motorPosition(firstTrainId(1), 1)));
      expect(run.source(UNDULATOR).runValue("actualEnergy.value")).toBe(UNDULATOR_ENERGY_KEV);
      expect(motor.key("actualPosition").units()).toBe("mm");
      expect(motor.key("actualPosition").attributes()).toMatchObject({ description: "Sample X position", alias: "sample_x" });
      expect(run.key(XGM_OUTPUT, "data.intensityTD").units()).toBe("uJ");
      expect(() => motor.runValue("nonsense")).toThrow(/no run value 'nonsense'/);
    });
  });

  it("reads pulse-resolved instrument data without the padding rows", async () => {
    await withRun(dirs.raw!, (run) => {
      const xgm = run.key(XGM_OUTPUT, "data.intensityTD");
      // The datasets are padded beyond the file's trains.
      expect(xgm.info.shape[0]).toBeGreaterThan(run.source(XGM_OUTPUT).files[0]!.trainIds.length);
      const a = xgm.ndarray();
      expect(a.shape).toEqual([N, XGM_VECTOR_LENGTH]);
      const data = a.data as Float32Array;
      for (const [i, t] of tids(1).entries()) {
        expect(data[i * XGM_VECTOR_LENGTH + 3]).toBe(f32(xgmIntensity(t, 3)));
        expect(data[i * XGM_VECTOR_LENGTH + XGM_PULSES]).toBe(0);
      }
    });
  });

  it("aligns a camera that skips trains, with NaN or a mask for the missing ones", async () => {
    await withRun(dirs.raw!, (run) => {
      const camera = run.key(CAMERA, "data.image.pixels");
      const present = tids(1).map((_, i) => cameraHasTrain(i));
      expect(Array.from(camera.dataCounts())).toEqual(present.map((p) => (p ? 1 : 0)));
      const a = camera.ndarray();
      expect(a.shape).toEqual([present.filter(Boolean).length, CAM_H, CAM_W]);
      expect(Array.from(a.entryTrainIds)).toEqual(tids(1).filter((_, i) => present[i]));
      const perTrain = camera.perTrain();
      expect(perTrain.dtype).toBe("float64");
      expect(perTrain.shape).toEqual([N, CAM_H, CAM_W]);
      const size = CAM_H * CAM_W;
      for (const [i, t] of tids(1).entries()) {
        const v = perTrain.data[i * size + 5 * CAM_W + 7] as number;
        if (present[i]) expect(v).toBe(cameraPixel(t, 5, 7));
        else expect(v).toBeNaN();
      }
      const masked = camera.perTrain({ missing: "mask" });
      expect(masked.dtype).toBe("uint16");
      expect(Array.from(masked.present)).toEqual(present.map((p) => (p ? 1 : 0)));
      // Aligned to other train IDs (e.g. another source's): missing ones outside the run too.
      const some = camera.perTrain({ trainIds: [firstTrainId(1) + 1, firstTrainId(1) + 2, 42] });
      expect(Array.from(some.data.subarray(0, 1) as Float64Array)).toEqual([cameraPixel(firstTrainId(1) + 1, 0, 0)]);
      expect(some.data[size]).toBeNaN();
      expect(some.data[2 * size]).toBeNaN();
    });
  });

  it("returns an empty array of the right type for a source that recorded nothing", async () => {
    await withRun(dirs.raw!, (run) => {
      const empty = run.key(EMPTY_CAMERA, "data.image.pixels");
      const a = empty.ndarray();
      expect(a.dtype).toBe("uint16");
      expect(a.shape).toEqual([0, CAM_H, CAM_W]);
      expect(a.data).toBeInstanceOf(Uint16Array);
      expect(Array.from(empty.dataCounts())).toEqual(Array(N).fill(0));
      expect(empty.perTrain().present.every((p) => p === 0)).toBe(true);
    });
  });

  it("reads detector frames: several per train, a train with none, a module that starts late", async () => {
    await withRun(dirs.raw!, (run) => {
      const frames = small.framesPerTrain;
      const m0 = run.key(detectorSource(0), "image.data");
      const counts = Array.from(m0.dataCounts());
      expect(counts).toEqual(tids(1).map((_, i) => (i === EMPTY_DETECTOR_TRAIN ? 0 : frames)));
      expect(m0.shape).toEqual([(N - 1) * frames, 2, ROWS, COLS]);
      const late = run.key(detectorSource(3), "image.data");
      expect(late.trainIds).toEqual(tids(1, LATE_MODULE_DELAY));
      expect(late.entryCount).toBe((N - LATE_MODULE_DELAY - 1) * frames);
      const a = late.ndarray();
      const frameSize = 2 * ROWS * COLS;
      // Every entry: the right train, frame number within the train, and pixels of both planes.
      let e = 0;
      for (const [i, t] of tids(1).entries()) {
        if (i < LATE_MODULE_DELAY || i === EMPTY_DETECTOR_TRAIN) continue;
        for (let f = 0; f < frames; f++, e++) {
          expect(a.entryTrainIds[e]).toBe(t);
          const base = e * frameSize;
          expect(a.data[base + 3 * COLS + 5]).toBe(detectorPixel(t, f, 3, 0, 3, 5));
          expect(a.data[base + ROWS * COLS + 2 * COLS + 1]).toBe(detectorPixel(t, f, 3, 1, 2, 1));
        }
      }
      expect(e).toBe(a.shape[0]);
      const cells = run.key(detectorSource(1), "image.cellId").ndarray();
      expect(cells.shape).toEqual([(N - 1) * frames, 1]);
      expect(Array.from(cells.data.subarray(0, frames) as Uint16Array)).toEqual(Array.from({ length: frames }, (_, f) => f));
      expect(() => m0.perTrain()).toThrow(/up to 4 entries per train/);
    });
  });

  it("reads in bounded slices that add up to the whole, with or without copying", async () => {
    await withRun(dirs.raw!, (run) => {
      const key = run.key(detectorSource(2), "image.data");
      const whole = key.ndarray();
      const frameBytes = 2 * ROWS * COLS * 2;
      const parts = [...key.slices({ maxBytes: 3 * frameBytes })];
      expect(Math.max(...parts.map((p) => p.shape[0]!))).toBeLessThanOrEqual(3);
      const joined = new Uint16Array(whole.data.length);
      for (const p of parts) joined.set(p.data as Uint16Array, p.firstEntry * (frameBytes / 2));
      expect(joined).toEqual(whole.data);
      let sum = 0;
      let entries = 0;
      for (const p of key.slices({ maxBytes: 5 * frameBytes, borrow: true })) {
        for (const v of p.data as Uint16Array) sum += v;
        entries += p.shape[0]!;
      }
      expect(entries).toBe(whole.shape[0]);
      expect(sum).toBe((whole.data as Uint16Array).reduce((s, v) => s + v, 0));
    });
  });

  it("reads a region of interest of each entry", async () => {
    await withRun(dirs.raw!, (run) => {
      const roi = run.key(detectorSource(0), "image.data").ndarray({ roi: [[0, 1], [2, 4], [5, 8]] });
      expect(roi.shape).toEqual([(N - 1) * small.framesPerTrain, 1, 2, 3]);
      const t = firstTrainId(1);
      expect(Array.from(roi.data.subarray(0, 6) as Uint16Array)).toEqual([2, 3].flatMap((y) => [5, 6, 7].map((x) => detectorPixel(t, 0, 0, 0, y, x))));
      expect(() => run.key(detectorSource(0), "image.data").ndarray({ roi: [[0, 3]] })).toThrow(/outside dimension 1/);
    });
  });

  it("selects trains by ID range, position, list, and where sources have data", async () => {
    await withRun(dirs.raw!, (run) => {
      const t0 = firstTrainId(1);
      expect(run.selectTrains({ idRange: [t0 + 5, t0 + 9] }).trainIds).toEqual([t0 + 5, t0 + 6, t0 + 7, t0 + 8]);
      expect(run.selectTrains({ index: [-3, null] }).trainIds).toEqual(tids(1, N - 3));
      expect(run.selectTrains({ ids: [t0 + 7, 1, t0 + 2] }).trainIds).toEqual([t0 + 2, t0 + 7]);
      const sel = run.selectTrains({ idRange: [t0 + 10, t0 + 20] });
      const flux = sel.key(XGM_CONTROL, "pulseEnergy.photonFlux").ndarray();
      expect(Array.from(flux.entryTrainIds)).toEqual(tids(1, 10, 20));
      const both = run.selectTrainsWithData([CAMERA, detectorSource(3)]);
      expect(both.trainIds).toEqual(
        tids(1).filter((_, i) => cameraHasTrain(i) && i >= LATE_MODULE_DELAY && i !== EMPTY_DETECTOR_TRAIN),
      );
      const frames = both.key(detectorSource(3), "image.data");
      expect(frames.entryCount).toBe(both.trainIds.length * small.framesPerTrain);
    });
  });

  it("handles a source present in some sequence files only", async () => {
    await withRun(dirs.raw!, (run) => {
      const late = run.key(LATE_DEVICE, "actualPosition");
      const split = da01SplitPosition(small);
      expect(late.trainIds).toEqual(tids(1, split));
      const perTrain = late.perTrain();
      expect(Array.from(perTrain.present)).toEqual(tids(1).map((_, i) => (i >= split ? 1 : 0)));
      expect(perTrain.data[split]).toBe(f32(motorPosition(firstTrainId(1) + split, 1) + 100));
      expect(perTrain.data[0]).toBeNaN();
    });
  });
});

describe("proc data and combined raw+proc", () => {
  it("reads gzip-compressed corrected frames, also through the soft-linked legacy name", async () => {
    await withRun(dirs.proc!, (run) => {
      const corr = run.key(correctedSource(0), "image.data");
      expect(corr.info.filters.map((f) => f.name)).toContain("deflate");
      const a = corr.ndarray();
      expect(a.dtype).toBe("float32");
      const t = firstTrainId(1) + 1;
      const frameSize = ROWS * COLS;
      const e = small.framesPerTrain + 2; // train position 1, frame 2
      expect(a.entryTrainIds[e]).toBe(t);
      expect(a.data[e * frameSize + 4 * COLS + 9]).toBe(correctedPixel(t, 2, 0, 4, 9));
      const legacy = run.key(detectorSource(0), "image.data").ndarray();
      expect(legacy.data).toEqual(a.data);
    });
  });

  it("prefers proc where both have a source, when opened with data 'all'", async () => {
    const run = await openRun(P, 1, { data: "all", root });
    try {
      expect(run.key(detectorSource(0), "image.data").type).toBe("float32");
      expect(run.key(XGM_CONTROL, "pulseEnergy.photonFlux").entryCount).toBe(N);
      expect(run.directories.length).toBe(2);
    } finally {
      run.close();
    }
    const raw = await openRun(P, 1, { data: "raw", root });
    try {
      expect(raw.key(detectorSource(0), "image.data").type).toBe("uint16");
    } finally {
      raw.close();
    }
  });
});

describe("older and newer formats", () => {
  for (const format of ["0.5", "1.0", "1.1", "1.3"] as const) {
    it(`format ${format} reads the same values`, async () => {
      const runNumber = 10 + ["0.5", "1.0", "1.1", "1.3"].indexOf(format);
      await withRun(dirs[format]!, (run) => {
        expect(run.metadata().formatVersions).toEqual([format]);
        expect(run.trainIds).toEqual(tids(runNumber));
        const ts = run.trainTimestamps();
        if (format === "0.5") expect(ts.every((t) => t === null)).toBe(true);
        else expect(ts[3]).toBe(trainTimestampNs(runNumber, 3));
        const flux = run.key(XGM_CONTROL, "pulseEnergy.photonFlux").ndarray();
        expect(Array.from(flux.data as Float32Array)).toEqual(tids(runNumber).map((t) => f32(xgmPhotonFlux(t))));
        expect(run.key(XGM_CONTROL, "state").values()).toEqual(tids(runNumber).map(xgmState));
        const counts = Array.from(run.key(detectorSource(0), "image.data").dataCounts());
        expect(counts).toEqual(tids(runNumber).map((_, i) => (i === EMPTY_DETECTOR_TRAIN ? 0 : small.framesPerTrain)));
      });
    });
  }

  it("reads the old first/last/status index", async () => {
    await withRun(dirs.legacy!, (run) => {
      const key = run.key(detectorSource(3), "image.data");
      expect(Array.from(key.dataCounts())).toEqual(
        tids(20, LATE_MODULE_DELAY).map((_, j) => (j + LATE_MODULE_DELAY === EMPTY_DETECTOR_TRAIN ? 0 : small.framesPerTrain)),
      );
      const a = key.ndarray();
      const t = firstTrainId(20) + N - 1;
      const last = a.shape[0]! - 1;
      expect(a.entryTrainIds[last]).toBe(t);
      expect(a.data[last * 2 * ROWS * COLS]).toBe(detectorPixel(t, small.framesPerTrain - 1, 3, 0, 0, 0));
    });
  });
});

describe("direct reads of uncompressed contiguous data", () => {
  it("reads raw detector data straight from the file, identical to libhdf5's own read", async () => {
    await withRun(dirs.raw!, (run) => {
      const source = run.source(detectorSource(1));
      const path = `INSTRUMENT/${detectorSource(1)}/image/data`;
      for (const f of source.files) expect(f.directLayout(f.dataset(path)!)).not.toBeNull();
      // The gzip-compressed camera and small datasets stay on libhdf5's path.
      const camera = run.source(CAMERA).files[0]!;
      expect(camera.directLayout(camera.dataset(`INSTRUMENT/${CAMERA}/data/image/pixels`)!)).toBeNull();
      const key = source.key("image.data");
      const direct = key.ndarray();
      // A region of interest covering everything forces the libhdf5 path.
      const viaLibrary = key.ndarray({ roi: [[0, 2], [0, ROWS], [0, COLS]] });
      expect(viaLibrary.shape).toEqual(direct.shape);
      expect(Buffer.compare(Buffer.from(direct.data.buffer), Buffer.from(viaLibrary.data.buffer))).toBe(0);
      const sliced = new Uint16Array(direct.data.length);
      for (const s of key.slices({ maxBytes: 100_000, borrow: true })) sliced.set(s.data as Uint16Array, s.firstEntry * 2 * ROWS * COLS);
      expect(sliced).toEqual(direct.data);
    });
  });
});
