/**
 * An example context file for an SPB/SFX-like beamtime (it matches the synthetic runs of `damnit synth` and
 * `damnit demo`). Copy it to your database directory as `context.ts` and adapt the source names.
 *
 * Each exported `Variable` is a column of the run table. Its function gets the run's data (`run`, see
 * `damnit/data`) and the values of what it declares in `deps`.
 */
import { Cell, integer, labelled, Skip, Variable } from "damnit/context";

const XGM = "SPB_XTD9_XGM/DOOCS/MAIN";
const XGM_OUTPUT = "SPB_XTD9_XGM/DOOCS/MAIN:output";
const SAMPLE_X = "SPB_IRU_MOTORS/MOTOR/SAMPLE_X";
const CAMERA = "SPB_EXP_ZYLA/CAM/1:output";
const AGIPD_MODULE_0 = "SPB_DET_AGIPD1M-1/DET/0CH0:xtdf";
const CORRECTED_MODULE_0 = "SPB_DET_AGIPD1M-1/CORR/0CH0:output";
/** Pulses per train the XGM measured with beam (the rest of its 120 slots are empty). */
const XGM_PULSES = 30;

function mean(values: ArrayLike<number>): number {
  let sum = 0;
  let n = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (!Number.isNaN(v)) {
      sum += v;
      n++;
    }
  }
  return n === 0 ? NaN : sum / n;
}

/** Number of trains recorded in the run (a count: stored as an integer, as a plain number would be float64) */
export const n_trains = Variable({ title: "Trains", tags: ["run"] }, (run) => integer(run.trainIds.length));

/** Pulse energy of every pulse of every train (used by the XGM variables, not stored) */
export const xgm_pulses = Variable({ transient: true }, (run) => run.key(XGM_OUTPUT, "data.intensityTD").perTrain());

/** Mean pulse energy per train, from the XGM's pulse-resolved channel */
export const xgm_intensity = Variable(
  { title: "XGM/intensity", units: "µJ", tags: ["xgm"], deps: { pulses: "var#xgm_pulses" } },
  (_run, { pulses }) => {
    const trains = pulses.shape[0] as number;
    const perTrain = new Float64Array(trains);
    for (let t = 0; t < trains; t++) {
      perTrain[t] = mean(pulses.data.subarray(t * pulses.shape[1], t * pulses.shape[1] + XGM_PULSES));
    }
    return labelled(perTrain, { dims: ["trainId"], coords: { trainId: Float64Array.from(pulses.trainIds) } });
  },
);

/** Mean pulse energy of the run */
export const xgm_mean = Variable(
  { title: "XGM/mean", units: "µJ", tags: ["xgm"], deps: { intensity: xgm_intensity } },
  (_run, { intensity }) => mean(intensity.data),
);

/** Photon flux reported by the XGM's control device, averaged over the run */
export const photon_flux = Variable({ title: "XGM/photon flux", units: "µJ", summary: "mean", tags: ["xgm"] }, (run) =>
  run.key(XGM, "pulseEnergy.photonFlux").perTrain(),
);

/** Sample position during the run (the cell shows its mean) */
export const sample_x = Variable({ title: "Sample/x", units: "mm", summary: "mean", tags: ["motors"] }, (run) =>
  run.key(SAMPLE_X, "actualPosition").perTrain(),
);

/** The camera's images and the train of each (read once, used by the camera variables, not stored) */
export const camera_frames = Variable({ transient: true }, (run) => run.key(CAMERA, "data.image.pixels").ndarray());

/** Total camera counts per train with an image; the cell shows the mean */
export const camera_total = Variable(
  { title: "Camera/total", summary: "mean", tags: ["camera"], deps: { frames: camera_frames } },
  (_run, { frames }) => {
    const pixels = frames.shape[1] * frames.shape[2];
    const images = frames.data as Uint16Array;
    const totals = new Float64Array(frames.shape[0]);
    for (let e = 0; e < totals.length; e++) {
      let sum = 0;
      for (let i = e * pixels; i < (e + 1) * pixels; i++) sum += images[i]!;
      totals[e] = sum;
    }
    return labelled(totals, { dims: ["trainId"], coords: { trainId: frames.entryTrainIds } });
  },
);

