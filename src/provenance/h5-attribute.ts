/**
 * Provenance inside the run's HDF5 file: the root attribute `damnit_provenance` (a JSON string, which DAMNIT's
 * readers never look at) holds the records of the attempts whose variables the file holds, each listing its
 * variables. A merge (a later attempt replacing some variables) drops those names from older records and older
 * records left with none, so the file describes exactly what it contains.
 */
import type { ProvenanceRecord } from "./record.js";

export const PROVENANCE_ATTRIBUTE = "damnit_provenance";

export interface FileProvenance {
  readonly format: 1;
  readonly attempts: ProvenanceRecord[];
}

/** The attribute's value after writing `written` from the attempt `record` (JSON) over a file holding `previous`. */
export function mergeFileProvenance(previous: string | undefined, record: string, written: readonly string[]): string {
  let older: ProvenanceRecord[] = [];
  if (previous !== undefined) {
    try {
      const parsed = JSON.parse(previous) as Partial<FileProvenance>;
      if (Array.isArray(parsed.attempts)) older = parsed.attempts;
    } catch {
      // not ours (or damaged): replaced
    }
  }
  const replaced = new Set(written);
  const kept = older
    .map((r) => ({ ...r, variables: (r.variables ?? []).filter((v) => !replaced.has(v)) }))
    .filter((r) => r.variables.length > 0);
  const mine = { ...(JSON.parse(record) as ProvenanceRecord), variables: [...written].sort() };
  const value: FileProvenance = { format: 1, attempts: [...kept, mine] };
  return JSON.stringify(value);
}
