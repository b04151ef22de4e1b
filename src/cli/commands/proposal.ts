import type { ArgumentsCamelCase, Argv, CommandModule } from "yargs";
import { writeGuiPointer } from "../../context/gui-pointer.js";
import { DamnitError } from "../../core/errors.js";
import { openForCommand } from "../open-database.js";

interface Args {
  proposal?: string;
  dir?: string;
}

/** Create a proposal's database, or show / change which proposal an existing one belongs to. */
export const proposalCommand: CommandModule<object, Args> = {
  command: "proposal [proposal] [dir]",
  describe: "Create the run database for a proposal in DIR (default: current directory), or show/change its proposal",
  builder: (y: Argv) =>
    y
      .positional("proposal", { type: "string", describe: "proposal number (omit to show the current one)" })
      .positional("dir", { type: "string", describe: "database directory (default: current directory)" })
      .example("$0 proposal 2956 /data/p2956/usr/Shared/amore", "create the database for proposal 2956")
      .example("$0 proposal", "show the proposal of the database in this directory") as Argv<Args>,
  handler: async (argv: ArgumentsCamelCase<Args>) => {
    let { proposal, dir } = argv;
    // `damnit proposal DIR` shows the proposal of DIR.
    if (proposal !== undefined && dir === undefined && !/^\d+$/.test(proposal)) [proposal, dir] = [undefined, proposal];
    dir ??= ".";
    if (proposal === undefined) {
      const db = await openForCommand(dir);
      try {
        const current = db.proposal;
        console.log(current === undefined ? `No proposal number set in ${db.path}` : `Current proposal number: ${current}`);
      } finally {
        db.close();
      }
      return;
    }
    const number = Number(proposal);
    if (!/^\d+$/.test(proposal) || !Number.isSafeInteger(number)) {
      throw new DamnitError("BAD_ARGUMENT", `'${proposal}' is not a proposal number`);
    }
    const db = await openForCommand(dir, { create: true, initialSettings: { proposal: number } });
    try {
      if (db.created) {
        writeGuiPointer(db.dir);
        console.log(`Created DAMNIT database for proposal ${number} at ${db.path}`);
        return;
      }
      const old = db.proposal;
      if (old === number) {
        console.log(`No change - proposal ${number} already set`);
      } else {
        db.setSetting("proposal", number);
        console.log(`Changed proposal to ${number} (was ${old ?? "unset"})`);
      }
    } finally {
      db.close();
    }
  },
};
