/**
 * Checking a context file without a run (`damnit read-context`): load it in a context runner with the database's
 * limits (the defaults when there is no database), list its variables, and refresh the database's variables table.
 */
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { findContextFile } from "../context/load.js";
import { formatProblem, type VariableInfo } from "../context/variables.js";
import { DamnitError } from "../core/errors.js";
import type { SettingsReader } from "../core/settings.js";
import { METAMETA_DEFAULTS, type MetametaSettings } from "../db/defaults.js";
import { RunDatabase } from "../db/run-database.js";
import { log } from "../log.js";
import { runnerLimits } from "./job.js";
import { RunnerProcess } from "./runner-process.js";
import { refreshVariablesTable } from "./variables-table.js";

export interface DescribedContext {
  readonly contextFile: string;
  readonly variables: VariableInfo[];
}

/** Describe `contextFile` in a fresh runner for `dir`; throws BAD_VALUE listing the problems when it has any. */
export async function describeContext(dir: string, contextFile: string, settings: SettingsReader<MetametaSettings>): Promise<DescribedContext> {
  const runner = await RunnerProcess.start(dir, runnerLimits(settings));
  let described;
  try {
    described = await runner.describe(contextFile);
  } finally {
    runner.kill();
  }
  if (described.problems.length > 0 || !described.variables) {
    const lines = described.problems.map(formatProblem);
    throw new DamnitError("BAD_VALUE", `the context file has ${lines.length} problem${lines.length === 1 ? "" : "s"}:\n${lines.join("\n")}`);
  }
  return { contextFile, variables: described.variables };
}

/**
 * The context file of a database directory, described; with `updateVars`, the variables table of the directory's
 * database (if there is one and it is writable here) is refreshed from it.
 */
export async function readContext(dirArg: string, opts: { updateVars: boolean }): Promise<DescribedContext> {
  const dir = resolve(dirArg);
  const contextFile = findContextFile(dir);
  const db = existsSync(join(dir, "runs.sqlite")) ? await RunDatabase.open(dir) : undefined;
  try {
    const described = await describeContext(dir, contextFile, db?.settings ?? METAMETA_DEFAULTS);
    if (db && opts.updateVars && !db.readonly) {
      const { changed } = refreshVariablesTable(db, described.variables);
      if (changed.length > 0) log().info({ changed }, `Updated ${changed.length} variables in ${db.path}`);
    }
    return described;
  } finally {
    db?.close();
  }
}
