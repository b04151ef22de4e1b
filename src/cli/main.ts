/**
 * The `damnit` command line: global options, the list of commands, and how failures are reported. Each command's
 * modules load only when that command runs (a job pays for `extract`, not for Kafka, esbuild or the listener):
 * the table below maps command names to dynamic imports, and only the named command is imported, or all of them
 * when yargs must list them (help, a missing or unknown command).
 */
import type { CommandModule } from "yargs";
import type { LogFormat } from "../log.js";
import { damnitVersion } from "../version.js";

type AnyCommand = CommandModule<object, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** Every command, by the name it is typed with, and how to load it. Order is the order `--help` lists them in. */
const COMMANDS: ReadonlyArray<readonly [string, () => Promise<AnyCommand>]> = [
  ["proposal", async () => (await import("./commands/proposal.js")).proposalCommand],
  ["show", async () => (await import("./commands/show.js")).showCommand],
  ["db-config", async () => (await import("./commands/db-config.js")).dbConfigCommand],
  ["new-id", async () => (await import("./commands/new-id.js")).newIdCommand],
  ["migrate", async () => (await import("./commands/migrate.js")).migrateCommand],
  ["synth", async () => (await import("./commands/synth.js")).synthCommand],
  ["data", async () => (await import("./commands/data.js")).dataCommand],
  ["read-context", async () => (await import("./commands/read-context.js")).readContextCommand],
  ["extract", async () => (await import("./commands/extract.js")).extractCommand],
  ["reprocess", async () => (await import("./commands/reprocess.js")).reprocessCommand],
  ["demo", async () => (await import("./commands/demo.js")).demoCommand],
  ["listen", async () => (await import("./commands/listen.js")).listenCommand],
  ["listener", async () => (await import("./commands/listener.js")).listenerCommand],
  ["lookups", async () => (await import("./commands/lookups.js")).lookupsCommand],
  ["web", async () => (await import("./commands/web.js")).webCommand],
  ["calib", async () => (await import("./commands/calib.js")).calibCommand],
  ["run-task", async () => (await import("./commands/run-task.js")).runTaskCommand],
  ["run-logged", async () => (await import("./commands/run-logged.js")).runLoggedCommand],
  ["provenance", async () => (await import("./commands/provenance.js")).provenanceCommand],
  ["replay", async () => (await import("./commands/replay.js")).replayCommand],
];

/** Global options that take a value (so that their value is not taken for the command's name). */
const VALUE_OPTIONS = new Set(["--log-format"]);

/** The word naming the command in `argv`, if any (the first argument that is neither an option nor an option's value). */
export function commandWord(argv: readonly string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--") return undefined;
    if (VALUE_OPTIONS.has(a)) {
      i++;
      continue;
    }
    if (!a.startsWith("-")) return a;
  }
  return undefined;
}

/** The commands `argv` needs loaded: the one it names, none for a bare `--version`, else all (to list them). */
async function commandsFor(argv: readonly string[]): Promise<AnyCommand[]> {
  const word = commandWord(argv);
  const named = COMMANDS.find(([name]) => name === word);
  if (named) return [await named[1]()];
  if (word === undefined && argv.some((a) => a === "--version") && !argv.some((a) => a === "--help" || a === "-h")) return [];
  return Promise.all(COMMANDS.map(([, load]) => load()));
}

export async function main(argv: string[]): Promise<number> {
  // `damnit --version` answers before the command-line parser (a tenth of a second of module loading) is loaded.
  if (argv.length === 1 && argv[0] === "--version") {
    process.stdout.write(`${damnitVersion()}\n`);
    return 0;
  }
  // A processing job's context runner starts now, while yargs, the job's modules and the database load.
  if (commandWord(argv) === "extract") (await import("../extract/runner-prestart.js")).prestartForExtract(argv);
  // The parser and the command's modules load together: their files are read at the same time.
  const [{ default: yargs }, { configureLogger }, { EXIT_USAGE, reportError }, commands] = await Promise.all([
    import("yargs"),
    import("../log.js"),
    import("./errors.js"),
    commandsFor(argv),
  ]);
  const debug = argv.includes("--debug");
  let usageError: string | undefined;
  const parser = yargs(argv)
    .scriptName("damnit")
    .usage("$0 <command> [options]\n\nAutomatic processing of experiment runs into a table of runs × variables.")
    .option("debug", { type: "boolean", default: false, describe: "debug logging and stack traces" })
    .option("log-format", { choices: ["auto", "json", "pretty"] as const, default: "auto" as LogFormat, describe: "log output" })
    .middleware((args) => {
      configureLogger({ format: args.logFormat as LogFormat, level: args.debug ? "debug" : undefined });
    })
    .command(commands)
    .demandCommand(1, "Give a command; 'damnit --help' lists them.")
    .strict()
    .recommendCommands()
    .help()
    .alias("help", "h")
    .version(damnitVersion())
    .wrap(Math.min(110, process.stdout.columns ?? 100))
    .fail((msg, err) => {
      if (err) throw err;
      usageError = msg;
    });
  skipHelpCache(parser);
  try {
    await parser.parseAsync();
  } catch (err) {
    return reportError(err, debug);
  }
  if (usageError !== undefined) {
    process.stderr.write(`damnit: ${usageError}\nRun 'damnit --help' for usage.\n`);
    return EXIT_USAGE;
  }
  // Commands that finish their work but report a failure (a job that could not run) set process.exitCode.
  return typeof process.exitCode === "number" ? process.exitCode : 0;
}

/**
 * yargs lays out the whole help text of a command when it starts the command's handler, in case the handler asks
 * for it; no handler here does (usage errors print their own line), and the layout costs every job tens of
 * milliseconds. Without the internal method (another yargs), the help is cached as before.
 */
function skipHelpCache(parser: object): void {
  type Internals = { getInternalMethods?: () => { getUsageInstance?: () => { cacheHelpMessage?: () => void } } };
  const usage = (parser as Internals).getInternalMethods?.().getUsageInstance?.();
  if (usage && typeof usage.cacheHelpMessage === "function") usage.cacheHelpMessage = () => {};
}

export async function run(): Promise<void> {
  // `damnit data get … | head`: a reader that stops early is not an error.
  process.stdout.on("error", (err: NodeJS.ErrnoException) => {
    if (err.code === "EPIPE") process.exit(0);
    throw err;
  });
  process.exitCode = await main(process.argv.slice(2));
}
