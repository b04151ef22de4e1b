/**
 * The synthetic run generator, checked by opening its files with h5wasm directly (no EXDF reader): file set, INDEX
 * padding and counts, every value against layout.ts, filters and layout of the big datasets, legacy variants, and
 * `damnit synth` as a user runs it.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Dataset, File, Group } from "h5wasm/node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isDamnitError } from "../src/core/errors.js";
import { loadH5wasm } from "../src/h5/h5wasm.js";
import {
  CAMERA,
  cameraHasTrain,
  cameraPixel,
  correctedGain,
  correctedMask,
  correctedPixel,
  correctedSource,
  da01SplitPosition,
  detectorCellId,
  detectorFrames,
  detectorPixel,
  detectorPulseId,
  detectorSource,
  EMPTY_CAMERA,
  EMPTY_DETECTOR_TRAIN,
  firstTrainId,
  LATE_DEVICE,
  LATE_MODULE_DELAY,
  moduleTrainRange,
  MOTOR,
  MOTOR_CLASS_ID,
  motorPosition,
  motorRoi,
  SYNTH_PRESETS,
  trainTimestampNs,
  UNDULATOR,
  UNDULATOR_ENERGY_KEV,
  XGM_CONTROL,
  XGM_OUTPUT,
  XGM_VECTOR_LENGTH,
  XGM_WAVELENGTH_NM,
  xgmIntensity,
  xgmPhotonFlux,
  xgmState,
} from "../src/synth/layout.js";
import { runDirectory, synthRunFileNames, writeSyntheticRun, type SynthRunOptions, type SynthRunResult } from "../src/synth/write-run.js";
import { damnit, expectOneLineError } from "./helpers/cli.js";
import { tempDir } from "./helpers/tmp.js";

const preset = SYNTH_PRESETS.small;
const RUN = 7;
const T0 = firstTrainId(RUN);
const [, ROWS, COLS] = preset.frameShape;
const [CAM_H, CAM_W] = preset.cameraShape;

type H5 = Awaited<ReturnType<typeof loadH5wasm>>;
let h5: H5;
let root: string;
/** Runs shared by the read-only checks, written once. */
const runs: Record<string, SynthRunResult> = {};

async function makeRun(name: string, opts: Partial<SynthRunOptions> = {}): Promise<void> {
  runs[name] = await writeSyntheticRun({ root: join(root, name), proposal: 1234, run: RUN, ...opts });
}

beforeAll(async () => {
  h5 = await loadH5wasm();
  root = mkdtempSync(join(tmpdir(), "damnit-synth-"));
  await makeRun("default");
  await makeRun("legacy", { format: "0.5", legacyIndex: true, partialSource: true, proc: false });
  await makeRun("v11", { format: "1.1", proc: false });
}, 120_000);

afterAll(() => {
  if (root) rmSync(root, { recursive: true, force: true });
});

function open<T>(path: string, use: (f: File) => T): T {
  const f = new h5.File(path, "r");
  try {
    return use(f);
  } finally {
    f.close();
  }
}

const rawFile = (run: string, aggregator: string, seq = 0) => join(runs[run]!.rawDir, `RAW-R0007-${aggregator}-S0000${seq}.h5`);
const corrFile = (aggregator: string, seq = 0) => join(runs.default!.procDir!, `CORR-R0007-${aggregator}-S0000${seq}.h5`);

function ds(f: File, path: string): Dataset {
  const entity = f.get(path);
  if (!(entity instanceof h5.Dataset)) throw new Error(`${path} is not a dataset`);
  return entity;
}
const nums = (f: File, path: string): number[] => Array.from(ds(f, path).value as ArrayLike<number | bigint>, Number);
const strings = (f: File, path: string): string[] => ds(f, path).value as string[];
const attr = (f: File, path: string, name: string): unknown => (f.get(path) as Group | Dataset).attrs[name]?.value;
const range = (a: number, b: number): number[] => Array.from({ length: b - a }, (_, i) => a + i);
const padTo32 = (values: number[]): number[] => [...values, ...new Array<number>(Math.ceil(values.length / 32) * 32 - values.length).fill(0)];

