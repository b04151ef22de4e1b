import type { ArgumentsCamelCase, Argv, CommandModule } from "yargs";
import { METAMETA_SETTINGS } from "../../db/defaults.js";
import { DamnitError } from "../../db/errors.js";
import type { SettingValue } from "../../db/metameta.js";
import { openForCommand } from "../open-database.js";

/** `--num`: a finite number, stored as INTEGER when whole (DAMNIT parses int, then float). */
function parseNumber(text: string): number {
  const n = Number(text);
  if (text.trim() === "" || !Number.isFinite(n)) throw new DamnitError("BAD_ARGUMENT", `'${text}' is not a number`);
  return n;
}

interface Args {
  defaults: boolean;
  key?: string;
  value?: string;
  delete: boolean;
  num: boolean;
  dir: string;
}

/** Python-like repr, as DAMNIT prints settings: strings quoted, numbers bare. */
function repr(value: SettingValue | undefined): string {
  return typeof value === "string" ? `'${value}'` : String(value);
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
        const stored = db.allSettings();
        for (const [k, spec] of Object.entries(METAMETA_SETTINGS)) {
          const value = k in stored ? repr(stored[k]) : `${repr(spec.default)} (default)`;
          console.log(`${k}=${value}`.padEnd(40) + `  ${spec.meaning}`);
        }
        return;
      }
      if (key === undefined) {
        for (const [k, v] of Object.entries(db.allSettings())) console.log(`${k}=${repr(v)}`);
        return;
      }
      if (argv.value === undefined) {
        const value = db.getSetting(key);
        if (value === undefined) throw new DamnitError("NO_SUCH_KEY", `key ${key} not found`);
        console.log(repr(value));
        return;
      }
      let value: SettingValue = argv.value;
      if (argv.num) value = parseNumber(argv.value);
      db.setSetting(key, value);
    } finally {
      db.close();
    }
  },
};
