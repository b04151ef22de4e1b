/**
 * What the example context (contexts/spb-example.ts) must produce for a synthetic `small` run, computed from the
 * synthetic data's defining functions (src/synth/layout.ts), not from the code under test.
 */
import {
  cameraHasTrain,
  cameraPixel,
  correctedPixel,
  detectorFrames,
  firstTrainId,
  motorPosition,
  SYNTH_PRESETS,
  trainTimestampNs,
  xgmIntensity,
  xgmPhotonFlux,
} from "../../src/synth/layout.js";

const preset = SYNTH_PRESETS.small;
const f32 = (x: number) => Math.fround(x);

export interface ExpectedRun {
  trainIds: number[];
  startTime: number;
  nTrains: number;
  xgmPerTrain: number[];
  xgmMean: number;
  photonFlux: number;
  sampleX: number;
  sampleXMaxDiff: number;
  cameraTotals: number[];
  cameraTotalMean: number;
  cameraImage: Float64Array;
  /** the "all"-data mean frame of module 0 (corrected frames, since proc is preferred) */
  meanFrame: Float64Array;
  correctedMean: number;
}

const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

export function expectedRun(run: number): ExpectedRun {
  const trainIds = Array.from({ length: preset.trains }, (_, i) => firstTrainId(run) + i);
  const xgmPerTrain = trainIds.map((tid) => mean(Array.from({ length: 30 }, (_, p) => f32(xgmIntensity(tid, p)))));
  const positions = trainIds.map((tid) => f32(motorPosition(tid, run)));
  const [rows, cols] = preset.cameraShape;
  const cameraTotals: number[] = [];
  const cameraImage = new Float64Array(rows * cols);
  let images = 0;
  trainIds.forEach((tid, i) => {
    if (!cameraHasTrain(i)) return;
    let sum = 0;
    for (let y = 0; y < rows; y++) for (let x = 0; x < cols; x++) {
      sum += cameraPixel(tid, y, x);
      cameraImage[y * cols + x]! += cameraPixel(tid, y, x);
    }
    cameraTotals.push(sum);
    images++;
  });
  for (let i = 0; i < cameraImage.length; i++) cameraImage[i]! /= images;

  const [, fRows, fCols] = preset.frameShape;
  const meanFrame = new Float64Array(fRows * fCols);
  let frames = 0;
  trainIds.forEach((tid, i) => {
    for (let f = 0; f < detectorFrames(preset, i); f++) {
      for (let y = 0; y < fRows; y++) for (let x = 0; x < fCols; x++) meanFrame[y * fCols + x]! += f32(correctedPixel(tid, f, 0, y, x));
      frames++;
    }
  });
  const correctedMean = meanFrame.reduce((a, b) => a + b, 0) / (frames * fRows * fCols);
  for (let i = 0; i < meanFrame.length; i++) meanFrame[i]! /= frames;
  return {
    trainIds,
    startTime: Number(trainTimestampNs(run, 0)) / 1e9,
    nTrains: trainIds.length,
    xgmPerTrain,
    xgmMean: mean(xgmPerTrain),
    photonFlux: mean(trainIds.map((tid) => f32(xgmPhotonFlux(tid)))),
    sampleX: mean(positions),
    sampleXMaxDiff: Math.max(...positions) - Math.min(...positions),
    cameraTotals,
    cameraTotalMean: mean(cameraTotals),
    cameraImage,
    meanFrame,
    correctedMean,
  };
}

export function maxMinusMin(values: ArrayLike<number>): number {
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (Number.isNaN(v)) continue;
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  return hi - lo;
}
