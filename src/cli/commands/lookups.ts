/**
 * `damnit lookups …`: the lookup recorder (record/replay proxy for external lookups, spec satellites §A) run around
 * a command (`record -- cmd`) or alone (`serve`), and the management of its database (`list`, `show`, `export`,
 * `purge`, `drop-pending`).
 */
import type { ArgumentsCamelCase, Argv, CommandModule } from "yargs";
import { resolve } from "node:path";
import { DamnitError } from "../../core/errors.js";
import { loadOrCreateToken, newToken } from "../../http/token.js";
import { log } from "../../log.js";
import { LOOKUP_MODES, parseUpstreamOptions, type LookupMode } from "../../lookups/config.js";
import { runChild } from "../../lookups/child.js";
import { writePortFile } from "../../lookups/port-file.js";
import { LookupRecorder } from "../../lookups/recorder.js";
import { LookupStore, type StoredResponse } from "../../lookups/store.js";

interface RecorderArgs {
  db: string;
  mode: LookupMode;
  upstream?: string[];
  portFile?: string;
  processingId?: string;
  proposal?: number;
  run?: number;
  timeout: number;
  token: boolean;
  tokenFile?: string;
  "--"?: string[];
  command?: string[];
}

function recorderOptions(y: Argv): Argv<RecorderArgs> {
  return y
    .option("db", { type: "string", demandOption: true, describe: "the lookups database (created when missing), e.g. <db dir>/lookups.sqlite" })
    .option("mode", { choices: LOOKUP_MODES, default: "record" as LookupMode, describe: "record: fetch and store what is new; replay: never contact upstreams; passthrough: no database" })
    .option("upstream", { type: "string", array: true, describe: "NAME=URL: serve /NAME/… from URL (repeatable)" })
    .option("port-file", { type: "string", describe: "write the port here (and a newline) once listening" })
    .option("processing-id", { type: "string", describe: "processing id recorded with each use (lookup_usage)" })
    .option("proposal", { type: "number", describe: "proposal recorded with each use" })
    .option("run", { type: "number", describe: "run recorded with each use" })
    .option("timeout", { type: "number", default: 60, describe: "seconds an upstream may take before the client gets 502" })
    .option("token", { type: "boolean", default: true, describe: "require the recorder's token (X-Damnit-Token); --no-token for clients that cannot send it" })
    .parserConfiguration({ "populate--": true }) as unknown as Argv<RecorderArgs>;
}

async function startRecorder(argv: RecorderArgs, token: string | undefined): Promise<{ recorder: LookupRecorder; store?: LookupStore; upstreams: ReturnType<typeof parseUpstreamOptions> }> {
  const upstreams = parseUpstreamOptions(argv.upstream ?? []);
  if (!(argv.timeout > 0)) throw new DamnitError("BAD_ARGUMENT", `--timeout must be a number of seconds > 0, not ${argv.timeout}`);
  // Refused here, before any child starts, when the file cannot be written or is not a lookups database.
  const store = argv.mode === "passthrough" ? undefined : LookupStore.open(resolve(argv.db), { readonly: false });
  const recorder = new LookupRecorder({
    mode: argv.mode,
    upstreams,
    store,
    token,
    usage: { processingId: argv.processingId, proposal: argv.proposal, run: argv.run },
    upstreamTimeoutMs: argv.timeout * 1000,
    logger: log(),
  });
  try {
    await recorder.listen();
    if (argv.portFile) writePortFile(argv.portFile, recorder.port);
  } catch (err) {
    await recorder.close();
    store?.close();
    throw err;
  }
  return { recorder, store, upstreams };
}

const recordCommand: CommandModule<object, RecorderArgs> = {
  command: "record",
  describe: "Run a command with a lookup recorder around it (DAMNIT_LOOKUP_URL, DAMNIT_LOOKUP_<NAME>_URL, DAMNIT_LOOKUP_TOKEN); exit with its status",
  builder: (y: Argv) =>
    recorderOptions(y).example("$0 lookups record --db lookups.sqlite --upstream calcat=https://calcat.example -- ./correct.sh", "record what correct.sh asks calcat") as Argv<RecorderArgs>,
  handler: async (argv: ArgumentsCamelCase<RecorderArgs>) => {
    const command = argv["--"] ?? [];
    if (command.length === 0) throw new DamnitError("BAD_ARGUMENT", "give the command to run after '--', e.g. damnit lookups record --db lookups.sqlite -- ./job.sh");
    const token = argv.token ? newToken() : undefined;
    const { recorder, store, upstreams } = await startRecorder(argv, token);
    try {
      process.exitCode = await runChild(recorder, upstreams, token, command);
    } catch (err) {
      throw new DamnitError("BAD_ARGUMENT", `cannot run ${command[0]}: ${(err as Error).message}`, { cause: err });
    } finally {
      await recorder.close();
      store?.close();
    }
  },
};

const serveCommand: CommandModule<object, RecorderArgs> = {
  command: "serve",
  describe: "Run a lookup recorder until stopped (SIGINT/SIGTERM)",
  builder: (y: Argv) =>
    recorderOptions(y).option("token-file", { type: "string", describe: "owner-only file holding the token clients send (default: <db>.token)" }) as Argv<RecorderArgs>,
  handler: async (argv: ArgumentsCamelCase<RecorderArgs>) => {
    const token = argv.token ? loadOrCreateToken(argv.tokenFile ?? `${resolve(argv.db)}.token`) : undefined;
    const { recorder, store } = await startRecorder(argv, token);
    log().info(`Lookup recorder (${argv.mode}) listening on ${recorder.url}`);
    await new Promise<void>((done) => {
      process.once("SIGINT", done);
      process.once("SIGTERM", done);
    });
    await recorder.close();
    store?.close();
  },
};

