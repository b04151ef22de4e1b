/** `damnit provenance <run>`: what went into each processing attempt of a run (src/provenance/), as text or JSON. */
import type { ArgumentsCamelCase, Argv, CommandModule } from "yargs";
import { DamnitError } from "../../core/errors.js";
import { ProvenanceStore, type AttemptRow } from "../../provenance/store.js";
import { openForCommand } from "../open-database.js";

interface Args {
  run: number;
  dir: string;
  proposal?: number;
  attempt?: number;
  json: boolean;
}

const time = (t: number | null) => (t === null ? "—" : new Date(t * 1000).toISOString().replace("T", " ").replace(/\.\d+Z$/, ""));

function attemptLine(a: AttemptRow): string {
  const seconds = a.finishedAt === null ? "" : ` ${(a.finishedAt - a.startedAt).toFixed(1)} s`;
  const job = a.record.sections.job as { data?: string; cluster?: boolean } | undefined;
  return `  #${a.attempt}  ${a.status.padEnd(7)} ${time(a.startedAt)}${seconds}  ${job?.data ?? ""}${job?.cluster ? " (cluster)" : ""}  processing id ${a.processingId}`;
}

type Section = Record<string, unknown> & { error?: string };

function details(a: AttemptRow): string[] {
  const s = a.record.sections as Record<string, Section | undefined>;
  const out = [`Attempt ${a.attempt} of r${a.run} (p${a.proposal}): ${a.status}${a.message ? ` (${a.message.split("\n")[0]})` : ""}`];
  const line = (name: string, text: string) => out.push(`  ${name.padEnd(12)} ${text}`);
  const failed = (section: Section | undefined) => (section?.error !== undefined ? `could not be recorded: ${section.error}` : undefined);
  const damnit = s.damnit;
  if (damnit) line("damnit", failed(damnit) ?? `${String(damnit.version)} (node ${String(damnit.node)})`);
  const ctx = s.context;
  if (ctx) {
    const helpers = (ctx.helpers as Array<{ path: string; sha256: string }> | undefined) ?? [];
    line("context", failed(ctx) ?? `${String(ctx.file)} sha256 ${String(ctx.sha256)}`);
    for (const h of helpers) line("", `${h.path} sha256 ${h.sha256}`);
  }
  const interp = s.interpreter;
  if (interp) line("interpreter", failed(interp) ?? (interp.executable !== undefined ? `${String(interp.executable ?? `${String(interp.command)} (not found)`)}: ${String(interp.version ?? "?")}` : `node ${String(interp.version)}`));
  const inputs = s.inputs;
  if (inputs) {
    const files = (inputs.files as Array<{ path: string; size: number; mtime: number }> | undefined) ?? [];
    if (failed(inputs)) line("inputs", failed(inputs)!);
    else if (inputs.mock) line("inputs", "a mock run (no files)");
    else {
      const bytes = files.reduce((n, f) => n + f.size, 0);
      line("inputs", `${files.length} files, ${bytes} bytes, in ${String(inputs.proposalDir)}`);
      for (const f of files) line("", `${f.path}  ${f.size} bytes  modified ${time(f.mtime)}`);
    }
  }
  const lookups = s.lookups;
  if (lookups) {
    const served = (lookups.served as Array<{ key: string; method?: string; service?: string; path?: string; query?: string; status?: number; servedFrom: Record<string, number> }> | undefined) ?? [];
    if (failed(lookups)) line("lookups", failed(lookups)!);
    else if (!lookups.configured) line("lookups", "none configured");
    else {
      line("lookups", `${String(lookups.mode)}: ${served.length} served`);
      for (const l of served) {
        const whence = Object.entries(l.servedFrom).map(([k, n]) => `${k}${n > 1 ? ` ×${n}` : ""}`).join(", ");
        line("", `${l.key.slice(0, 16)}  ${l.method ?? "?"} ${l.service ?? "?"}${l.path ?? ""}${l.query ? `?${l.query}` : ""} → ${l.status ?? "?"} (${whence})`);
      }
    }
  }
  for (const [name, value] of Object.entries(s)) {
    if (!["damnit", "job", "context", "interpreter", "inputs", "lookups"].includes(name)) line(name, JSON.stringify(value));
  }
  const vars = a.record.variables ?? [];
  line("variables", vars.length > 0 ? vars.join(", ") : "none stored");
  return out;
}

export const provenanceCommand: CommandModule<object, Args> = {
  command: "provenance <run>",
  describe: "What went into a run's processing attempts: context file and helpers, damnit version, interpreter, input files, lookups served",
  builder: (y: Argv) =>
    y
      .positional("run", { type: "number", demandOption: true, describe: "run number" })
      .option("dir", { type: "string", default: ".", describe: "database directory" })
      .option("proposal", { type: "number", describe: "proposal (default: the database's)" })
      .option("attempt", { type: "number", describe: "this attempt (default: the latest)" })
      .option("json", { type: "boolean", default: false, describe: "the attempt's full record as JSON" })
      .example("$0 provenance 7", "every attempt at run 7, and what went into the latest")
      .example("$0 provenance 7 --attempt 1 --json", "the first attempt's record") as unknown as Argv<Args>,
  handler: async (argv: ArgumentsCamelCase<Args>) => {
    if (!Number.isSafeInteger(argv.run) || argv.run < 0) throw new DamnitError("BAD_ARGUMENT", `run must be a whole number ≥ 0, not ${argv.run}`);
    if (argv.attempt !== undefined && (!Number.isSafeInteger(argv.attempt) || argv.attempt < 1)) throw new DamnitError("BAD_ARGUMENT", `--attempt must be a whole number ≥ 1, not ${argv.attempt}`);
    const db = await openForCommand(argv.dir, { readonly: true });
    let proposal: number | undefined;
    try {
      proposal = argv.proposal ?? db.proposal;
    } finally {
      db.close();
    }
    if (proposal === undefined) throw new DamnitError("BAD_ARGUMENT", `no proposal set in ${argv.dir}; give --proposal`);
    const store = ProvenanceStore.open(argv.dir, { readonly: true });
    try {
      const attempts = store.list(proposal, argv.run);
      if (attempts.length === 0) throw new DamnitError("NO_PROVENANCE", `no processing attempt of run ${argv.run} (p${proposal}) is recorded in ${store.file}`);
      const chosen = argv.attempt === undefined ? attempts[attempts.length - 1]! : attempts.find((a) => a.attempt === argv.attempt);
      if (!chosen) throw new DamnitError("NO_PROVENANCE", `run ${argv.run} (p${proposal}) has attempts 1–${attempts.length}, not ${argv.attempt}`);
      if (argv.json) {
        process.stdout.write(`${JSON.stringify(chosen, null, 2)}\n`);
        return;
      }
      const lines = [`Run ${argv.run} (p${proposal}): ${attempts.length} attempt${attempts.length === 1 ? "" : "s"}`, ...attempts.map(attemptLine), "", ...details(chosen)];
      process.stdout.write(`${lines.join("\n")}\n`);
    } finally {
      store.close();
    }
  },
};
