/**
 * What a synthetic run contains: sizes, source names and the deterministic value of every entry, as functions of
 * train ID and entry position. The writer (`write-run.ts`) and the tests both use these definitions, so a test can
 * tell exactly which value belongs to which train.
 */

export type SynthSize = "small" | "medium" | "large";
export const SYNTH_SIZES: readonly SynthSize[] = ["small", "medium", "large"];

/** EXDF format versions the generator can write; "0.5" is the old METADATA layout without version or flag. */
export type SynthFormat = "0.5" | "1.0" | "1.1" | "1.2" | "1.3";
export const SYNTH_FORMATS: readonly SynthFormat[] = ["0.5", "1.0", "1.1", "1.2", "1.3"];

export interface SynthPreset {
  trains: number;
  /** Detector modules, one aggregator (AGIPD00, AGIPD01, …) each, every one split over two sequence files. */
  modules: number;
  framesPerTrain: number;
  /** Raw module frame: [data/gain plane, rows, columns], uint16. */
  frameShape: readonly [2, number, number];
  /** Camera image, uint16, gzip-compressed in chunks of one image. */
  cameraShape: readonly [number, number];
}

export const SYNTH_PRESETS: Readonly<Record<SynthSize, SynthPreset>> = {
  small: { trains: 40, modules: 4, framesPerTrain: 4, frameShape: [2, 16, 32], cameraShape: [24, 32] },
  // ≈ 300 MB per run, like a real small run: 256 MiB of raw detector data plus camera, XGM and the proc variant.
  medium: { trains: 128, modules: 4, framesPerTrain: 8, frameShape: [2, 128, 128], cameraShape: [256, 256] },
  // One module's image.data is 200 MiB: the key bench/read measures.
  large: { trains: 400, modules: 4, framesPerTrain: 8, frameShape: [2, 128, 128], cameraShape: [256, 256] },
};

export const SYNTH_INSTRUMENT = "SPB";
export const SYNTH_CYCLE = "202601";

/** Source names, as EXtra-data reports them. */
export const XGM_CONTROL = "SPB_XTD9_XGM/DOOCS/MAIN";
export const XGM_OUTPUT = "SPB_XTD9_XGM/DOOCS/MAIN:output";
export const MOTOR = "SPB_IRU_MOTORS/MOTOR/SAMPLE_X";
export const UNDULATOR = "SPB_XTD2_UND/DOOCS/ENERGY";
export const CAMERA = "SPB_EXP_ZYLA/CAM/1:output";
/** An output channel that is listed but recorded nothing in the whole run. */
export const EMPTY_CAMERA = "SPB_EXP_ZYLA/CAM/2:output";
/** Only in the second sequence file of DA01 (used for the "source in some sequences only" case). */
export const LATE_DEVICE = "SPB_IRU_MOTORS/MOTOR/SAMPLE_Y";
export const detectorSource = (module: number): string => `SPB_DET_AGIPD1M-1/DET/${module}CH0:xtdf`;
export const correctedSource = (module: number): string => `SPB_DET_AGIPD1M-1/CORR/${module}CH0:output`;

/** Pulses with signal in each XGM vector; the rest of the vector is 0. */
export const XGM_PULSES = 30;
export const XGM_VECTOR_LENGTH = 120;

/** Train position (0-based) at which every detector module recorded 0 frames. */
export const EMPTY_DETECTOR_TRAIN = 5;
/** The last module starts this many trains after the others. */
export const LATE_MODULE_DELAY = 3;
/** The camera skips trains whose position is 2 mod 3. */
export const cameraHasTrain = (trainIndex: number): boolean => trainIndex % 3 !== 2;

/**
 * DA01-S00000 holds train positions [0, s) and DA01-S00001 [s, n), s = ceil(0.55 n), computed in integers because
 * n * 0.55 is 55.00000000000001 for n = 100.
 */
export const da01SplitPosition = (preset: SynthPreset): number => Math.ceil((preset.trains * 55) / 100);
/**
 * Train positions [start, end) of detector module `module`'s sequence file `seq` (0 or 1), raw and proc alike:
 * split at floor(n / 2); the last module's S00000 starts at LATE_MODULE_DELAY.
 */
export const moduleTrainRange = (preset: SynthPreset, module: number, seq: 0 | 1): [number, number] => {
  const half = Math.floor(preset.trains / 2);
  if (seq === 1) return [half, preset.trains];
  return [module === preset.modules - 1 ? LATE_MODULE_DELAY : 0, half];
};