describe("writeSyntheticRun: files", () => {
  it("writes the small run's file set under the EuXFEL path layout, and nothing else", () => {
    const result = runs.default!;
    expect(result.rawDir).toBe(join(root, "default", "SPB", "202601", "p001234", "raw", "r0007"));
    expect(result.procDir).toBe(join(root, "default", "SPB", "202601", "p001234", "proc", "r0007"));
    expect(result.rawDir).toBe(runDirectory(join(root, "default"), "SPB", "202601", 1234, RUN, "raw"));
    const modules = ["AGIPD00", "AGIPD01", "AGIPD02", "AGIPD03"];
    const expectedRaw = ["DA01-S00000", "DA01-S00001", "DA02-S00000", ...modules.flatMap((m) => [`${m}-S00000`, `${m}-S00001`])].map(
      (s) => `RAW-R0007-${s}.h5`,
    );
    const expectedProc = modules.flatMap((m) => [`CORR-R0007-${m}-S00000.h5`, `CORR-R0007-${m}-S00001.h5`]);
    expect(readdirSync(result.rawDir).sort()).toEqual([...expectedRaw].sort());
    expect(readdirSync(result.procDir!).sort()).toEqual([...expectedProc].sort());
    expect(synthRunFileNames(RUN)).toEqual({ raw: expectedRaw, proc: expectedProc });
    expect(result.files).toHaveLength(19);
    expect(result.files.every(existsSync)).toBe(true);
    expect(result.bytes).toBeGreaterThan(0);
    // The temporary directories were renamed away.
    expect(readdirSync(join(result.rawDir, ".."))).toEqual(["r0007"]);
    expect(readdirSync(join(result.procDir!, ".."))).toEqual(["r0007"]);
    expect(readdirSync(runs.legacy!.rawDir)).toHaveLength(11);
    expect(runs.legacy!.procDir).toBeNull();
  });

  it("calls onFile per file, refuses an existing run, and replaces it with overwrite", async () => {
    const dir = tempDir();
    const seen: string[] = [];
    const first = await writeSyntheticRun({ root: dir, proposal: 1, run: 1, proc: false, onFile: (p) => seen.push(p) });
    expect(seen).toEqual(first.files);
    expect(seen).toHaveLength(11);
    const error = await writeSyntheticRun({ root: dir, proposal: 1, run: 1, proc: false }).catch((e: unknown) => e);
    expect(isDamnitError(error, "BAD_ARGUMENT")).toBe(true);
    expect((error as Error).message).toMatch(/r0001 already exists; use --force to overwrite$/);
    const again = await writeSyntheticRun({ root: dir, proposal: 1, run: 1, proc: false, format: "0.5", overwrite: true });
    expect(readdirSync(join(again.rawDir, ".."))).toEqual(["r0001"]);
    open(again.files[0]!, (f) => expect(f.get("METADATA/dataFormatVersion")).toBeNull());
  });
});

