/**
 * The provenance of one processing attempt, from its start to its end (what extract/job.ts calls): `begin`
 * collects the start sections and takes the attempt's number in provenance.sqlite; `forFile` adds the end sections
 * (lookups served, …) and gives the record the run's HDF5 file carries; `finish` stores the final record with the
 * attempt's outcome and the variables it stored. Provenance never fails a job: a section that cannot be collected
 * says why in the record, and a provenance.sqlite that cannot be written is a warning in the job's log (the HDF5
 * file still gets the record).
 */
import type { Logger } from "pino";
import { PROVENANCE_FORMAT, type AttemptInfo, type ProvenanceRecord, type SectionCollector } from "./record.js";
import { PROVENANCE_SECTIONS } from "./sections.js";
import { ProvenanceStore } from "./store.js";

async function collect(collectors: readonly SectionCollector[], info: AttemptInfo): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  for (const c of collectors) {
    try {
      out[c.name] = await c.collect(info);
    } catch (err) {
      out[c.name] = { error: (err as Error).message };
    }
  }
  return out;
}

export class AttemptProvenance {
  private record: ProvenanceRecord;
  private finished = false;
  private ended = false;

  private constructor(
    readonly info: AttemptInfo,
    private readonly store: ProvenanceStore | undefined,
    record: ProvenanceRecord,
    private readonly logger: Logger | undefined,
    private readonly collectors: readonly SectionCollector[],
  ) {
    this.record = record;
  }

  static async begin(info: AttemptInfo, logger?: Logger, collectors: readonly SectionCollector[] = PROVENANCE_SECTIONS): Promise<AttemptProvenance> {
    const startedAt = Date.now() / 1000;
    const sections = await collect(
      collectors.filter((c) => c.when === "start"),
      info,
    );
    const base = { format: PROVENANCE_FORMAT, proposal: info.proposal, run: info.run, processingId: info.processingId, startedAt, sections };
    let store: ProvenanceStore | undefined;
    let attempt: number | null = null;
    try {
      store = ProvenanceStore.open(info.dbDir);
      attempt = store.begin(base);
    } catch (err) {
      store?.close();
      store = undefined;
      logger?.warn(`No provenance record for this attempt in provenance.sqlite: ${(err as Error).message}`);
    }
    if (attempt !== null) logger?.info(`Provenance: attempt ${attempt} of r${info.run} (p${info.proposal})`);
    return new AttemptProvenance(info, store, { ...base, attempt }, logger, collectors);
  }

  get attempt(): number | null {
    return this.record.attempt;
  }

  /** Collect the end sections (once; before the job's lookup recorder closes, whose served requests they read). */
  async endSections(): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    const end = await collect(
      this.collectors.filter((c) => c.when === "end"),
      this.info,
    );
    this.record = { ...this.record, sections: { ...this.record.sections, ...end } };
  }

  /** The record with the end sections, as JSON for the run's HDF5 file (which adds the variables it writes). */
  async forFile(): Promise<string> {
    await this.endSections();
    return JSON.stringify(this.record);
  }

  /** Store the outcome (once): the variables stored, ok or failed and why (end sections collected if not yet). */
  async finish(outcome: { ok: boolean; message?: string; stored: readonly string[] }): Promise<void> {
    if (this.finished) return;
    this.finished = true;
    await this.endSections();
    this.record = { ...this.record, variables: [...outcome.stored].sort() };
    if (!this.store) return;
    try {
      this.store.finish(this.record, outcome.ok ? "ok" : "failed", outcome.message);
    } catch (err) {
      this.logger?.warn(`Could not store this attempt's provenance record: ${(err as Error).message}`);
    } finally {
      this.store.close();
    }
  }

  get current(): ProvenanceRecord {
    return this.record;
  }
}
