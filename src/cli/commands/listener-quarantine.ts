/**
 * `damnit listener quarantine [list] | retry ID…|--all | drop ID…|--all`: the Kafka messages the listener gave up on
 * (malformed, or failing `max_delivery_attempts` times), kept in listener.sqlite. `retry` asks the running listener
 * to hand them back to its handler (within a few seconds); `drop` forgets them.
 */
import type { ArgumentsCamelCase, Argv, CommandModule } from "yargs";
import { DamnitError } from "../../core/errors.js";
import type { ListenerStore, QuarantinedMessage } from "../../listener/store/index.js";
import { dirOption, listingTime, withStore, type DirArgs } from "../listener-store.js";

interface IdArgs extends DirArgs {
  ids: number[];
  all: boolean;
}

/** At most `max` characters of a value, one line, control characters escaped. */
function preview(value: Buffer | null, max = 80): string {
  if (value === null) return "(no value)";
  const text = JSON.stringify(value.toString("utf8")).slice(1, -1);
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

function printMessage(q: QuarantinedMessage): void {
  const retry = q.retryRequestedAt !== null ? "  (retry requested)" : "";
  console.log(`#${q.id}  ${listingTime(q.quarantinedAt)}  ${q.topic}[${q.partition}]@${q.offset}  ${q.attempts} attempt${q.attempts === 1 ? "" : "s"}${retry}`);
  console.log(`    error: ${q.error}`);
  const size = q.valueBytes > (q.value?.length ?? 0) ? ` (${q.valueBytes} bytes, ${q.value?.length ?? 0} kept)` : ` (${q.valueBytes} bytes)`;
  console.log(`    value: ${preview(q.value)}${size}`);
}

function idsOf(argv: ArgumentsCamelCase<IdArgs>, verb: string): readonly number[] | "all" {
  if (argv.all) return "all";
  if (argv.ids.length === 0) throw new DamnitError("BAD_ARGUMENT", `give the ids to ${verb} (see 'damnit listener quarantine'), or --all`);
  for (const id of argv.ids) if (!Number.isInteger(id) || id < 1) throw new DamnitError("BAD_ARGUMENT", `'${id}' is not a quarantine id`);
  return argv.ids;
}

function idCommand(verb: "retry" | "drop", describe: string, act: (store: ListenerStore, ids: readonly number[] | "all") => number[]): CommandModule<object, IdArgs> {
  return {
    command: `${verb} [ids..]`,
    describe,
    builder: (y: Argv) =>
      dirOption(y)
        .positional("ids", { type: "number", array: true, default: [], describe: "quarantine ids (#N in the list)" })
        .option("all", { type: "boolean", default: false, describe: `${verb} every quarantined message` }) as unknown as Argv<IdArgs>,
    handler: (argv) =>
      withStore(argv.dir, { create: false }, (store) => {
        const wanted = idsOf(argv, verb);
        const done = act(store, wanted);
        const missing = wanted === "all" ? [] : wanted.filter((id) => !done.includes(id));
        if (missing.length > 0) throw new DamnitError("NO_SUCH_KEY", `no quarantined message #${missing.join(", #")}`);
        const what = `${done.length} message${done.length === 1 ? "" : "s"}`;
        console.log(verb === "retry" ? `Asked the listener to handle ${what} again (it does within a few seconds while it runs)` : `Dropped ${what}`);
      }),
  };
}

const listCommand: CommandModule<object, DirArgs & { limit: number }> = {
  command: ["list", "$0"],
  describe: "The quarantined messages, newest first",
  builder: (y: Argv) => dirOption(y).option("limit", { type: "number", default: 50, describe: "show at most this many" }) as unknown as Argv<DirArgs & { limit: number }>,
  handler: (argv) =>
    withStore(argv.dir, { create: false }, (store) => {
      const total = store.quarantine.count();
      if (total === 0) {
        console.log("No quarantined messages");
        return;
      }
      const shown = store.quarantine.list(argv.limit);
      for (const q of shown) printMessage(q);
      if (shown.length < total) console.log(`(${total - shown.length} older not shown; --limit ${total} shows all)`);
    }),
};

export const quarantineCommand: CommandModule = {
  command: "quarantine",
  describe: "Kafka messages the listener gave up on: list, retry or drop them",
  builder: (y: Argv) =>
    y
      .command(listCommand)
      .command(idCommand("retry", "Hand quarantined messages back to the running listener", (store, ids) => store.quarantine.requestRetry(ids)))
      .command(idCommand("drop", "Forget quarantined messages", (store, ids) => store.quarantine.drop(ids))),
  handler: () => {},
};
