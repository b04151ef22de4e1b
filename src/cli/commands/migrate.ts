import type { ArgumentsCamelCase, Argv, CommandModule } from "yargs";
import { DamnitError } from "../../core/errors.js";
import { LATEST_FORMAT_VERSION } from "../../db/format.js";
import { openForCommand } from "../open-database.js";
import { progressBar } from "../progress.js";

interface Args {
  args: string[];
  dryRun: boolean;
}

export const migrateCommand: CommandModule<object, Args> = {
  command: "migrate [args..]",
  describe: `Upgrade a database to format v${LATEST_FORMAT_VERSION}; 'migrate v0-to-v1 [dir]' converts the legacy v0 format`,
  builder: (y: Argv) =>
    y
      .positional("args", { type: "string", array: true, default: [], describe: "[v0-to-v1] [dir]" })
      .option("dry-run", { type: "boolean", default: false, describe: "v0-to-v1: write runs.v1.sqlite but leave runs.sqlite" })
      .example("$0 migrate", "upgrade the database in this directory (done on every open anyway)")
      .example("$0 migrate v0-to-v1 /data/old", "convert a legacy v0 database") as unknown as Argv<Args>,
  handler: async (argv: ArgumentsCamelCase<Args>) => {
    const [first, second, ...rest] = argv.args;
    if (first === "v0-to-v1") {
      if (rest.length) throw new DamnitError("BAD_ARGUMENT", `unexpected arguments: ${rest.join(" ")}`);
      const { convertV0ToV1 } = await import("../../legacy/v0-to-v1.js");
      const progress = progressBar("Reading run files");
      const result = await convertV0ToV1(second ?? ".", { dryRun: argv.dryRun, onProgress: progress.update });
      progress.finish();
      for (const warning of result.warnings) console.log(`Warning: ${warning}`);
      console.log(
        `Converted ${result.runs} runs, ${result.values} values, ${result.variables} variables and ${result.timeComments} time comments ` +
          (argv.dryRun ? `into ${result.newPath} (dry run: ${result.oldPath} unchanged)` : `into ${result.oldPath} (old file kept as ${result.backupPath})`),
      );
      return;
    }
    if (second !== undefined) throw new DamnitError("BAD_ARGUMENT", `unknown migration '${first}'; the only one is v0-to-v1`);
    const db = await openForCommand(first ?? ".");
    try {
      if (db.upgrade) {
        console.log(`Upgraded ${db.path} from v${db.upgrade.from} to v${db.upgrade.to}: ${db.upgrade.applied.join(", ")}`);
        if (db.upgrade.backup) console.log(`The old file is kept as ${db.upgrade.backup}`);
      } else {
        console.log(`${db.path} is already format v${LATEST_FORMAT_VERSION}`);
      }
    } finally {
      db.close();
    }
  },
};
