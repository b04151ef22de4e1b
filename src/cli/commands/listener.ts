/**
 * `damnit listener add|rm|databases|config|requests|status|restart|stop`: the listener's store and service. Only
 * commands that store something create `listener.sqlite`; the others on a directory without one say so (or, for
 * settings, show what a new store would hold).
 */
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import type { ArgumentsCamelCase, Argv, CommandModule } from "yargs";
import { DamnitError } from "../../core/errors.js";
import { activeJobs } from "../../jobs/squeue.js";
import { officialDirectory } from "../../listener/dispatch.js";
import { ListenerStore, storedListenerDefaults } from "../../listener/store/index.js";
import { LISTENER_SETTINGS } from "../../listener/settings.js";
import { log } from "../../log.js";
import { printSettingDefaults, printSettings, repr, settingToStore } from "../settings-output.js";
import { quarantineCommand } from "./listener-quarantine.js";
import { listenerServiceCommands } from "./listener-service.js";
import { dirOption, listingTime, withStore, type DirArgs } from "../listener-store.js";

const addCommand: CommandModule<object, DirArgs & { proposal: number; dbDir?: string }> = {
  command: "add <proposal> [db-dir]",
  describe: "Register a database directory for a proposal's runs (default: the proposal's official usr/Shared/amore)",
  builder: (y: Argv) =>
    dirOption(y)
      .positional("proposal", { type: "number", demandOption: true })
      .positional("db-dir", { type: "string", describe: "database directory" }) as unknown as Argv<DirArgs & { proposal: number; dbDir?: string }>,
  handler: (argv) => {
    if (!Number.isSafeInteger(argv.proposal) || argv.proposal <= 0) throw new DamnitError("BAD_ARGUMENT", `proposal must be a whole number, not ${argv.proposal}`);
    return withStore(argv.dir, { create: true }, (store) => {
      const official = officialDirectory(argv.proposal, store.settings.get("data_root") || undefined);
      const dbDir = argv.dbDir !== undefined ? resolve(argv.dbDir) : official;
      if (!dbDir) throw new DamnitError("NO_DIRECTORY", `proposal ${argv.proposal} not found under the data root; give the database directory`);
      store.databases.add(argv.proposal, dbDir, dbDir === official);
      console.log(`Added proposal ${argv.proposal} at ${dbDir}`);
      if (!existsSync(join(dbDir, "runs.sqlite"))) log().warn(`${dbDir} has no runs.sqlite yet; its runs are processed once it has one`);
    });
  },
};

const rmCommand: CommandModule<object, DirArgs & { dbDir: string }> = {
  command: "rm <db-dir>",
  describe: "Unregister a database directory",
  builder: (y: Argv) => dirOption(y).positional("db-dir", { type: "string", demandOption: true }) as unknown as Argv<DirArgs & { dbDir: string }>,
  handler: (argv) =>
    withStore(argv.dir, { create: false }, (store) => {
      if (!store.databases.remove(argv.dbDir)) throw new DamnitError("NO_SUCH_KEY", `${resolve(argv.dbDir)} is not registered`);
      console.log(`Removed database at ${resolve(argv.dbDir)}`);
    }),
};

const databasesCommand: CommandModule<object, DirArgs> = {
  command: "databases",
  describe: "List the registered databases by proposal",
  builder: (y: Argv) => dirOption(y) as Argv<DirArgs>,
  handler: (argv) =>
    withStore(argv.dir, { create: false }, (store) => {
      const byProposal = new Map<number, Array<{ dbDir: string; official: boolean }>>();
      for (const d of store.databases.list()) byProposal.set(d.proposal, [...(byProposal.get(d.proposal) ?? []), d]);
      if (byProposal.size === 0) console.log("No databases registered (add one with 'damnit listener add <proposal> [dir]')");
      for (const [proposal, dirs] of byProposal) {
        const show = (d: { dbDir: string; official: boolean }) => `${d.dbDir}${d.official ? "" : " (unofficial)"}`;
        if (dirs.length === 1) console.log(`p${proposal}: ${show(dirs[0]!)}`);
        else console.log(`p${proposal}:\n${dirs.map((d) => `    ${show(d)}`).join("\n")}`);
      }
    }),
};

interface ConfigArgs extends DirArgs {
  key?: string;
  value?: string;
  delete: boolean;
  num: boolean;
  defaults: boolean;
}

