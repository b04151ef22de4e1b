import type { ArgumentsCamelCase, Argv, CommandModule } from "yargs";
import { DamnitError } from "../../core/errors.js";
import type { RunTable } from "../../db/run-table.js";
import { parseRunRanges } from "../run-ranges.js";
import { cellText, valueJson } from "../format-value.js";
import { openForCommand } from "../open-database.js";
import { renderTable } from "../table.js";

interface Args {
  dir: string;
  runs?: string;
  proposal?: number;
  match?: string[];
  titles: boolean;
  json: boolean;
}

function isoTime(seconds: number | null): string {
  return seconds === null ? "" : new Date(seconds * 1000).toISOString().replace("T", " ").replace(/\.\d+Z$/, "");
}

export function tableText(table: RunTable, showProposal: boolean, titles: Map<string, string> | undefined): string {
  const header = [
    ...(showProposal ? ["proposal"] : []),
    "run",
    "start_time (UTC)",
    ...table.names.map((n) => titles?.get(n) ?? n),
  ];
  const rows = table.rows.map((r) => [
    ...(showProposal ? [String(r.proposal)] : []),
    String(r.run),
    isoTime(r.startTime),
    ...table.names.map((n) => cellText(r.cells.get(n))),
  ]);
  return renderTable(header, rows);
}

function tableJson(table: RunTable): unknown[] {
  return table.rows.map((r) => {
    const values: Record<string, unknown> = {};
    const attributes: Record<string, unknown> = {};
    for (const name of table.names) {
      const cell = r.cells.get(name);
      if (!cell) continue;
      values[name] = valueJson(cell.value);
      if (cell.attributes) attributes[name] = cell.attributes;
    }
    return {
      proposal: r.proposal,
      run: r.run,
      start_time: r.startTime,
      added_at: r.addedAt,
      values,
      ...(Object.keys(attributes).length ? { attributes } : {}),
    };
  });
}

export const showCommand: CommandModule<object, Args> = {
  command: "show [dir]",
  describe: "Print the run table (one row per run, one column per variable)",
  builder: (y: Argv) =>
    y
      .positional("dir", { type: "string", default: ".", describe: "database directory" })
      .option("runs", { type: "string", describe: "runs to show, e.g. 1-10,15" })
      .option("proposal", { type: "number", describe: "only this proposal (a database may hold several)" })
      .option("match", {
        type: "string",
        array: true,
        describe: "only variables whose name or title contains this (case-insensitive; repeatable)",
      })
      .option("titles", { type: "boolean", default: false, describe: "head the columns with variable titles" })
      .option("json", { type: "boolean", default: false, describe: "machine-readable output with full values" })
      .example("$0 show --runs 1-10,15", "runs 1 to 10 and 15")
      .example("$0 show --match xgm --titles", "the XGM columns, headed by their titles") as Argv<Args>,
  handler: async (argv: ArgumentsCamelCase<Args>) => {
    const runs = argv.runs === undefined ? undefined : parseRunRanges(argv.runs);
    if (argv.proposal !== undefined && !Number.isSafeInteger(argv.proposal)) {
      throw new DamnitError("BAD_ARGUMENT", "--proposal takes a proposal number");
    }
    const db = await openForCommand(argv.dir);
    try {
      const table = db.readRunTable({ runs, proposal: argv.proposal });
      const titles = new Map(db.listVariables().flatMap((v) => (v.title ? [[v.name, v.title] as const] : [])));
      if (argv.match?.length) {
        const needles = argv.match.map((m) => m.toLowerCase());
        const wanted = (name: string) =>
          needles.some((n) => name.toLowerCase().includes(n) || (titles.get(name) ?? "").toLowerCase().includes(n));
        table.names = table.names.filter(wanted);
        if (table.names.length === 0) throw new DamnitError("BAD_ARGUMENT", `no variable matches ${argv.match.join(", ")}`);
      }
      if (argv.json) {
        process.stdout.write(JSON.stringify(tableJson(table), null, 1) + "\n");
        return;
      }
      if (table.rows.length === 0) {
        console.log(`No runs with values in ${db.path}${argv.runs ? ` matching ${argv.runs}` : ""}`);
        return;
      }
      const proposals = new Set(table.rows.map((r) => r.proposal));
      const showProposal = proposals.size > 1 || (db.proposal !== undefined && !proposals.has(db.proposal));
      process.stdout.write(tableText(table, showProposal, argv.titles ? titles : undefined));
    } finally {
      db.close();
    }
  },
};