/** Train IDs and timestamps of run `run` (10 Hz). */
export const firstTrainId = (run: number): number => 1_500_000_000 + run * 10_000;
export const trainTimestampNs = (run: number, trainIndex: number): bigint =>
  BigInt(Date.UTC(2026, 0, 15, 8, 0, 0)) * 1_000_000n + BigInt(run) * 3_600_000_000_000n + BigInt(trainIndex) * 100_000_000n;

/** The run a train ID of firstTrainId's numbering belongs to (values depend on it, so runs can be told apart). */
export const runOfTrain = (tid: number): number => Math.floor((tid - 1_500_000_000) / 10_000);
/** Every fifth run (5, 10, …) has the beam off: XGM intensity and photon flux are 0. */
export const beamOff = (run: number): boolean => run % 5 === 0;
/** Beam intensity drifts from run to run (repeating every 7 runs): added to the XGM's signal. */
export const beamDrift = (run: number): number => 16 * (run % 7);

// ---- values: every one exact in its dtype ----

/** XGM control `pulseEnergy.photonFlux.value` (float32). */
export const xgmPhotonFlux = (tid: number): number =>
  beamOff(runOfTrain(tid)) ? 0 : 1000 + beamDrift(runOfTrain(tid)) + (tid % 100) * 0.25;
/** XGM control `pulseEnergy.wavelengthUsed.value` (float64), constant. */
export const XGM_WAVELENGTH_NM = 1.3776;
/** XGM control `state.value`, a variable-length string. */
export const xgmState = (tid: number): string => (tid % 50 < 25 ? "ON" : "ACQUIRING");
/** XGM instrument `data.intensityTD` (float32 vector of XGM_VECTOR_LENGTH per train). */
export const xgmIntensity = (tid: number, pulse: number): number =>
  pulse < XGM_PULSES && !beamOff(runOfTrain(tid)) ? (tid % 1000) * 0.5 + pulse + beamDrift(runOfTrain(tid)) : 0;

/**
 * Motor `actualPosition.value` (float32, mm): scanned across runs (each run starts 2 mm further, repeating every
 * 10 runs) and within a run in steps of 0.5 mm every 10 trains.
 */
export const motorPosition = (tid: number, run: number): number => 2 * (run % 10) + 0.5 * Math.floor((tid - firstTrainId(run)) / 10);
/** Motor `roi.value`: a 2-D int32 entry of shape (2, 3) per train. */
export const motorRoi = (tid: number, row: number, col: number): number => (tid % 10) * 100 + row * 3 + col;
export const MOTOR_CLASS_ID = "PIMotor";
/** Undulator `actualEnergy.value` (float64, keV), constant. */
export const UNDULATOR_ENERGY_KEV = 9.3;

/** Camera `data.image.pixels` (uint16). */
export const cameraPixel = (tid: number, y: number, x: number): number => (tid % 1000) + ((y * 3 + x) % 50);

/** Raw detector `image.data` (uint16), plane 0 = signal, plane 1 = gain stage. */
export const detectorPixel = (tid: number, frame: number, module: number, plane: number, y: number, x: number): number =>
  plane === 0 ? (tid % 1000) + 10 * frame + 100 * module + ((y * 7 + x * 3 + tid) % 16) : frame % 3;
/** `image.cellId` (uint16) and `image.pulseId` (uint64) of frame `frame`. */
export const detectorCellId = (frame: number): number => frame;
export const detectorPulseId = (frame: number): number => frame * 4;
/** Frames module `module` recorded in train position `trainIndex` (0 where it recorded the train with no frames). */
export const detectorFrames = (preset: SynthPreset, trainIndex: number): number =>
  trainIndex === EMPTY_DETECTOR_TRAIN ? 0 : preset.framesPerTrain;

/** Corrected detector `image.data` (float32, rows × columns): half the raw signal plus a quarter. */
export const correctedPixel = (tid: number, frame: number, module: number, y: number, x: number): number =>
  detectorPixel(tid, frame, module, 0, y, x) * 0.5 + 0.25;
/** Corrected `image.mask` (uint32) and `image.gain` (uint8). */
export const correctedMask = (y: number, x: number, columns: number): number => ((y * columns + x) % 97 === 0 ? 1 : 0);
export const correctedGain = (frame: number): number => frame % 3;
