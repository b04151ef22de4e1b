/** `damnit data info|get`: a look inside a run's files, by directory or by proposal and run number. */
import { existsSync } from "node:fs";
import type { ArgumentsCamelCase, Argv, CommandModule } from "yargs";
import { DamnitError } from "../../core/errors.js";
import {
  DATA_LOCATIONS,
  type DataCollection,
  type DataLocation,
  openRun,
  openRunDirectory,
  parseRange,
} from "../../exdf/index.js";
import { printKeyValues } from "../key-values.js";
import { collectRunInfo, runInfoText } from "../run-info.js";

interface CommonArgs {
  data?: DataLocation;
  json: boolean;
  trains?: string;
  trainIndex?: string;
}

interface InfoArgs extends CommonArgs {
  run: string[];
  keys: boolean;
}

interface GetArgs extends CommonArgs {
  args: string[];
}

const isWholeNumber = (s: string) => /^\d+$/.test(s);

/** `<run dir>` or `<proposal> <run>`. */
async function openTarget(target: string[], data: DataLocation | undefined): Promise<DataCollection> {
  if (target.length === 1) {
    const dir = target[0]!;
    if (data !== undefined) throw new DamnitError("BAD_ARGUMENT", "--data goes with <proposal> <run>; a run directory is opened as it is");
    if (isWholeNumber(dir) && !existsSync(dir)) {
      throw new DamnitError("BAD_ARGUMENT", `no run directory '${dir}'; to find a run under the data root, give the proposal and the run number`);
    }
    return openRunDirectory(dir);
  }
  if (target.length === 2 && target.every(isWholeNumber)) return openRun(Number(target[0]), Number(target[1]), { data: data ?? "raw" });
  throw new DamnitError("BAD_ARGUMENT", `give a run directory, or a proposal and run number (got '${target.join(" ")}')`);
}

function selectTrains(run: DataCollection, args: CommonArgs): DataCollection {
  let selected = run;
  if (args.trains !== undefined) selected = selected.selectTrains({ idRange: parseRange(args.trains, "--trains") });
  if (args.trainIndex !== undefined) selected = selected.selectTrains({ index: parseRange(args.trainIndex, "--train-index", { positions: true }) });
  return selected;
}

function commonOptions<T>(y: Argv<T>): Argv<T> {
  return y
    .option("data", { choices: DATA_LOCATIONS, describe: "with <proposal> <run>: raw (default), proc, or all (proc preferred)" })
    .option("json", { type: "boolean", default: false, describe: "machine-readable output" })
    .option("trains", { type: "string", describe: "train IDs A:B (B exclusive; either may be left out)" })
    .option("train-index", { type: "string", describe: "train positions I:J in the run (negative from the end; write --train-index=-10: for those)" }) as Argv<T>;
}

const infoCommand: CommandModule<object, InfoArgs> = {
  command: "info <run..>",
  describe: "Sources, keys (dtype, shape, units), trains and files of a run",
  builder: (y: Argv) =>
    commonOptions(
      y
        .positional("run", { type: "string", array: true, describe: "run directory, or proposal and run number" })
        .option("keys", { type: "boolean", default: true, describe: "list each source's keys (--no-keys: sources only)" }),
    ) as Argv<InfoArgs>,
  handler: async (argv: ArgumentsCamelCase<InfoArgs>) => {
    const run = await openTarget(argv.run, argv.data);
    try {
      const info = collectRunInfo(selectTrains(run, argv), { keys: argv.keys });
      process.stdout.write(argv.json ? `${JSON.stringify(info, null, 2)}\n` : `${runInfoText(info)}\n`);
    } finally {
      run.close();
    }
  },
};

const getCommand: CommandModule<object, GetArgs> = {
  command: "get <args..>",
  describe: "The values of one key, aligned to train IDs: get <run dir> <source> <key>, or get <proposal> <run> <source> <key>",
  builder: (y: Argv) =>
    commonOptions(y.positional("args", { type: "string", array: true, describe: "run (directory, or proposal and run), source, key" })) as Argv<GetArgs>,
  handler: async (argv: ArgumentsCamelCase<GetArgs>) => {
    const args = argv.args.map(String);
    if (args.length < 3 || args.length > 4) {
      throw new DamnitError("BAD_ARGUMENT", "give <run dir> <source> <key>, or <proposal> <run> <source> <key>");
    }
    const [source, key] = args.slice(-2) as [string, string];
    const run = await openTarget(args.slice(0, -2), argv.data);
    try {
      const selected = selectTrains(run, argv);
      // Skipped files were logged when the run was opened; the JSON output lists them too.
      printKeyValues(selected.key(source, key), process.stdout, { trainIds: selected.trainIds, json: argv.json, problems: run.problems });
    } finally {
      run.close();
    }
  },
};

export const dataCommand: CommandModule = {
  command: "data <command>",
  describe: "Look inside a run's data files (European XFEL HDF5 format)",
  builder: (y: Argv) => y.command(infoCommand).command(getCommand).demandCommand(1, "Give 'info' or 'get'."),
  handler: () => {},
};
