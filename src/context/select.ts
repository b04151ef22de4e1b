/**
 * Which variables a job computes (DAMNIT's `ContextFile.filter`): by data kind, by cluster flag, by name/title
 * match or explicit names — always with everything they depend on.
 */
import type { DataKind } from "../core/data-kind.js";
import { DamnitError } from "../core/errors.js";
import { didYouMean } from "../core/close-names.js";
import type { LoadedContext } from "./variables.js";

export interface Selection {
  /** raw: variables on raw data; proc: proc variables (and the raw ones they use); all: both */
  readonly kind: DataKind;
  /** a cluster job computes cluster variables, a normal job the others */
  readonly cluster: boolean;
  /** case-insensitive substrings of name or title */
  readonly match?: readonly string[];
  /** explicit variable names (override match) */
  readonly variables?: readonly string[];
  /** false: drop proc variables (the run has no proc data) */
  readonly procAvailable?: boolean;
}

/** The names chosen directly, before dependencies are added. */
export function chosenVariables(context: LoadedContext, selection: Selection): string[] {
  const names = [...context.variables.keys()];
  for (const wanted of selection.variables ?? []) {
    if (!context.variables.has(wanted)) {
      throw new DamnitError("BAD_ARGUMENT", `the context file has no variable '${wanted}'${didYouMean(wanted, names)}`);
    }
  }
  return context.order.filter((name) => {
    const v = context.variables.get(name)!;
    if (v.cluster !== selection.cluster) return false;
    if (selection.kind === "raw" && v.data !== "raw") return false;
    if (selection.kind === "proc" && v.data !== "proc") return false;
    if (selection.procAvailable === false && v.data === "proc") return false;
    if (selection.variables && selection.variables.length > 0) return selection.variables.includes(name);
    if (selection.match && selection.match.length > 0) {
      const text = `${name}\n${v.title}`.toLowerCase();
      return selection.match.some((m) => text.includes(m.toLowerCase()));
    }
    return true;
  });
}

/** The chosen variables plus, transitively, their dependencies. */
export function selectVariables(context: LoadedContext, selection: Selection): Set<string> {
  const selected = new Set<string>();
  const visit = (name: string) => {
    if (selected.has(name)) return;
    selected.add(name);
    for (const dep of context.variables.get(name)!.dependencies) visit(dep);
  };
  for (const name of chosenVariables(context, selection)) visit(name);
  return selected;
}

/** Whether the same choice, made for a cluster job, has anything to do (a follow-up job is needed). */
export function hasClusterFollowUp(context: LoadedContext, selection: Selection): boolean {
  return chosenVariables(context, { ...selection, cluster: true }).length > 0;
}
