/**
 * The provenance record of one processing attempt of one run (issue 14, item 5): what went in — the context file
 * and its helper files, damnit's version, the interpreter of a Python context, the run's input files, the external
 * lookups served — as named sections of one JSON object. The sections come from the collectors of sections.ts, so
 * another part of damnit (say, the calibration constants a job used) adds its own by adding one collector there.
 */
import type { DataKind } from "../core/data-kind.js";
import type { JobLookups } from "../lookups/job-recorder.js";

/** Bumped when a section changes meaning; readers check it. */
export const PROVENANCE_FORMAT = 1;

export interface ProvenanceRecord {
  readonly format: number;
  readonly proposal: number;
  readonly run: number;
  /** 1, 2, … per run, in the order the attempts started (null when provenance.sqlite could not be written) */
  readonly attempt: number | null;
  readonly processingId: string;
  /** epoch seconds */
  readonly startedAt: number;
  /** the variables this attempt stored (filled in when it stores them) */
  readonly variables?: readonly string[];
  /** section name → what its collector returned */
  readonly sections: Readonly<Record<string, unknown>>;
}

/** What a collector knows about the attempt. */
export interface AttemptInfo {
  readonly dbDir: string;
  readonly proposal: number;
  readonly run: number;
  readonly processingId: string;
  readonly contextFile: string;
  readonly data: DataKind;
  readonly cluster: boolean;
  readonly mock: boolean;
  readonly match: readonly string[];
  readonly variables: readonly string[];
  readonly dataRoot?: string;
  /** the database's context_python setting ("" for python3 on PATH) */
  readonly contextPython: string;
  /** the job's lookup recorder, when the database configures upstreams (set once it started) */
  lookups?: JobLookups;
}

/**
 * One section: `start` collectors run before any variable (what goes in), `end` ones once the variables are
 * computed, just before the results are stored (what was used while computing). A collector that throws gives
 * its section as `{ "error": message }`: provenance never fails a job.
 */
export interface SectionCollector {
  readonly name: string;
  readonly when: "start" | "end";
  collect(info: AttemptInfo): unknown;
}
