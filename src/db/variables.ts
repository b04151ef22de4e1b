/**
 * The `variables` table: computed variables (type NULL, refreshed from the context file) and user-editable ones
 * (type boolean/integer/number/string, values typed in by people).
 */
import type Database from "better-sqlite3";
import { DamnitError } from "../core/errors.js";
import { checkVariableName, setVariables } from "./run-variables.js";
import { getVariableTags, syncVariableTags } from "./tags.js";
import { rebuildViews } from "./views.js";

export const USER_VARIABLE_TYPES = ["boolean", "integer", "number", "string"] as const;
export type UserVariableType = (typeof USER_VARIABLE_TYPES)[number];

export interface VariableInfo {
  name: string;
  type: string | null;
  title: string | null;
  description: string | null;
  attributes: string | null;
}

export function listVariables(db: Database.Database): VariableInfo[] {
  return db.prepare("SELECT name, type, title, description, attributes FROM variables ORDER BY name").all() as VariableInfo[];
}

export interface UserVariable {
  name: string;
  type: UserVariableType;
  title: string;
  description?: string | null;
}

export function addUserVariable(db: Database.Database, variable: UserVariable, opts: { existOk?: boolean } = {}): void {
  checkVariableName(variable.name);
  if (!USER_VARIABLE_TYPES.includes(variable.type)) {
    throw new DamnitError("BAD_VALUE", `user variable type '${variable.type}' is not one of ${USER_VARIABLE_TYPES.join(", ")}`);
  }
  db.transaction(() => {
    const clash = db
      .prepare("SELECT name FROM variables WHERE (name = ? OR title = ?)")
      .get(variable.name, variable.title) as { name: string } | undefined;
    if (clash && !opts.existOk) {
      throw new DamnitError("BAD_VALUE", `a variable named '${clash.name}' already has this name or title`);
    }
    db.prepare(
      "INSERT OR REPLACE INTO variables (name, type, title, description, attributes) VALUES (?, ?, ?, ?, NULL)",
    ).run(variable.name, variable.type, variable.title, variable.description ?? null);
    rebuildViews(db);
  }).immediate();
}

/** Parse what a person typed for a user variable, with DAMNIT's rules; empty input means "no value". */
export function parseUserInput(type: UserVariableType, input: string): boolean | number | string | null {
  const text = input.trim();
  if (text === "") return null;
  switch (type) {
    case "boolean": {
      const lower = text.toLowerCase();
      if (["true", "yes", "1"].includes(lower)) return true;
      if (["false", "no", "0"].includes(lower)) return false;
      throw new DamnitError("BAD_VALUE", `'${input}' is not a boolean (true/yes/1 or false/no/0)`);
    }
    case "integer":
      if (!/^[+-]?\d+$/.test(text)) throw new DamnitError("BAD_VALUE", `'${input}' is not an integer`);
      return Number(text);
    case "number": {
      const n = Number(text);
      if (Number.isNaN(n) && !/^nan$/i.test(text)) throw new DamnitError("BAD_VALUE", `'${input}' is not a number`);
      return n;
    }
    case "string":
      return input;
  }
}

/** Set a user variable's value for a run from typed input (provenance `manual-input`). */
export function setUserValue(db: Database.Database, proposal: number, run: number, name: string, input: string): void {
  const row = db.prepare("SELECT type FROM variables WHERE name = ?").get(name) as { type: string | null } | undefined;
  if (!row) throw new DamnitError("NO_SUCH_KEY", `no variable named '${name}'`);
  if (!row.type || !USER_VARIABLE_TYPES.includes(row.type as UserVariableType)) {
    throw new DamnitError("BAD_VALUE", `'${name}' is computed by the context file, not editable`);
  }
  const value = parseUserInput(row.type as UserVariableType, input);
  setVariables(db, proposal, run, { [name]: { value, real: row.type === "number" } }, { provenance: "manual-input" });
}

/** Remove a variable and all its values; its tags go with it (cascade + orphan trigger). */
export function deleteVariable(db: Database.Database, name: string): void {
  db.transaction(() => {
    db.prepare("DELETE FROM variables WHERE name = ?").run(name);
    db.prepare("DELETE FROM run_variables WHERE name = ?").run(name);
    rebuildViews(db);
  }).immediate();
}

export interface ComputedVariable {
  name: string;
  title: string | null;
  description: string | null;
  tags: readonly string[];
}

/**
 * Refresh the computed variables from a context file: upsert each (a computed variable replaces a user variable of
 * the same name), sync its tags, add view columns for new names. The write lock is taken up front so that many jobs
 * refreshing at once queue instead of deadlocking. Variables gone from the context file are kept, as in DAMNIT.
 * Returns the names whose stored title, description or tags changed.
 */
export function updateComputedVariables(db: Database.Database, variables: readonly ComputedVariable[]): string[] {
  for (const v of variables) checkVariableName(v.name);
  return db.transaction(() => {
    const changed: string[] = [];
    let newName = false;
    const select = db.prepare("SELECT type, title, description FROM variables WHERE name = ?");
    const upsert = db.prepare(
      `INSERT INTO variables (name, type, title, description, attributes) VALUES (?, NULL, ?, ?, NULL)
       ON CONFLICT(name) DO UPDATE SET type = NULL, title = excluded.title, description = excluded.description, attributes = NULL`,
    );
    for (const v of variables) {
      const stored = select.get(v.name) as { type: string | null; title: string | null; description: string | null } | undefined;
      if (!stored) newName = true;
      const tagsBefore = stored ? getVariableTags(db, v.name) : [];
      const tagsAfter = [...new Set(v.tags)].sort();
      const same =
        stored &&
        stored.type === null &&
        stored.title === v.title &&
        stored.description === v.description &&
        tagsBefore.join("\0") === tagsAfter.join("\0");
      if (same) continue;
      upsert.run(v.name, v.title, v.description);
      syncVariableTags(db, v.name, tagsAfter);
      changed.push(v.name);
    }
    if (newName) rebuildViews(db);
    return changed;
  }).immediate();
}