/** Mean camera image of the run (the cell shows a thumbnail) */
export const camera_image = Variable({ title: "Camera/mean image", tags: ["camera"], deps: { frames: camera_frames } }, (_run, { frames }) => {
  const [images, rows, cols] = frames.shape as [number, number, number];
  if (images === 0) throw new Skip("the camera recorded no images in this run");
  const pixels = frames.data as Uint16Array;
  const sum = new Float64Array(rows * cols);
  for (let e = 0; e < images; e++) {
    const offset = e * rows * cols;
    for (let i = 0; i < rows * cols; i++) sum[i] += pixels[offset + i]!;
  }
  for (let i = 0; i < sum.length; i++) sum[i] /= images;
  return { kind: "ndarray", dtype: "float64", shape: [rows, cols], data: sum };
});

/**
 * Mean signal frame of AGIPD module 0 over all frames of the run, read in bounded slices. Raw frames are
 * [signal/gain plane, rows, columns]; when the run is processed with its proc data (reprocessing, calibration
 * jobs) the same source name gives the corrected frames, [rows, columns].
 */
export const agipd_mean_frame = Variable({ title: "AGIPD/module 0 mean frame", tags: ["detector"] }, (run) => {
  const key = run.key(AGIPD_MODULE_0, "image.data");
  const shape = key.entryShape;
  const [rows, cols] = shape.slice(-2) as [number, number];
  const plane = rows * cols;
  const stride = shape.length === 3 ? 2 * plane : plane; // raw: skip the gain plane
  const sum = new Float64Array(plane);
  let frames = 0;
  for (const slice of key.slices({ borrow: true })) {
    const n = slice.shape[0]!;
    const data = slice.data as ArrayLike<number>;
    for (let f = 0; f < n; f++) {
      const offset = f * stride;
      for (let i = 0; i < plane; i++) sum[i] += data[offset + i]!;
    }
    frames += n;
  }
  if (frames === 0) throw new Skip("AGIPD module 0 recorded no frames");
  for (let i = 0; i < plane; i++) sum[i] /= frames;
  return { kind: "ndarray", dtype: "float64", shape: [rows, cols], data: sum };
});

/** Mean corrected signal of AGIPD module 0 (computed when the run is calibrated) */
export const agipd_corrected_mean = Variable({ title: "AGIPD/module 0 corrected mean", data: "proc", units: "keV", tags: ["detector"] }, (run) => {
  const key = run.key(CORRECTED_MODULE_0, "image.data");
  let sum = 0;
  let count = 0;
  for (const slice of key.slices({ borrow: true })) {
    const data = slice.data as Float32Array;
    for (let i = 0; i < data.length; i++) sum += data[i]!;
    count += data.length;
  }
  return count === 0 ? null : sum / count;
});

/** Whether the beam was good enough for the run: a coloured cell */
export const beam_ok = Variable({ title: "Beam/OK", tags: ["xgm"], deps: { xgm: xgm_mean } }, (_run, { xgm }) => {
  const good = xgm > 20;
  return new Cell(good, {
    summaryValue: good ? "good" : "low",
    bold: !good,
    background: good ? "#8fd18f" : "#f5b971",
  });
});

/** SASE1 pulse energy: this beamline does not record the SASE1 XGM, so this fails with a clear message */
export const sase1_flux = Variable({ title: "Beam/SASE1 flux", units: "µJ", tags: ["xgm"] }, (run) =>
  run.key("SA1_XTD2_XGM/XGM/DOOCS", "pulseEnergy.photonFlux").perTrain(),
);

/** Ratio of our pulse energy to SASE1's (skipped, since SASE1 fails: see the error tree) */
export const sase1_ratio = Variable({ title: "Beam/SPB to SASE1", deps: { ours: xgm_mean, sase1: sase1_flux } }, (_run, { ours, sase1 }) =>
  ours / mean(sase1.data),
);