describe("writeSyntheticRun: INDEX", () => {
  it("pads INDEX/trainId with zeros to a multiple of 32, with one index row per train for each source", () => {
    const split = da01SplitPosition(preset);
    expect(split).toBe(22);
    for (const [seq, a, b] of [
      [0, 0, split],
      [1, split, preset.trains],
    ] as const) {
      open(rawFile("default", "DA01", seq), (f) => {
        const tids = range(a, b).map((i) => T0 + i);
        expect(nums(f, "INDEX/trainId")).toEqual(padTo32(tids));
        expect(nums(f, "INDEX/timestamp")).toEqual(padTo32(range(a, b).map((i) => Number(trainTimestampNs(RUN, i)))));
        expect(ds(f, "INDEX/timestamp").value).toBeInstanceOf(BigUint64Array);
        expect(nums(f, "INDEX/flag")).toEqual(padTo32(tids.map(() => 1)));
        expect(nums(f, "INDEX/origin")).toEqual(padTo32(tids.map(() => -1)));
        expect(nums(f, `INDEX/${MOTOR}/first`)).toEqual((range(0, b - a)));
        expect(nums(f, `INDEX/${MOTOR}/count`)).toEqual((tids.map(() => 1)));
        expect(nums(f, `INDEX/${XGM_OUTPUT}/data/count`)).toEqual((tids.map(() => 1)));
      });
    }
  });

  it("indexes camera trains with and without images, the empty camera and detector frames", () => {
    open(rawFile("default", "DA02"), (f) => {
      const counts: number[] = range(0, preset.trains).map((i) => (cameraHasTrain(i) ? 1 : 0));
      const firsts = counts.map((_, i) => counts.slice(0, i).reduce((a, b) => a + b, 0));
      expect(nums(f, `INDEX/${CAMERA}/data/count`)).toEqual((counts));
      expect(nums(f, `INDEX/${CAMERA}/data/first`)).toEqual((firsts));
      expect(nums(f, `INDEX/${EMPTY_CAMERA}/data/count`)).toEqual((counts.map(() => 0)));
      expect(ds(f, `INSTRUMENT/${EMPTY_CAMERA}/data/image/pixels`).shape).toEqual([0, CAM_H, CAM_W]);
      expect(ds(f, `INSTRUMENT/${EMPTY_CAMERA}/data/trainId`).shape).toEqual([0]);
    });
    // The last module starts late and has the train without frames.
    const last = preset.modules - 1;
    const [a, b] = moduleTrainRange(preset, last, 0);
    expect(a).toBe(LATE_MODULE_DELAY);
    open(rawFile("default", `AGIPD0${last}`), (f) => {
      expect(nums(f, "INDEX/trainId")).toEqual(padTo32(range(a, b).map((i) => T0 + i)));
      const counts = range(a, b).map((i) => detectorFrames(preset, i));
      expect(counts[EMPTY_DETECTOR_TRAIN - a]).toBe(0);
      expect(nums(f, `INDEX/${detectorSource(last)}/image/count`)).toEqual((counts));
      expect(nums(f, `INDEX/${detectorSource(last)}/image/first`)).toEqual((counts.map((_, i) => i * preset.framesPerTrain - (i > EMPTY_DETECTOR_TRAIN - a ? preset.framesPerTrain : 0))));
      expect(nums(f, `INDEX/${detectorSource(last)}/header/count`)).toEqual((counts.map(() => 1)));
      expect(nums(f, `INSTRUMENT/${detectorSource(last)}/header/pulseCount`)).toEqual(padTo32(counts));
    });
  });

  it("writes the old first/last/status index with legacyIndex", () => {
    open(rawFile("legacy", "AGIPD00"), (f) => {
      const [a, b] = moduleTrainRange(preset, 0, 0);
      const counts = range(a, b).map((i) => detectorFrames(preset, i));
      const base = `INDEX/${detectorSource(0)}/image`;
      expect(f.get(`${base}/count`)).toBeNull();
      const first = nums(f, `${base}/first`);
      const last = nums(f, `${base}/last`);
      const status = nums(f, `${base}/status`);
      expect(range(0, b - a).map((i) => (status[i] ? last[i]! - first[i]! + 1 : 0))).toEqual(counts);
      expect(status[EMPTY_DETECTOR_TRAIN]).toBe(0);
      expect(nums(f, `INDEX/${detectorSource(0)}/header/status`)).toEqual((counts.map(() => 1)));
    });
  });
});

