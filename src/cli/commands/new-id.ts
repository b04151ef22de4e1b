import type { ArgumentsCamelCase, Argv, CommandModule } from "yargs";
import { openForCommand } from "../open-database.js";

interface Args {
  dir: string;
}

export const newIdCommand: CommandModule<object, Args> = {
  command: "new-id [dir]",
  describe: "Give a copied database a new identity (db_id), so its update messages don't mix with the original's",
  builder: (y: Argv) =>
    y.positional("dir", { type: "string", default: ".", describe: "database directory" }) as Argv<Args>,
  handler: async (argv: ArgumentsCamelCase<Args>) => {
    const db = await openForCommand(argv.dir);
    try {
      const old = db.dbId;
      const id = db.newId();
      console.log(`New database id ${id} (was ${old})`);
    } finally {
      db.close();
    }
  },
};
