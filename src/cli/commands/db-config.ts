import type { ArgumentsCamelCase, Argv, CommandModule } from "yargs";
import { METAMETA_SETTINGS } from "../../db/defaults.js";
import { DamnitError } from "../../core/errors.js";
import { openForCommand } from "../open-database.js";
import { printSettingDefaults, printSettings, repr, settingToStore } from "../settings-output.js";

interface Args {
  defaults: boolean;
  key?: string;
  value?: string;
  delete: boolean;
  num: boolean;
  any: boolean;
  dir: string;
}

export const dbConfigCommand: CommandModule<object, Args> = {
  command: "db-config [key] [value]",
  describe: "Show or change the database's settings (metameta)",
  builder: (y: Argv) =>
    y
      .positional("key", { type: "string", describe: "setting name (- and _ are the same)" })
      .positional("value", { type: "string", describe: "new value" })
      .option("delete", { alias: "d", type: "boolean", default: false, describe: "delete the setting" })
      .option("num", { type: "boolean", default: false, describe: "store the value as a number" })
      .option("any", { type: "boolean", default: false, describe: "store a key damnit does not read (one of DAMNIT's tools' own)" })
      .option("defaults", { type: "boolean", default: false, describe: "list every setting damnit reads, with defaults" })
      .option("dir", { alias: "C", type: "string", default: ".", describe: "database directory" })
      .example("$0 db-config", "list all settings")
      .example("$0 db-config concurrent-jobs 30 --num", "allow 30 reprocessing jobs at once") as Argv<Args>,
  handler: async (argv: ArgumentsCamelCase<Args>) => {
    const key = argv.key?.replaceAll("-", "_");
    const db = await openForCommand(argv.dir);
    try {
      if (key === "data_format_version" && (argv.delete || argv.value !== undefined)) {
        throw new DamnitError("BAD_ARGUMENT", "data_format_version is managed by migrations; use 'damnit migrate'");
      }
      if (argv.delete) {
        if (!key) throw new DamnitError("BAD_ARGUMENT", "no key specified to delete");
        db.deleteSetting(key);
        return;
      }
      if (argv.defaults) {
        printSettingDefaults(METAMETA_SETTINGS, db.allSettings());
        return;
      }
      if (key === undefined) {
        printSettings(db.allSettings());
        return;
      }
      if (argv.value === undefined) {
        const value = db.getSetting(key);
        if (value === undefined) throw new DamnitError("NO_SUCH_KEY", `key ${key} not found`);
        console.log(repr(value));
        return;
      }
      db.setSetting(key, settingToStore(METAMETA_SETTINGS, key, argv.value, { num: argv.num, any: argv.any, command: "damnit db-config" }));
    } finally {
      db.close();
    }
  },
};