describe("writeSyntheticRun: values", () => {
  it("control sources: CONTROL per train, RUN at the run's first train, RUN-only classId, attributes", () => {
    const split = da01SplitPosition(preset);
    open(rawFile("default", "DA01", 1), (f) => {
      const tids = range(split, preset.trains).map((i) => T0 + i);
      const flux = ds(f, `CONTROL/${XGM_CONTROL}/pulseEnergy/photonFlux/value`);
      expect(flux.dtype).toBe("<f");
      expect(Array.from(flux.value as Float32Array)).toEqual(tids.map(xgmPhotonFlux));
      expect(nums(f, `CONTROL/${XGM_CONTROL}/pulseEnergy/photonFlux/timestamp`)).toEqual(range(split, preset.trains).map((i) => Number(trainTimestampNs(RUN, i))));
      expect(nums(f, `CONTROL/${XGM_CONTROL}/pulseEnergy/wavelengthUsed/value`)).toEqual(tids.map(() => XGM_WAVELENGTH_NM));
      expect(strings(f, `CONTROL/${XGM_CONTROL}/state/value`)).toEqual(tids.map(xgmState));
      expect(nums(f, `CONTROL/${MOTOR}/actualPosition/value`)).toEqual(tids.map((t) => motorPosition(t, RUN)));
      const roi = ds(f, `CONTROL/${MOTOR}/roi/value`);
      expect(roi.shape).toEqual([tids.length, 2, 3]);
      expect(Array.from(roi.value as Int32Array)).toEqual(tids.flatMap((t) => [0, 1].flatMap((r) => [0, 1, 2].map((c) => motorRoi(t, r, c)))));
      expect(nums(f, `CONTROL/${UNDULATOR}/actualEnergy/value`)).toEqual(tids.map(() => UNDULATOR_ENERGY_KEV));
      // RUN holds the value at the run's first train even in the second sequence.
      expect(nums(f, `RUN/${MOTOR}/actualPosition/value`)).toEqual([motorPosition(T0, RUN)]);
      expect(nums(f, `RUN/${XGM_CONTROL}/pulseEnergy/photonFlux/value`)).toEqual([xgmPhotonFlux(T0)]);
      expect(nums(f, `RUN/${XGM_CONTROL}/pulseEnergy/photonFlux/timestamp`)).toEqual([Number(trainTimestampNs(RUN, 0))]);
      expect(strings(f, `RUN/${MOTOR}/classId/value`)).toEqual([MOTOR_CLASS_ID]);
      expect(f.get(`CONTROL/${MOTOR}/classId`)).toBeNull();
      expect(attr(f, `CONTROL/${MOTOR}/actualPosition`, "unitSymbol")).toBe("m");
      expect(attr(f, `CONTROL/${MOTOR}/actualPosition`, "metricPrefixSymbol")).toBe("m");
      expect(attr(f, `CONTROL/${MOTOR}/actualPosition`, "description")).toBe("Sample X position");
      expect(attr(f, `CONTROL/${MOTOR}/actualPosition`, "alias")).toBe("sample_x");
      expect(attr(f, `CONTROL/${XGM_CONTROL}/pulseEnergy/photonFlux`, "unitSymbol")).toBe("J");
      expect(attr(f, `CONTROL/${XGM_CONTROL}/pulseEnergy/photonFlux`, "metricPrefixSymbol")).toBe("u");
      expect(f.get(`CONTROL/${LATE_DEVICE}`)).toBeNull();
    });
  });

  it("XGM instrument data, padded with zero rows", () => {
    open(rawFile("default", "DA01", 0), (f) => {
      const n = da01SplitPosition(preset);
      const intensity = ds(f, `INSTRUMENT/${XGM_OUTPUT}/data/intensityTD`);
      expect(intensity.shape).toEqual([32, XGM_VECTOR_LENGTH]);
      const expected = range(0, 32).flatMap((i) => range(0, XGM_VECTOR_LENGTH).map((p) => (i < n ? xgmIntensity(T0 + i, p) : 0)));
      expect(Array.from(intensity.value as Float32Array)).toEqual(expected);
      expect(intensity.attrs.unitSymbol?.value).toBe("J");
      expect(intensity.attrs.metricPrefixSymbol?.value).toBe("u");
      expect(nums(f, `INSTRUMENT/${XGM_OUTPUT}/data/trainId`)).toEqual(padTo32(range(0, n).map((i) => T0 + i)));
    });
  });

  it("camera images only for the trains that have one, gzip level 1 in chunks of one image", () => {
    open(rawFile("default", "DA02"), (f) => {
      const withImage = range(0, preset.trains).filter(cameraHasTrain).map((i) => T0 + i);
      const pixels = ds(f, `INSTRUMENT/${CAMERA}/data/image/pixels`);
      expect(pixels.shape).toEqual([Math.ceil(withImage.length / 32) * 32, CAM_H, CAM_W]);
      expect(pixels.dtype).toBe("<H");
      expect(pixels.filters).toEqual([{ id: 1, name: "deflate", cd_values: [1] }]);
      expect(pixels.metadata.chunks).toEqual([1, CAM_H, CAM_W]);
      const values = pixels.value as Uint16Array;
      let mismatches = 0;
      withImage.forEach((tid, e) => {
        for (let y = 0; y < CAM_H; y++) for (let x = 0; x < CAM_W; x++) if (values[(e * CAM_H + y) * CAM_W + x] !== cameraPixel(tid, y, x)) mismatches++;
      });
      expect(mismatches).toBe(0);
      expect(values.subarray(withImage.length * CAM_H * CAM_W).every((v) => v === 0)).toBe(true);
      expect(nums(f, `INSTRUMENT/${CAMERA}/data/trainId`)).toEqual(padTo32(withImage));
    });
  });

  it("raw detector frames: every pixel, cellId, pulseId, trainId; image.data contiguous and uncompressed", () => {
    for (let m = 0; m < preset.modules; m++) {
      for (const seq of [0, 1] as const) {
        open(rawFile("default", `AGIPD0${m}`, seq), (f) => {
          const [a, b] = moduleTrainRange(preset, m, seq);
          const frames = range(a, b).flatMap((i) => range(0, detectorFrames(preset, i)).map((fr) => [T0 + i, fr] as const));
          const src = `INSTRUMENT/${detectorSource(m)}/image`;
          const data = ds(f, `${src}/data`);
          expect(data.shape).toEqual([Math.ceil(frames.length / 32) * 32, 2, ROWS, COLS]);
          expect(data.dtype).toBe("<H");
          expect(data.metadata.chunks).toBeNull();
          expect(data.filters).toEqual([]);
          const values = data.value as Uint16Array;
          let mismatches = 0;
          frames.forEach(([tid, fr], e) => {
            for (let p = 0; p < 2; p++)
              for (let y = 0; y < ROWS; y++)
                for (let x = 0; x < COLS; x++) if (values[((e * 2 + p) * ROWS + y) * COLS + x] !== detectorPixel(tid, fr, m, p, y, x)) mismatches++;
          });
          expect(mismatches).toBe(0);
          expect(values.subarray(frames.length * 2 * ROWS * COLS).every((v) => v === 0)).toBe(true);
          expect(ds(f, `${src}/cellId`).shape).toEqual([Math.ceil(frames.length / 32) * 32, 1]);
          expect(nums(f, `${src}/cellId`)).toEqual(padTo32(frames.map(([, fr]) => detectorCellId(fr))));
          expect(nums(f, `${src}/pulseId`)).toEqual(padTo32(frames.map(([, fr]) => detectorPulseId(fr))));
          expect(nums(f, `${src}/trainId`)).toEqual(padTo32(frames.map(([tid]) => tid)));
        });
      }
    }
  });

  it("corrected frames: data, mask, gain gzip-compressed per frame; legacy name as soft links", () => {
    for (let m = 0; m < preset.modules; m++) {
      for (const seq of [0, 1] as const) {
        open(corrFile(`AGIPD0${m}`, seq), (f) => {
          const [a, b] = moduleTrainRange(preset, m, seq);
          expect(nums(f, "INDEX/trainId")).toEqual(padTo32(range(a, b).map((i) => T0 + i)));
          const frames = range(a, b).flatMap((i) => range(0, detectorFrames(preset, i)).map((fr) => [T0 + i, fr] as const));
          const src = `INSTRUMENT/${correctedSource(m)}/image`;
          const padded = Math.ceil(frames.length / 32) * 32;
          for (const [key, dtype] of [
            ["data", "<f"],
            ["mask", "<I"],
            ["gain", "<B"],
          ]) {
            const d = ds(f, `${src}/${key}`);
            expect(d.dtype).toBe(dtype);
            expect(d.shape).toEqual([padded, ROWS, COLS]);
            expect(d.filters).toEqual([{ id: 1, name: "deflate", cd_values: [1] }]);
            expect(d.metadata.chunks).toEqual([1, ROWS, COLS]);
          }
          const data = ds(f, `${src}/data`).value as Float32Array;
          const mask = ds(f, `${src}/mask`).value as Uint32Array;
          const gain = ds(f, `${src}/gain`).value as Uint8Array;
          let mismatches = 0;
          frames.forEach(([tid, fr], e) => {
            for (let y = 0; y < ROWS; y++)
              for (let x = 0; x < COLS; x++) {
                const i = (e * ROWS + y) * COLS + x;
                if (data[i] !== Math.fround(correctedPixel(tid, fr, m, y, x))) mismatches++;
                if (mask[i] !== correctedMask(y, x, COLS)) mismatches++;
                if (gain[i] !== correctedGain(fr)) mismatches++;
              }
          });
          expect(mismatches).toBe(0);
          expect(ds(f, `${src}/cellId`).shape).toEqual([padded]);
          expect(nums(f, `${src}/cellId`)).toEqual(padTo32(frames.map(([, fr]) => detectorCellId(fr))));
          expect(nums(f, `${src}/pulseId`)).toEqual(padTo32(frames.map(([, fr]) => detectorPulseId(fr))));
          expect(nums(f, `${src}/trainId`)).toEqual(padTo32(frames.map(([tid]) => tid)));
          expect(nums(f, `INDEX/${correctedSource(m)}/image/count`)).toEqual((range(a, b).map((i) => detectorFrames(preset, i))));

          expect(f.get_link(`/INSTRUMENT/${detectorSource(m)}`)).toBe(`/INSTRUMENT/${correctedSource(m)}`);
          expect(f.get_link(`/INDEX/${detectorSource(m)}`)).toBe(`/INDEX/${correctedSource(m)}`);
          expect(nums(f, `INDEX/${detectorSource(m)}/image/count`)).toEqual(nums(f, `INDEX/${correctedSource(m)}/image/count`));
          const sources = strings(f, "METADATA/dataSources/dataSourceId").filter(Boolean);
          expect(sources).toEqual([`INSTRUMENT/${correctedSource(m)}/image`, `INSTRUMENT/${detectorSource(m)}/image`]);
        });
      }
    }
  });

  it("puts the partial source only in DA01-S00001", () => {
    open(rawFile("legacy", "DA01", 0), (f) => {
      expect(f.get(`CONTROL/${LATE_DEVICE}`)).toBeNull();
      expect(strings(f, "METADATA/dataSourceId")).not.toContain(`CONTROL/${LATE_DEVICE}`);
    });
    open(rawFile("legacy", "DA01", 1), (f) => {
      const split = da01SplitPosition(preset);
      expect(nums(f, `CONTROL/${LATE_DEVICE}/actualPosition/value`)).toEqual(range(split, preset.trains).map((i) => motorPosition(T0 + i, RUN) + 100));
      expect(strings(f, "METADATA/dataSourceId")).toContain(`CONTROL/${LATE_DEVICE}`);
    });
  });
});

