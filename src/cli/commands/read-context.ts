import { METAMETA_DEFAULTS } from "../../db/defaults.js";
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import type { ArgumentsCamelCase, Argv, CommandModule } from "yargs";
import { findContextFile } from "../../context/load.js";
import { formatProblem, type VariableInfo } from "../../context/variables.js";
import { DamnitError } from "../../core/errors.js";
import { runnerLimits } from "../../extract/job.js";
import { RunnerProcess } from "../../extract/runner-process.js";
import { RunDatabase } from "../../db/run-database.js";
import { log } from "../../log.js";
import { renderTable } from "../table.js";

interface Args {
  dir: string;
  json: boolean;
  updateVars: boolean;
}

/** Load and check the context file (in a context runner), list its variables and refresh the variables table. */
export const readContextCommand: CommandModule<object, Args> = {
  command: "read-context [dir]",
  describe: "Check the context file of a database directory, list its variables and update the variables table",
  builder: (y: Argv) =>
    y
      .positional("dir", { type: "string", default: ".", describe: "database directory (holding context.ts)" })
      .option("json", { type: "boolean", default: false, describe: "print the variables as JSON" })
      .option("update-vars", { type: "boolean", default: true, describe: "refresh the database's variables table (if there is a database)" })
      .example("$0 read-context /data/p2956/usr/Shared/amore", "check that proposal's context file") as unknown as Argv<Args>,
  handler: async (argv: ArgumentsCamelCase<Args>) => {
    const dir = resolve(argv.dir);
    const contextFile = findContextFile(dir);
    const hasDb = existsSync(join(dir, "runs.sqlite"));
    const db = hasDb ? await RunDatabase.open(dir) : undefined;
    try {
      const limits = runnerLimits(db?.settings ?? METAMETA_DEFAULTS);
      const runner = await RunnerProcess.start(dir, limits);
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
      const variables = described.variables;
      if (db && argv.updateVars && !db.readonly) {
        const changed = db.updateComputedVariables(
          variables.filter((v) => !v.transient).map((v) => ({ name: v.name, title: v.title, description: v.description, tags: v.tags })),
        );
        if (changed.length > 0) log().info({ changed }, `Updated ${changed.length} variables in ${db.path}`);
      }
      if (argv.json) {
        process.stdout.write(JSON.stringify({ contextFile, variables }, null, 2) + "\n");
        return;
      }
      process.stdout.write(`${contextFile}: ${variables.length} variables\n\n`);
      process.stdout.write(renderTable(["name", "title", "data", "cluster", "tags", "units", "summary", "depends on"], variables.map(row), 40));
    } finally {
      db?.close();
    }
  },
};

function row(v: VariableInfo): string[] {
  return [
    v.name + (v.transient ? " (transient)" : ""),
    v.title,
    v.data,
    v.cluster ? "yes" : "",
    v.tags.join(", "),
    v.units ?? "",
    v.summary ?? "",
    v.dependencies.join(", "),
  ];
}
