/**
 * Refreshing a database's `variables` table from a described context (spec §3.1): every variable that is not
 * transient, with its title, description and tags. What a job does after loading the context, and what
 * `damnit read-context` does.
 */
import type { VariableInfo } from "../context/variables.js";
import type { RunDatabase } from "../db/run-database.js";
import type { ComputedVariable } from "../db/variables.js";

/** The rows the `variables` table gets for these variables. */
export function variablesTableEntries(variables: readonly VariableInfo[]): ComputedVariable[] {
  return variables.filter((v) => !v.transient).map((v) => ({ name: v.name, title: v.title, description: v.description, tags: v.tags }));
}

/** Write the entries (inside the caller's write lock, if it holds one); the entries and the names that changed. */
export function refreshVariablesTable(db: RunDatabase, variables: readonly VariableInfo[]): { entries: ComputedVariable[]; changed: string[] } {
  const entries = variablesTableEntries(variables);
  return { entries, changed: db.updateComputedVariables(entries) };
}
