import { copyFileSync, chmodSync, existsSync, mkdirSync, readdirSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { ArgumentsCamelCase, Argv, CommandModule } from "yargs";
import { writeGuiPointer } from "../../context/gui-pointer.js";
import { DamnitError } from "../../core/errors.js";
import { summariseResults } from "../../extract/results-summary.js";
import { reprocessHere } from "../../jobs/reprocess.js";
import { writeSyntheticRun } from "../../synth/write-run.js";
import { openForCommand } from "../open-database.js";
import { progressBar } from "../progress.js";
import { cellText } from "../format-value.js";
import { renderTable } from "../table.js";
import { serveWeb } from "../../web/serve.js";

interface Args {
  dir: string;
  runs: number;
  proposal: number;
  force: boolean;
  python: boolean;
  contextPython?: string;
  web?: string;
}

/** The example context shipped with the package. */
export const EXAMPLE_CONTEXT = fileURLToPath(new URL("../../../../contexts/spb-example.ts", import.meta.url));
/** The same example as a Python context (`demo --python`). */
export const EXAMPLE_PYTHON_CONTEXT = fileURLToPath(new URL("../../../../contexts/spb-example.py", import.meta.url));

/** Everything from synthetic data to a filled run table, with no Kafka, Slurm or beamline needed. */
export const demoCommand: CommandModule<object, Args> = {
  command: "demo [dir]",
  describe: "Make a small synthetic proposal and a database with the example context, process every run and print the table",
  builder: (y: Argv) =>
    y
      .positional("dir", { type: "string", default: "damnit-demo", describe: "directory to create (database, context.ts, data/)" })
      .option("runs", { type: "number", default: 3, describe: "how many synthetic runs" })
      .option("proposal", { type: "number", default: 1234, describe: "proposal number of the synthetic data" })
      .option("force", { type: "boolean", default: false, describe: "reuse a directory that is not empty" })
      .option("python", { type: "boolean", default: false, describe: "use the Python example context (context.py) instead of context.ts" })
      .option("web", { type: "string", describe: "end by serving the table as a web page (on [HOST:]PORT; default 127.0.0.1:8700) until Ctrl+C" })
      .option("context-python", { type: "string", describe: "Python interpreter for context.py (with numpy, xarray, extra_data; default python3 on PATH)" })
      .example("$0 demo /tmp/demo", "set up and process a demo proposal in /tmp/demo") as unknown as Argv<Args>,
  handler: async (argv: ArgumentsCamelCase<Args>) => {
    if (!Number.isInteger(argv.runs) || argv.runs < 1 || argv.runs > 100) throw new DamnitError("BAD_ARGUMENT", `--runs must be 1 to 100, not ${argv.runs}`);
    if (!Number.isInteger(argv.proposal) || argv.proposal < 1 || argv.proposal > 999_999) {
      throw new DamnitError("BAD_ARGUMENT", `--proposal must be 1 to 999999, not ${argv.proposal}`);
    }
    const dir = resolve(argv.dir);
    if (existsSync(dir) && !statSync(dir).isDirectory()) throw new DamnitError("BAD_ARGUMENT", `${dir} exists and is not a directory`);
    if (existsSync(dir) && readdirSync(dir).length > 0 && !argv.force) {
      throw new DamnitError("BAD_ARGUMENT", `${dir} is not empty; choose another directory or add --force to reuse it`);
    }
    mkdirSync(dir, { recursive: true });
    chmodSync(dir, 0o777);
    const dataRoot = join(dir, "data");
    const runs = Array.from({ length: argv.runs }, (_, i) => i + 1);

    const writing = progressBar(`Writing ${runs.length} synthetic runs`);
    for (const run of runs) {
      await writeSyntheticRun({ root: dataRoot, proposal: argv.proposal, run, overwrite: argv.force });
      writing.update(run, runs.length);
    }
    writing.finish();

    const db = await openForCommand(dir, { create: true, initialSettings: { proposal: argv.proposal } });
    try {
      db.setSetting("data_root", dataRoot);
      if (argv.contextPython) db.setSetting("context_python", argv.contextPython);
      const context = join(dir, argv.python ? "context.py" : "context.ts");
      if (!existsSync(context) || argv.force) {
        copyFileSync(argv.python ? EXAMPLE_PYTHON_CONTEXT : EXAMPLE_CONTEXT, context);
        chmodSync(context, 0o666);
      }
      writeGuiPointer(dir);
      const processing = progressBar(`Processing ${runs.length} runs`);
      let done = 0;
      const { results, seconds } = await reprocessHere(db, argv.proposal, runs, { onRun: () => processing.update(++done, runs.length) });
      processing.finish();
      const summary = summariseResults(results, seconds);

      // Few runs, many variables: one row per variable reads best.
      const table = db.readRunTable({ proposal: argv.proposal });
      const titles = new Map(db.listVariables().map((v) => [v.name, v.title ?? v.name]));
      const rows = table.names.map((name) => [titles.get(name) ?? name, ...table.rows.map((r) => cellText(r.cells.get(name)))]);
      process.stdout.write(`\nRun table of ${dir}:\n\n`);
      process.stdout.write(renderTable(["variable", ...table.rows.map((r) => `run ${r.run}`)], rows, 44));
      process.stdout.write(`\n${summary.text}`);
      process.stdout.write(
        [
          "",
          "Next:",
          `  damnit show ${argv.dir} --titles        the table, one row per run`,
          `  damnit read-context ${argv.dir}         check ${join(argv.dir, argv.python ? "context.py" : "context.ts")} after editing it`,
          `  damnit reprocess all --dir ${argv.dir}  compute every run again`,
          "",
        ].join("\n"),
      );
      if (summary.failedRuns > 0) process.exitCode = 1;
    } finally {
      db.close();
    }
    if (argv.web !== undefined) await serveUntilStopped(dir, argv.web);
  },
};

/** `demo --web`: serve the demo's table (writable with the token) until SIGINT/SIGTERM. */
async function serveUntilStopped(dir: string, listen: string): Promise<void> {
  process.stdout.write("\n");
  const web = await serveWeb({ dirs: [dir], listen: listen === "" ? undefined : listen });
  process.stdout.write("Serving until Ctrl+C.\n");
  await new Promise<void>((resolveStop) => {
    const stop = () => void web.close().then(() => resolveStop());
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
  });
}