describe("writeSyntheticRun: METADATA and format versions", () => {
  it("format 1.2: source lists under dataSources padded with empty strings, version, dates, numbers", () => {
    open(rawFile("default", "DA01", 1), (f) => {
      const ids = strings(f, "METADATA/dataSources/dataSourceId");
      const listed = [`CONTROL/${XGM_CONTROL}`, `CONTROL/${MOTOR}`, `CONTROL/${UNDULATOR}`, `INSTRUMENT/${XGM_OUTPUT}/data`];
      expect(ids.slice(0, listed.length)).toEqual(listed);
      expect(ids.length).toBeGreaterThan(listed.length);
      expect(ids.slice(listed.length).every((s) => s === "")).toBe(true);
      const roots = strings(f, "METADATA/dataSources/root");
      const devices = strings(f, "METADATA/dataSources/deviceId");
      expect(ids.map((id, i) => (id ? `${roots[i]}/${devices[i]}` : ""))).toEqual(ids);
      expect(strings(f, "METADATA/dataFormatVersion")).toEqual(["1.2"]);
      expect(strings(f, "METADATA/creationDate")).toEqual(["20260115T150000Z"]);
      expect(strings(f, "METADATA/updateDate")[0]).toMatch(/^\d{8}T\d{6}Z$/);
      expect(strings(f, "METADATA/daqLibrary")).toEqual(["1.9.0"]);
      expect(strings(f, "METADATA/karaboFramework")).toEqual(["2.19.0"]);
      expect(ds(f, "METADATA/proposalNumber").dtype).toBe("<I");
      expect(nums(f, "METADATA/proposalNumber")).toEqual([1234]);
      expect(nums(f, "METADATA/runNumber")).toEqual([RUN]);
      expect(nums(f, "METADATA/sequenceNumber")).toEqual([1]);
      expect(f.get("METADATA/dataSourceId")).toBeNull();
    });
    open(rawFile("default", "DA02"), (f) =>
      expect(strings(f, "METADATA/dataSources/dataSourceId").filter(Boolean)).toEqual([`INSTRUMENT/${CAMERA}/data`, `INSTRUMENT/${EMPTY_CAMERA}/data`]),
    );
    open(rawFile("default", "AGIPD01"), (f) =>
      expect(strings(f, "METADATA/dataSources/dataSourceId").filter(Boolean)).toEqual([`INSTRUMENT/${detectorSource(1)}/header`, `INSTRUMENT/${detectorSource(1)}/image`]),
    );
  });

  it("format 0.5: source lists directly in METADATA, no version or dates, INDEX with trainId only", () => {
    open(rawFile("legacy", "DA01", 0), (f) => {
      expect(strings(f, "METADATA/dataSourceId").filter(Boolean)).toEqual([`CONTROL/${XGM_CONTROL}`, `CONTROL/${MOTOR}`, `CONTROL/${UNDULATOR}`, `INSTRUMENT/${XGM_OUTPUT}/data`]);
      expect(strings(f, "METADATA/root").filter(Boolean)).toEqual(["CONTROL", "CONTROL", "CONTROL", "INSTRUMENT"]);
      expect(strings(f, "METADATA/deviceId")[3]).toBe(`${XGM_OUTPUT}/data`);
      for (const missing of ["METADATA/dataSources", "METADATA/dataFormatVersion", "METADATA/creationDate", "METADATA/runNumber", "INDEX/timestamp", "INDEX/flag", "INDEX/origin"]) {
        expect(f.get(missing), missing).toBeNull();
      }
      expect(nums(f, "INDEX/trainId")).toEqual(padTo32(range(0, da01SplitPosition(preset)).map((i) => T0 + i)));
    });
  });

  it("format 1.1: flag 0 marks good trains, no origin", () => {
    open(rawFile("v11", "DA02"), (f) => {
      expect(strings(f, "METADATA/dataFormatVersion")).toEqual(["1.1"]);
      expect(nums(f, "INDEX/flag").every((v) => v === 0)).toBe(true);
      expect(f.get("INDEX/origin")).toBeNull();
      expect(nums(f, "INDEX/timestamp")[0]).toBe(Number(trainTimestampNs(RUN, 0)));
    });
  });
});

