/** Reading European XFEL run data (EXDF): the public entry of the run reader. */
export { DataCollection, type RunMetadata } from "./data-collection.js";
export { KeyData, type KeyArray, type KeySlice, type PerTrain, type MissingTrains, DEFAULT_READ_BYTES, DEFAULT_SLICE_BYTES } from "./key-data.js";
export { SourceData } from "./source-data.js";
export { RunFile, parseRunFileName, type SourceKind } from "./run-file.js";
export { type TrainSelection, selectTrainIds, parseRange } from "./train-selection.js";
export { type ElementType, type EntryRoi } from "../h5/file.js";
export {
  type DataLocation,
  DATA_LOCATIONS,
  DEFAULT_DATA_ROOT,
  dataRoot,
  findProposalDirectory,
  openRun,
  openRunDirectory,
  proposalDirectory,
  runDirectory,
} from "./open-run.js";
