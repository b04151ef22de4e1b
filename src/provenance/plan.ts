/**
 * How to process a run again so that it is comparable with what is stored (`--check-reproducible`): with the data
 * kind of the attempt that stored each variable, as provenance.sqlite records it. A run whose variables all came
 * from raw jobs is processed raw (processing it "all" would read proc files where both hold a source and compute
 * something else); one whose variables came from raw and from proc jobs is processed in one pass per kind, each for
 * its own variables. Without records (runs processed before provenance existed) it is one "all" pass, as
 * `damnit reprocess` does.
 */
import type { DataKind } from "../core/data-kind.js";
import { START_TIME } from "../context/validate.js";
import type { ProvenanceStore } from "./store.js";

export interface Pass {
  readonly data: DataKind;
  /** only these variables (undefined: the selection as given) */
  readonly variables?: readonly string[];
}

export function reprocessingPlan(store: ProvenanceStore | undefined, proposal: number, run: number, selection: { match?: readonly string[]; variables?: readonly string[] }): Pass[] {
  const kindOf = new Map<string, DataKind>();
  for (const attempt of store?.list(proposal, run) ?? []) {
    const kind = (attempt.record.sections.job as { data?: DataKind } | undefined)?.data;
    if (kind === undefined) continue;
    for (const name of attempt.record.variables ?? []) if (name !== START_TIME) kindOf.set(name, kind);
  }
  const kinds = new Set(kindOf.values());
  if (kinds.size === 0) return [{ data: "all", variables: selection.variables }];
  if (kinds.size === 1) return [{ data: [...kinds][0]!, variables: selection.variables }];
  if (selection.match && selection.match.length > 0 && !selection.variables) return [{ data: "all" }];
  const wanted = selection.variables ? new Set(selection.variables) : undefined;
  const passes: Pass[] = [];
  const unrecorded = [...(wanted ?? [])].filter((name) => !kindOf.has(name));
  for (const data of ["raw", "proc", "all"] as const) {
    const names = [...kindOf].filter(([name, kind]) => kind === data && (!wanted || wanted.has(name))).map(([name]) => name);
    if (data === "all") names.push(...unrecorded);
    names.sort();
    if (names.length > 0) passes.push({ data, variables: names });
  }
  return passes;
}