describe("damnit synth", () => {
  it("writes runs, refuses to overwrite them without --force, and replaces them with it", () => {
    const dir = tempDir();
    const out = damnit(["synth", dir, "--proposal", "900", "--runs", "2", "--first-run", "3", "--instrument", "FXE", "--cycle", "202501"]);
    expect(out.stderr).toBe("");
    expect(out.status).toBe(0);
    const lines = out.stdout.trimEnd().split("\n");
    expect(lines).toHaveLength(3);
    for (const [i, run] of [3, 4].entries()) {
      const raw = runDirectory(dir, "FXE", "202501", 900, run, "raw");
      const proc = runDirectory(dir, "FXE", "202501", 900, run, "proc");
      expect(lines[i]).toBe(`Run ${run}: raw ${raw}, proc ${proc}`);
      expect(readdirSync(raw)).toHaveLength(11);
      expect(readdirSync(proc)).toHaveLength(8);
    }
    expect(lines[2]).toMatch(/^Wrote 38 files, \d+\.\d MB in \d+\.\d s$/);

    const refused = damnit(["synth", dir, "--proposal", "900", "--runs", "1", "--first-run", "4", "--instrument", "FXE", "--cycle", "202501"]);
    expect(expectOneLineError(refused)).toBe(`damnit: run directory ${runDirectory(dir, "FXE", "202501", 900, 4, "raw")} already exists; use --force to overwrite`);

    const forced = damnit(["synth", dir, "--proposal", "900", "--runs", "1", "--first-run", "4", "--instrument", "FXE", "--cycle", "202501", "--force", "--no-proc", "--format", "1.0"]);
    expect(forced.status).toBe(0);
    expect(forced.stdout).toMatch(/^Run 4: raw \S+\/raw\/r0004\nWrote 11 files/);
    open(join(runDirectory(dir, "FXE", "202501", 900, 4, "raw"), "RAW-R0004-DA01-S00000.h5"), (f) =>
      expect(strings(f, "METADATA/dataFormatVersion")).toEqual(["1.0"]),
    );
    expect(readdirSync(join(dir, "FXE", "202501", "p000900", "raw")).sort()).toEqual(["r0003", "r0004"]);
  });

  it("rejects bad numbers with one line", () => {
    const dir = tempDir();
    expect(expectOneLineError(damnit(["synth", dir, "--proposal", "1.5", "--runs", "1"]))).toBe("damnit: --proposal must be a whole number from 0 to 999999, not 1.5");
    expect(expectOneLineError(damnit(["synth", dir, "--proposal", "1", "--runs", "0"]))).toBe("damnit: --runs must be a whole number from 1 to 10000, not 0");
    expect(readdirSync(dir)).toEqual([]);
  });
});