interface DbArgs {
  db: string;
}

function openExisting(db: string): LookupStore {
  return LookupStore.open(resolve(db), { readonly: false });
}

function describeRow(r: StoredResponse): string {
  const when = new Date((r.respondedAt ?? r.requestedAt) * 1000).toISOString();
  const status = r.status < 0 ? "pending" : String(r.status);
  return `${r.key}  ${status.padEnd(7)} ${r.method} /${r.service}${r.path}${r.query ? `?${r.query}` : ""}  ${r.body.length} B  ${when}  hits ${r.hits}`;
}

const dbOption = (y: Argv) => y.option("db", { type: "string", default: "lookups.sqlite", describe: "the lookups database" });

const listCommand: CommandModule<object, DbArgs & { run?: number; proposal?: number; json: boolean }> = {
  command: "list",
  describe: "List the recorded lookups (of one run with --run)",
  builder: (y: Argv) =>
    dbOption(y)
      .option("run", { type: "number", describe: "only lookups this run used" })
      .option("proposal", { type: "number", describe: "with --run: of this proposal" })
      .option("json", { type: "boolean", default: false }) as unknown as Argv<DbArgs & { run?: number; proposal?: number; json: boolean }>,
  handler: (argv) => {
    const store = openExisting(argv.db);
    try {
      const rows = store.list({ run: argv.run, proposal: argv.proposal });
      if (argv.json) {
        console.log(JSON.stringify(rows.map(({ body, ...r }) => ({ ...r, bodyBytes: body.length }))));
      } else {
        for (const r of rows) console.log(describeRow(r));
        if (rows.length === 0) console.log("No lookups recorded.");
      }
    } finally {
      store.close();
    }
  },
};

const showCommand: CommandModule<object, DbArgs & { key: string }> = {
  command: "show <key>",
  describe: "One recorded lookup: request, status, headers and body",
  builder: (y: Argv) => dbOption(y).positional("key", { type: "string", demandOption: true }) as unknown as Argv<DbArgs & { key: string }>,
  handler: (argv) => {
    const store = openExisting(argv.db);
    try {
      const row = store.show(argv.key);
      if (!row) throw new DamnitError("NO_SUCH_KEY", `no lookup with key ${argv.key} in ${argv.db}`);
      console.log(describeRow(row));
      for (const [k, v] of Object.entries(row.headers)) console.log(`${k}: ${v}`);
      console.log("");
      process.stdout.write(row.body);
      if (row.body.length > 0 && row.body[row.body.length - 1] !== 0x0a) process.stdout.write("\n");
    } finally {
      store.close();
    }
  },
};

const exportCommand: CommandModule<object, DbArgs & { file: string }> = {
  command: "export <file>",
  describe: "Copy the lookups database (consistently, while recorders use it) to a new file",
  builder: (y: Argv) => dbOption(y).positional("file", { type: "string", demandOption: true }) as unknown as Argv<DbArgs & { file: string }>,
  handler: (argv) => {
    const store = openExisting(argv.db);
    try {
      store.exportTo(resolve(argv.file));
      console.log(`Exported ${argv.db} to ${argv.file}`);
    } finally {
      store.close();
    }
  },
};

const purgeCommand: CommandModule<object, DbArgs & { olderThan: number }> = {
  command: "purge",
  describe: "Forget lookups answered more than DAYS days ago (runs processed again will ask the upstream again)",
  builder: (y: Argv) =>
    dbOption(y).option("older-than", { type: "number", demandOption: true, describe: "DAYS" }) as unknown as Argv<DbArgs & { olderThan: number }>,
  handler: (argv) => {
    if (!(argv.olderThan >= 0)) throw new DamnitError("BAD_ARGUMENT", `--older-than must be a number of days ≥ 0, not ${argv.olderThan}`);
    const store = openExisting(argv.db);
    try {
      console.log(`Removed ${store.purgeOlderThan(argv.olderThan)} lookups`);
    } finally {
      store.close();
    }
  },
};

const dropPendingCommand: CommandModule<object, DbArgs> = {
  command: "drop-pending",
  describe: "Remove pending rows left by recorders that died",
  builder: (y: Argv) => dbOption(y) as unknown as Argv<DbArgs>,
  handler: (argv) => {
    const store = openExisting(argv.db);
    try {
      console.log(`Removed ${store.dropPending()} pending lookups`);
    } finally {
      store.close();
    }
  },
};

export const lookupsCommand: CommandModule = {
  command: "lookups <command>",
  describe: "Record and replay the external lookups (catalogues, REST services) that jobs make",
  builder: (y: Argv) =>
    y
      .command(recordCommand as unknown as CommandModule)
      .command(serveCommand as unknown as CommandModule)
      .command(listCommand as unknown as CommandModule)
      .command(showCommand as unknown as CommandModule)
      .command(exportCommand as unknown as CommandModule)
      .command(purgeCommand as unknown as CommandModule)
      .command(dropPendingCommand as unknown as CommandModule)
      .demandCommand(1),
  handler: () => {},
};