const configCommand: CommandModule<object, ConfigArgs> = {
  command: "config [key] [value]",
  describe: "Show or change listener settings (static_mode, allow_local_processing, kafka_brokers, ...)",
  builder: (y: Argv) =>
    dirOption(y)
      .positional("key", { type: "string", describe: "setting name (- and _ are the same)" })
      .positional("value", { type: "string" })
      .option("delete", { alias: "d", type: "boolean", default: false, describe: "delete the setting" })
      .option("num", { type: "boolean", default: false, describe: "store the value as a number" })
      .option("defaults", { type: "boolean", default: false, describe: "list every setting with its default and meaning" })
      .example("$0 listener config static-mode 0", "dynamic mode: process every proposal's official database")
      .example("$0 listener config kafka-brokers broker1:9091,broker2:9091", "where notifications come from") as unknown as Argv<ConfigArgs>,
  handler: async (argv: ArgumentsCamelCase<ConfigArgs>) => {
    const key = argv.key?.replaceAll("-", "_");
    if (argv.delete && !key) throw new DamnitError("BAD_ARGUMENT", "no key specified to delete");
    const setting = !argv.defaults && key !== undefined && argv.value !== undefined;
    const storing = argv.delete || setting;
    // Reading without a store: what a new store would hold (its stored defaults); nothing is created.
    if (!storing && !ListenerStore.existsIn(argv.dir)) {
      showSettings(argv.defaults ? {} : storedListenerDefaults(), key, argv.defaults);
      return;
    }
    await withStore(argv.dir, { create: setting }, (store) => {
      if (argv.delete) {
        if (!store.settings.delete(key!)) throw new DamnitError("NO_SUCH_KEY", `key ${key} not found`);
        return;
      }
      if (setting) {
        store.settings.set(key!, settingToStore(LISTENER_SETTINGS, key!, argv.value!, { num: argv.num, any: false, command: "damnit listener config" }));
        return;
      }
      showSettings(store.settings.all(), key, argv.defaults);
    });
  },
};

/** `config --defaults`, `config` or `config <key>`, given the stored settings. */
function showSettings(stored: Record<string, string | number>, key: string | undefined, defaults: boolean): void {
  if (defaults) return printSettingDefaults(LISTENER_SETTINGS, stored);
  if (key === undefined) return printSettings(stored);
  const value = stored[key];
  if (value === undefined) throw new DamnitError("NO_SUCH_KEY", `key ${key} not found`);
  console.log(repr(value));
}

const requestsCommand: CommandModule<object, DirArgs & { limit: number }> = {
  command: "requests",
  describe: "The latest processing requests the listener made, with their state",
  builder: (y: Argv) => dirOption(y).option("limit", { type: "number", default: 30 }) as unknown as Argv<DirArgs & { limit: number }>,
  handler: (argv) =>
    withStore(argv.dir, { create: false }, async (store) => {
      // Slurm jobs that left the queue since: ask squeue once for all of them.
      const submitted = store.requests.latest({ limit: argv.limit }).filter((r) => r.state === "submitted" && r.slurmJobId);
      for (const cluster of new Set(submitted.map((r) => r.slurmCluster ?? ""))) {
        const ids = submitted.filter((r) => (r.slurmCluster ?? "") === cluster).map((r) => r.slurmJobId!);
        const active = await activeJobs(ids, cluster);
        if (active === null) continue;
        for (const r of submitted) if ((r.slurmCluster ?? "") === cluster && !active.has(r.slurmJobId!)) store.requests.update(r.processingId, "finished", { message: "left the Slurm queue" });
      }
      for (const r of store.requests.latest({ limit: argv.limit }).reverse()) {
        const when = listingTime(r.receivedAt);
        const job = r.via === "slurm" ? (r.slurmJobId ? `Slurm ${r.slurmJobId}` : "Slurm (sbatch…)") : (r.via ?? "-");
        console.log(`${when}  p${r.proposal} r${r.run} ${r.data.padEnd(4)}  ${r.state.padEnd(10)}  ${job.padEnd(14)}  ${r.dbDir}${r.message ? `  ${r.message}` : ""}`);
      }
    }),
};

export const listenerCommand: CommandModule = {
  command: "listener <command>",
  describe: "Manage the listener: registered databases, settings, and the service under supervisord",
  builder: (y: Argv) =>
    y
      .command(addCommand)
      .command(rmCommand)
      .command(databasesCommand)
      .command(configCommand)
      .command(requestsCommand)
      .command(quarantineCommand)
      .command(listenerServiceCommands)
      .demandCommand(1),
  handler: () => {},
};
