import type { ArgumentsCamelCase, Argv, CommandModule } from "yargs";
import type { VariableInfo } from "../../context/variables.js";
import { readContext } from "../../extract/describe-context.js";
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
    const { contextFile, variables } = await readContext(argv.dir, { updateVars: argv.updateVars });
    if (argv.json) {
      process.stdout.write(JSON.stringify({ contextFile, variables }, null, 2) + "\n");
      return;
    }
    process.stdout.write(`${contextFile}: ${variables.length} variables\n\n`);
    process.stdout.write(renderTable(["name", "title", "data", "cluster", "tags", "units", "summary", "depends on"], variables.map(row), 40));
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
